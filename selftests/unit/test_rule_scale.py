"""Hosts with thousands of rules (issue 26.1): the model's shortcuts give what the plain scans gave."""

from __future__ import annotations

import gc
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from cisaudit.host.probe import KERNEL_RULES
from cisaudit.model import evaluate as evaluate_module
from cisaudit.model import rules as rules_module
from cisaudit.model.boot import BootModel
from cisaudit.model.evaluate import Assessment, _mentions
from cisaudit.model.heap import uncollected
from cisaudit.model.kernel import AuditObject, FilterState, KernelRule, _under, exclusion_cell, exclusion_cells
from cisaudit.model.loader import live_state
from cisaudit.model.rules import (
    FIELD_RE,
    AuditRule,
    Condition,
    RuleSyntaxError,
    _field,
    lines_of,
    parse_rule,
    parse_rules,
)
from cisaudit.model.snapshot import Snapshot
from selftests.snapshots import audited_host

REPO = Path(__file__).resolve().parents[2]

TEXT = (
    "# -w /etc/docker -k docker\n"
    "-w /etc/docker -p wa -k docker\n"
    "-w /etc/dockerd.conf -k x\n"
    "\n"
    "-a always,exit -F path=/usr/bin/runc -F perm=x\r\n"
    "-w /etc/docker/daemon.json -k docker\n"
    "  -w /run/containerd -k docker  \n"
    "-w /etc/docker"
)


def _scanned(texts, paths):
    """The scan _mentions replaced: every line tested against every path."""
    return [
        f"{source}:{n}: {line.strip()}"
        for source, text in texts
        for n, line in enumerate(lines_of(text), 1)
        if any(p in line for p in paths)
    ]


@pytest.mark.parametrize(
    "paths",
    [
        {"/etc/docker"},
        {"/etc/docker", "/run/containerd", "/usr/bin/runc"},
        {"/etc/docker\n-w"},
        {""},
        {"/nowhere"},
        {"-k docker\n", "docker"},
        set(),
    ],
)
def test_mentions_names_the_lines_a_scan_of_every_line_names(paths):
    texts = [("a.rules", TEXT), ("auditctl -l", TEXT.replace("\n", "\n\n") + "\n"), ("empty", "")]
    assert _mentions(texts, paths) == _scanned(texts, paths)


def test_a_parsed_line_is_shared_and_cannot_change():
    """parse_rule is cached: a rules file and the listing (and a fleet's hosts) repeat lines."""
    text = "-a always,exit -F arch=b64 -S execve -F path=/usr/bin/x -F auid!=unset -k k"
    rule = parse_rule(text)
    assert parse_rule(text) is rule and isinstance(rule, AuditRule)
    assert rule.identity is rule.identity  # computed once
    with pytest.raises(AttributeError):
        rule.path = "/elsewhere"  # type: ignore[misc]


COUNT_SCANS = """
import collections, importlib.metadata as md, sys
reads = collections.Counter()
read_text = md.PathDistribution.read_text
def counted(self, filename):
    if filename == "entry_points.txt":
        reads[str(self._path)] += 1
    return read_text(self, filename)
md.PathDistribution.read_text = counted
import pytest
pytest.main(["--help", "-p", "no:cacheprovider"])
print("scans", max(reads.values()), file=sys.stderr)
"""


def test_the_plugins_modules_cost_no_scan_of_every_distributions_entry_points():
    """pytest read every installed distribution's entry_points.txt once per name in
    pytest_plugins (12 scans, about 800 failed lookups: 0.25 s on a host with 5,000 rules on
    absent paths); registered by the plugin itself, pytest's own scans remain."""
    out = subprocess.run([sys.executable, "-c", COUNT_SCANS], capture_output=True, text=True, check=True, cwd=REPO)
    scans = int(out.stderr.strip().splitlines()[-1].removeprefix("scans "))
    assert scans <= 3, f"{scans} scans of the installed distributions' entry points"


def _rule_message(path: bytes) -> bytes:
    """AUDIT_LIST_RULES with one exit,always rule watching `path` (struct audit_rule_data)."""
    fields, values = [105] + [0] * 63, [len(path)] + [0] * 63  # AUDIT_WATCH, its length in buf
    body = struct.pack("=III64I64I64I64II", 4, 2, 1, *[0] * 64, *fields, *values, *[0] * 64, len(path)) + path
    return struct.pack("=IHHII", 16 + len(body), 1013, 2, 1, 0) + body


class _NetlinkSocket:
    """Serves the kernel's rule list one message per receive, as the kernel does."""

    def __init__(self, *args: object) -> None:
        self.messages = [_rule_message(b"/etc/a"), _rule_message(b"/etc/b"), struct.pack("=IHHII", 16, 3, 2, 1, 0)]
        self.options: list[tuple[int, int]] = []

    def setsockopt(self, level: int, option: int, value: bytes) -> None:
        self.options.append((level, option))

    def bind(self, address: object) -> None: ...

    def send(self, data: bytes) -> None: ...

    def recv_into(self, buf: bytearray) -> int:
        message = self.messages.pop(0)
        buf[: len(message)] = message
        return len(message)


def test_the_kernel_list_reader_makes_one_receive_per_rule_and_nothing_else(monkeypatch, capsys):
    """One system call per rule: no poll() (a Python-side timeout) and no 1 MB buffer allocated
    and freed per message (mmap, mremap, munmap: 25,000 calls at 5,000 rules, 0.08 s)."""
    sockets: list[_NetlinkSocket] = []
    monkeypatch.setattr(socket, "socket", lambda *a: sockets.append(_NetlinkSocket()) or sockets[-1])
    with pytest.raises(SystemExit) as exited:
        exec(compile(KERNEL_RULES.read_text(), str(KERNEL_RULES), "exec"), {"__name__": "kernel_rules"})
    assert exited.value.code == 0
    assert capsys.readouterr().out == "4 2 - 105:0:/etc/a\n4 2 - 105:0:/etc/b\ndone\n"
    assert sockets[0].options == [(socket.SOL_SOCKET, socket.SO_RCVTIMEO)] and not sockets[0].messages


def _scanned_mount(mounts, real):
    """The scan _find_mount replaced: every mount tested, the longest (last of equals) kept."""
    best = None
    for mount in mounts:
        if (real == mount.point or real.startswith(mount.point.rstrip("/") + "/")) and (
            best is None or len(mount.point) >= len(best.point)
        ):
            best = mount
    return best


def test_a_paths_mount_is_found_from_its_ancestors_as_the_scan_of_every_mount_found_it():
    mounts = "/dev/vda / ext4 rw 0 0\ntmpfs /run tmpfs rw 0 0\nover /run ext4 rw 0 0\nx /run/a/b xfs rw 0 0\n"
    boot = BootModel(Snapshot(mounts=mounts), "")
    for real in ("/", "/run", "/run/a", "/run/a/b", "/run/a/bc", "/run/a/b/c", "/runx", "/etc", "rel", ""):
        assert boot.mount_of(real) == _scanned_mount(boot.mounts, real), real


@pytest.mark.parametrize(
    "value",
    ["path=/etc/x", "dir=/etc", "path==x", "path!=/x", "pathx=/y", "dir>=1", "path=", "auid>=1000", "a2&0100", "=x"],
)
def test_a_fields_name_operator_and_value_are_what_the_field_pattern_reads(value):
    """_field skips the pattern for `path=`/`dir=` (one per rule: 10,000 on such a host)."""
    m = FIELD_RE.match(value)
    if m is None:
        with pytest.raises(RuleSyntaxError):
            _field(value)
    else:
        assert _field(value) == m.groups()


def test_a_condition_repeated_over_thousands_of_rules_is_made_once():
    """2,000 rules with `-F auid>=1000 -F auid!=unset` hold two Condition objects, not 4,000:
    each made, and its canonical form computed, once."""
    rules = [
        parse_rule(f"-a always,exit -F arch=b64 -S execve -F path=/usr/bin/scale-{i} -F auid>=1000 -F auid!=unset -k p")
        for i in range(2000)
    ]
    held = {id(c) for rule in rules if isinstance(rule, AuditRule) for c in rule.conditions}
    assert len(held) == 2
    assert {c.canonical for c in rules[0].conditions} == {"auid>=1000", "auid!=unset"}


def _thousand_rule_host(count: int) -> Snapshot:
    rules = "".join(
        f"-w /etc/scale-{i}.conf -p wa -k site\n"
        if i % 2
        else f"-a always,exit -F arch=b64 -S openat -F dir=/srv/app{i} -F auid>=1000 -k app\n"
        for i in range(count)
    )
    return audited_host(listing_text=rules, rules_d=[("/etc/audit/rules.d/50-all.rules", rules)])


def test_a_thousand_rule_hosts_model_is_built_without_a_garbage_collection():
    """Parsing and replaying thousands of rules makes long-lived objects only: the collector,
    which walked them about 500 times at 10,000 rules (a fifth of the model's CPU), stays out of
    the build (model/heap.py), and is on again after it: after each of the three builds one
    young-generation pass walks what it made (and may start one older pass)."""
    passes: list[int] = []

    def counted(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            passes.append(info["generation"])

    assessment = Assessment(_thousand_rule_host(3000), "docker")
    assert gc.isenabled()
    gc.callbacks.append(counted)
    try:
        assessment.persisted  # noqa: B018 - the build is what is measured
        assessment.live_state  # noqa: B018
        assessment.boot_state  # noqa: B018
    finally:
        gc.callbacks.remove(counted)
    assert len(assessment.persisted.rules) == 3000
    assert len(passes) <= 6, f"{len(passes)} collections while the model was built"
    assert gc.isenabled()


def test_the_collector_is_left_as_the_caller_had_it():
    gc.disable()
    try:
        with uncollected():
            with uncollected():
                assert not gc.isenabled()
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
    with uncollected():
        pass
    assert gc.isenabled()


RULESETS = REPO / "selftests" / "rulesets"
EDGES = [
    "-w /etc/x -p wa -k k",
    "-W /etc/x -p wa",
    "-w /etc/x/ -p wa",
    "-w / -p wa",
    "-w etc -p wa",
    "-w  /x -p wa",
    "-w /x -S open",
    "-w /x -p q",
    "-w /x -F arch=foo",
    "-w /x -k k\r",
    "-w /x #c",
    "-w /a b",
    "-w /x -p wa -D",
    "-w /etc/path=x -p wa",
    "-a always,exit -F path=/a=b -F perm=x",
    "-a always,exit -F dir=/srv/x -F auid>=1000 -k app",
    "-a exit,always -F path=/x/ -k k",
    "-a always,exit -F path=/x -F path=/y",
    "-a always,exit -Fpath=/x -F dir=/y",
    "-a always,exit -F path!=/x -F dir=/y",
    "-A always,exit -F path=/x -k k",
    "-d always,exit -F path=/x -k k",
    "-a never,exit -F path=/x",
    "-a always,exit -F arch=b64 -S execve -F path=/usr/bin/x -F perm=x -F auid>=1000 -F auid!=-1 -k privileged",
    "-a always,exit -F arch=b64 -S execve -F path=/usr/bin/y -F perm=x -F auid>=1000 -F auid!=-1 -k privileged",
    "-w  /x -p wa",
    "-w /x  -p wa",
    "-a always,exit -F  path=/x",
    "-a always,exit x-F path=/x",
    "-w /x -k -w",
    "-w / -p r",
    "-w",
    "-w /x -p wa -F path=/y",
]


def _outcome(parse, text):
    try:
        return repr(parse(text))  # every field, those the rule's equality skips (text, path_field) too
    except RuleSyntaxError as exc:
        return f"error: {exc}"


def test_a_line_read_from_its_shape_is_the_line_parsed_in_full():
    """parse_rule reads a line that differs from one already parsed only by its plain path from
    that line's shape: for every line of the real rulesets and the edge cases, what it gives is
    what the full parse gives, field for field, errors too."""
    lines = [line for f in sorted(RULESETS.rglob("*.rules")) for line in f.read_text().split("\n")] + EDGES
    rules = [t for t in (line.strip(" ") for line in lines) if t and not t.startswith("#") and "\t" not in t]
    assert len(rules) > 500
    for text in rules:
        assert _outcome(parse_rule, text) == _outcome(rules_module._parsed, text), text


def test_thousands_of_lines_of_one_shape_are_parsed_in_full_once(monkeypatch):
    """10,000 rules are a few shapes (STIG's watches, per-binary rules): 2,000 new lines of one
    shape split their options once, not 2,000 times."""
    splits: list[int] = []
    split = rules_module._split_options
    monkeypatch.setattr(rules_module, "_split_options", lambda tokens: splits.append(1) or split(tokens))
    shape = "-a always,exit -F path=/usr/bin/shape-{} -F perm=x -F auid>=1000 -k shape"
    made = [parse_rule(shape.format(i)) for i in range(2000)]
    assert len(splits) <= 1
    assert made[7] == AuditRule(
        "exit",
        "always",
        "/usr/bin/shape-7",
        perms=frozenset("x"),
        keys=("shape",),
        conditions=(Condition("auid", ">=", "1000"),),
    )
    assert made[7].text == "-a always,exit -F path=/usr/bin/shape-7 -F perm=x -F auid>=1000 -k shape"


def test_the_live_lists_exit_rules_carry_their_persisted_origin_without_a_copy_each(monkeypatch):
    """live_state gives each exit rule its persisted twin's file:line as it makes it: the
    assessment no longer copies every listed rule (dataclasses.replace, 3,000 here) to add it."""
    copies: list[int] = []
    copy = evaluate_module.replace
    monkeypatch.setattr(evaluate_module, "replace", lambda *a, **k: copies.append(1) or copy(*a, **k))
    state = Assessment(_thousand_rule_host(3000), "docker").live_state
    assert copies == []
    assert len(state.exit) == 3000
    assert state.exit[2999].origin == "/etc/audit/rules.d/50-all.rules:3000"
    assert state.exit[0].cite().endswith("persisted at /etc/audit/rules.d/50-all.rules:1)")


def test_the_boot_time_load_judges_each_distinct_parent_once(monkeypatch):
    """3,000 inode watches in /etc: each path judged at boot once and /etc once (6,000 before)."""
    calls: list[str] = []
    at_boot = BootModel.at_boot
    monkeypatch.setattr(BootModel, "at_boot", lambda self, real, now: calls.append(real) or at_boot(self, real, now))
    rules = "".join(f"-w /etc/scale-{i}.conf -p wa -k site\n" for i in range(3000))
    replay = Assessment(audited_host(rules_d=[("/etc/audit/rules.d/50-all.rules", rules)]), "docker").persisted
    assert len(replay.rules) == 3000 and not replay.failures
    assert calls.count("/etc") == 1 and len(calls) == 3001


def test_the_whole_audit_bench_reads_pytests_own_cpu_and_its_childrens_apart():
    from bench.replay_scale import SPLIT_CPU, _split_cpu  # noqa: PLC0415 (a bench script, not the package)

    assert "RUSAGE_SELF" in SPLIT_CPU and "RUSAGE_CHILDREN" in SPLIT_CPU
    assert _split_cpu("1 failed\ncisaudit-bench-cpu 1.25 0.5\n") == (1.25, 0.5)
    assert _split_cpu("the run printed no split") == (0.0, 0.0)


def _scanned_near(exit_rules: list[KernelRule], path: str) -> list[KernelRule]:
    """The scan exit_near replaced: every rule tested."""
    return [kr for kr in exit_rules if kr.location is None or _under(path, kr.location) or _under(kr.location, path)]


def test_the_exclusion_cells_walk_the_rules_near_the_excluded_directory_as_the_walk_of_every_rule():
    """The data root's exclusions (docs/benchmarks.md) are judged over the rules near each one, as
    judge() does: the same cells as walking every exit rule (a 10,000-rule host: 0.54 -> 0.04 s)."""
    listing = "\n".join(
        [
            "-a always,exit -F arch=b64 -S openat -F dir=/var/lib/docker -F key=docker",
            "-a never,exit -F dir=/var/lib/docker/volumesx -F perm=rwxa",
            "-a never,exit -F dir=/var/lib/docker/volumes -F perm=rwxa",
            "-a always,exit -F arch=b32 -S open -F key=docker",
            "-w /etc/docker -p wa -k docker",
            "-a never,exit -F dir=/var/lib/docker/overlay2 -F perm=r",
        ]
    )
    state, unreadable = live_state(Snapshot(listing_text=listing), [])
    assert unreadable == [] and len(state.exit) == 6
    for path in ("/var/lib/docker/volumes", "/var/lib/docker/overlay2", "/var/lib/docker/volumesx/a"):
        obj = AuditObject(path, True, "ext4")
        walked = [exclusion_cell(state, obj, p, abi, "docker", "x86_64") for p in "rwxa" for abi in ("b64", "b32")]
        assert exclusion_cells(state, obj, ("b64", "b32"), "docker", "x86_64") == walked, path
        assert any(keyed for _, keyed in walked), path  # the keyed rules above it are among the cells


def test_the_exit_rules_near_a_path_are_those_the_scan_of_every_rule_found():
    """Issue 26.1: judge() takes the rules near an object from an index of their locations; the
    same rules, in list order, as testing each, for odd locations too ("", "/", a trailing slash,
    a doubled slash, a sibling sharing a prefix)."""
    locations = [None, "", "/", "/etc", "/etc/", "/etc//docker", "/etc/docker", "/etc/dockerx", "/etc/docker/a/b"]
    locations += ["/var/lib/docker", "/var", "/etc/docker", None, "/run/containerd/containerd.sock", "/x"]
    rule = AuditRule("exit", "always", path="/x")
    line = parse_rules("-w /x -p wa -k k", "t")[0]
    state = FilterState(exit=[KernelRule(rule, line, location) for location in locations])
    for path in ("/", "/etc", "/etc/docker", "/etc/docker/a", "/etc//docker", "/var/lib/docker/x", "/nope", ""):
        assert state.exit_near(path) == _scanned_near(state.exit, path), path
    state.exit.append(KernelRule(rule, line, "/etc/docker/late"))  # a list changed since is indexed again
    assert state.exit_near("/etc/docker") == _scanned_near(state.exit, "/etc/docker")
