"""Hosts with thousands of rules (issue 26.1): the model's shortcuts give what the plain scans gave."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from cisaudit.host.probe import KERNEL_RULES
from cisaudit.model.boot import BootModel
from cisaudit.model.evaluate import _mentions
from cisaudit.model.rules import AuditRule, lines_of, parse_rule
from cisaudit.model.snapshot import Snapshot

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
    exec(compile(KERNEL_RULES.read_text(), str(KERNEL_RULES), "exec"), {"__name__": "kernel_rules"})
    assert capsys.readouterr().out == "exit always path 2f6574632f61\nexit always path 2f6574632f62\ndone\n"
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
