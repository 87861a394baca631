"""cisaudit.model.evaluate: `coverage` cells and Assessment verdicts from hand-made Snapshots."""

import random

import pytest

from cisaudit.model.catalogue import controls
from cisaudit.model.evaluate import Assessment, explain
from cisaudit.model.kernel import AuditObject, FilterState, KernelRule, WatchKind, judge
from cisaudit.model.rules import AuditRule, machine_abis, parse_rules
from cisaudit.model.snapshot import PathInfo
from cisaudit.model.verdict import Status
from selftests.snapshots import STATUS, audited_host

BOTH = ("b64", "b32")
CONTROLS = {c.id: c for c in controls()}
AUGENRULES_UNIT = "[Service]\nExecStart=/sbin/auditd\nExecStartPost=-/sbin/augenrules --load\n"
AUDITCTL_UNIT = "[Service]\nExecStart=/sbin/auditd\nExecStartPost=-/sbin/auditctl -R /etc/audit/audit.rules\n"
RULES_FILE = "/etc/audit/rules.d/docker.rules"


DIRS = {"/etc", "/etc/docker"}


def rules(*lines):
    """Rules as a persisted load binds them (a `-w` on a directory is a tree watch), on paths without symlinks."""
    out = []
    for line in parse_rules("\n".join(lines), "t.rules"):
        if isinstance(line.item, AuditRule):
            rule = line.item
            tree = rule.path_field == "dir" or (rule.path_field == "watch" and rule.path in DIRS)
            out.append(
                KernelRule(
                    rule,
                    line,
                    rule.path,
                    frozenset({WatchKind.TREE if tree else WatchKind.INODE}),
                    frozenset({rule.action}),
                )
            )
    return out


def coverage(kernel_rules, path, perms, key, abis, machine="x86_64"):
    """(what records, what goes wrong) for a control on `path` (a watch control on a directory: its subtree)."""
    state = FilterState(exit=[r for r in kernel_rules if r.rule.filter == "exit"])
    obj = AuditObject(path, perms == "rwxa" and path in DIRS)
    return explain(judge(state, obj, perms, abis, key, machine), abis)


def pair(path, perms="rwxa", key="docker", field="path"):
    return [f"-a always,exit -F arch={a} -S all -F {field}={path} -F perm={perms} -F key={key}" for a in ("b32", "b64")]


W = "-w /etc/docker -k docker"
COVERAGE = {
    "watch-literal": ([W], "rwxa", True, ""),
    "watch-canonical": (["-w /etc/docker -p rwxa -k docker"], "rwxa", True, ""),
    "syscall-literal-for-syscall-control": (
        ["-a exit,always -F path=/etc/docker -F perm=war -k docker"],
        "rwa",
        True,
        "",
    ),
    "syscall-literal-for-watch-control": (
        ["-a exit,always -F path=/etc/docker -F perm=war -k docker"],
        "rwxa",
        False,
        "execute: not recorded: no rule records with the key",
    ),
    "narrow-wa": (
        ["-w /etc/docker -p wa -k docker"],
        "rwxa",
        False,
        "read, execute: not recorded: no rule records with the key",
    ),
    "cac-pair-path-on-dir": (pair("/etc/docker"), "rwxa", False, "only partly by"),  # inode, not subtree
    "cac-pair-dir": (pair("/etc/docker", field="dir"), "rwxa", True, ""),
    "b64-only": (
        pair("/etc/docker")[1:],
        "rwxa",
        False,
        "attribute change on b32: not recorded: no rule records with the key",
    ),
    "b32-only": (pair("/etc/docker")[:1], "rwxa", False, "attribute change on b64"),
    "wrong-key": (
        ["-w /etc/docker -k cis"],
        "rwxa",
        False,
        "recorded with another key (key cis, not 'docker') by `-w /etc/docker -k cis`",
    ),
    "no-key": (["-w /etc/docker"], "rwxa", False, "recorded with another key (no key, not 'docker')"),
    "key-case": (["-w /etc/docker -k Docker"], "rwxa", False, "not 'docker'"),
    "several-keys": (["-w /etc/docker -k cis -k docker"], "rwxa", True, ""),
    "several-key-fields": (pair("/etc/docker", key="cis -F key=docker", field="dir"), "rwxa", True, ""),
    "never-first": (["-a never,exit -F path=/etc/docker -F perm=rwxa", W], "rwxa", False, "(a `never` rule"),
    "never-after": ([W, "-a never,exit -F path=/etc/docker -F perm=rwxa"], "rwxa", True, ""),
    "never-on-w-only": (
        ["-a never,exit -F path=/etc/docker -F perm=w", W],
        "rwxa",
        False,
        "write: not recorded (a `never` rule) by `-a never,exit",
    ),
    "never-b32-only": (
        ["-a never,exit -F arch=b32 -S all -F path=/etc/docker", W],
        "rwxa",
        False,
        "attribute change on b32",
    ),
    "other-key-first": (["-w /etc/docker -k cis", W], "rwxa", False, "key cis, not"),
    "split-perms": (["-w /etc/docker -p wa -k docker", "-w /etc/docker -p rx -k docker"], "rwxa", True, ""),
    "split-perms-other-key-half": (
        ["-w /etc/docker -p wa -k docker", "-w /etc/docker -p rx -k x"],
        "rwxa",
        False,
        "read, execute: recorded with another key (key x, not 'docker')",
    ),
    "auid-only": (["-a always,exit -F path=/etc/docker -F auid>=1000 -F key=docker"], "rwxa", False, "only partly by"),
    "auid-then-full": (["-a always,exit -F path=/etc/docker -F auid>=1000 -F key=docker", W], "rwxa", True, ""),
    "conditional-other-key-first": (
        ["-a always,exit -F path=/etc/docker -F auid>=1000 -k x", W],
        "rwxa",
        False,
        "(by processes with auid>=1000): recorded with another key (key x",
    ),
    "syscall-narrowed": (
        [
            "-a always,exit -F arch=b64 -S open,openat -F path=/etc/docker -k docker",
            "-a always,exit -F arch=b32 -S open,openat -F path=/etc/docker -k docker",
        ],
        "rwxa",
        False,
        "no rule records with the key",
    ),
    "neighbour-file": (["-w /etc/docker/daemon.json -k docker"], "rwxa", False, "no rule records with the key"),
    "neighbour-prefix": (["-w /etc/dockerx -k docker"], "rwxa", False, "no rule records with the key"),
    "parent-dir-tree": (["-w /etc -k docker"], "rwxa", True, ""),
    "parent-dir-other-key-first": (
        ["-w /etc -p wa -k etc", W],
        "rwxa",
        False,
        "write, attribute change: recorded with another key (key etc, not 'docker') by `-w /etc -p wa -k etc`",
    ),
    "root-cmd-execve-first": (
        ["-a always,exit -F arch=b64 -S execve -F euid=0 -k rootcmd", W],
        "rwxa",
        False,
        "execute on b64 (execve by processes with euid=0): recorded with another key (key rootcmd",
    ),
    "root-cmd-execve-after": ([W, "-a always,exit -F arch=b64 -S execve -F euid=0 -k rootcmd"], "rwxa", True, ""),
    "non-exit-list": (["-a always,task -F path=/etc/docker -k docker"], "rwxa", False, "no rule records with the key"),
    "nothing": (
        [],
        "rwxa",
        False,
        "read, write, execute, attribute change: not recorded: no rule records with the key",
    ),
}


@pytest.mark.parametrize(("lines", "perms", "ok", "reason"), COVERAGE.values(), ids=COVERAGE.keys())
def test_coverage(lines, perms, ok, reason):
    deciding, problems = coverage(rules(*lines), "/etc/docker", perms, "docker", BOTH)
    assert (not problems) == ok, problems
    assert reason in "; ".join(problems)
    assert bool(deciding) or not ok


def test_coverage_cites_the_deciding_line():
    _, problems = coverage(
        rules("-w /x -p r -k docker", "-w /etc/docker -p wa -k other"), "/etc/docker", "wa", "docker", ("b64",)
    )
    assert problems == [
        "write, attribute change: recorded with another key (key other, not 'docker') "
        "by `-w /etc/docker -p wa -k other` (t.rules:2)"
    ]


@pytest.mark.parametrize(
    ("lines", "ok"),
    [
        (pair("/usr/bin/dockerd")[:1], True),
        (pair("/usr/bin/dockerd")[1:], False),
        (["-w /usr/bin/dockerd"], False),
    ],
    ids=["b32-rule", "b64-rule", "no-key"],
)
def test_coverage_on_a_32bit_host(lines, ok):
    _, problems = coverage(rules(*lines), "/usr/bin/dockerd", "rwxa", "docker", ("b32",), machine="i686")
    assert (not problems) == ok


def test_coverage_rule_on_the_real_object_counts_not_on_a_link():
    assert coverage(rules("-w /usr/sbin/runc -k docker"), "/usr/sbin/runc", "rwxa", "docker", BOTH)[1] == []
    assert coverage(rules("-w /usr/bin/runc -k docker"), "/usr/sbin/runc", "rwxa", "docker", BOTH)[1] != []


@pytest.mark.parametrize(
    ("arch", "abis"),
    [("x86_64", BOTH), ("aarch64", BOTH), ("i686", ("b32",)), ("armv7l", ("b32",)), ("", BOTH), ("mips", BOTH)],
)
def test_required_abis(arch, abis):
    assert machine_abis(arch) == abis


# ---- a Debian 12 host with docker.io, containerd and runc (docs/kernel-behaviour.md) -----------------
def info(path, kind="file", target=None):
    return PathInfo(path, kind, path if target is None else target)


DEBIAN_PATHS = [
    info("/usr/bin/dockerd", "absent"),
    info("/usr/sbin/dockerd"),
    info("/usr/bin", "dir"),
    info("/usr/sbin", "dir"),
    info("/run/containerd", "dir"),
    info("/run", "dir"),
    info("/var/lib/docker", "dir"),
    info("/var/lib", "dir"),
    info("/etc/docker", "dir"),
    info("/etc", "dir"),
    info("/etc/docker/daemon.json", "absent"),
    info("/lib/systemd/system/docker.service", "file", "/usr/lib/systemd/system/docker.service"),
    info("/lib/systemd/system/docker.socket", "file", "/usr/lib/systemd/system/docker.socket"),
    info("/lib/systemd/system", "dir", "/usr/lib/systemd/system"),
    info("/usr/lib/systemd/system/docker.service"),
    info("/usr/lib/systemd/system/docker.socket"),
    info("/run/containerd/containerd.sock", "socket"),
    info("/etc/default/docker"),
    info("/etc/default", "dir"),
    info("/etc/containerd/config.toml"),
    info("/etc/containerd", "dir"),
    info("/etc/sysconfig/docker", "absent", ""),
    info("/etc/sysconfig", "absent"),
    info("/usr/bin/containerd"),
    info("/usr/bin/containerd-shim"),
    info("/usr/bin/containerd-shim-runc-v1"),
    info("/usr/bin/containerd-shim-runc-v2"),
    info("/usr/bin/runc", "symlink", "/usr/sbin/runc"),
    info("/usr/sbin/runc"),
]
LOCATED = {  # where each control's path is on that host
    "1.1.3": "/usr/sbin/dockerd",
    "1.1.7": "/lib/systemd/system/docker.service",
    "1.1.9": "/lib/systemd/system/docker.socket",
}
ABSENT = {"1.1.11", "1.1.13"}
RULE_AT = {**LOCATED, "1.1.18": "/usr/sbin/runc"}  # a rule on the link /usr/bin/runc records nothing


def host(rules_text="", listing="", **over):
    snap = audited_host(
        auditctl="/usr/sbin/auditctl",
        auditd="/usr/sbin/auditd",
        status_text=STATUS,
        listing_text=listing,
        rules_d=[(RULES_FILE, rules_text)],
        units={
            "docker.service": "/lib/systemd/system/docker.service",
            "docker.socket": "/lib/systemd/system/docker.socket",
        },
        binaries={
            "dockerd": "/usr/sbin/dockerd",
            "containerd": "/usr/bin/containerd",
            "runc": "/usr/bin/runc",
            **{n: f"/usr/bin/{n}" for n in ("containerd-shim", "containerd-shim-runc-v1", "containerd-shim-runc-v2")},
        },
        paths={p.path: p for p in DEBIAN_PATHS},
    )
    for name, value in over.items():
        setattr(snap, name, value)
    return snap


def good_rules():
    return "\n".join(c.rule_text(RULE_AT.get(c.id, c.path)) for c in controls() if c.id != "1.1.13")


def good_listing():
    return "\n".join(
        f"-w {RULE_AT.get(c.id, c.path)} -p {c.required_perms} -k docker" for c in controls() if c.id != "1.1.13"
    )


def verdicts(snap, check, **kw):
    a = Assessment(snap, "docker", **kw)
    return {c.id: a.control_verdict(c, check).status for c in controls()}


def expected(fail=(), na=ABSENT, error=(), status=Status.PASS):
    return {
        c.id: Status.ERROR
        if c.id in error
        else Status.NOT_APPLICABLE
        if c.id in na
        else Status.FAIL
        if c.id in fail
        else status
        for c in controls()
    }


@pytest.mark.parametrize("check", ["live", "persisted"])
def test_compliant_debian_host(check):
    assert verdicts(host(good_rules(), good_listing()), check) == expected()


def test_compliant_host_in_auditctl_mode():
    snap = host(listing=good_listing(), auditd_unit=AUDITCTL_UNIT, rules_d=[], audit_rules=good_rules())
    assert verdicts(snap, "persisted") == expected()


def test_auditctl_mode_ignores_rules_d():
    snap = host(good_rules(), good_listing(), auditd_unit=AUDITCTL_UNIT, audit_rules="")
    assert verdicts(snap, "persisted") == expected(fail=set(CONTROLS) - ABSENT)


def test_pass_evidence_names_the_alias():
    snap = host("-w /usr/sbin/runc -k docker\n-w /usr/lib/systemd/system/docker.service -k docker")
    a = Assessment(snap, "docker")
    runc = a.control_verdict(CONTROLS["1.1.18"], "persisted")
    unit = a.control_verdict(CONTROLS["1.1.7"], "persisted")
    assert (runc.status, unit.status) == (Status.PASS, Status.PASS)
    assert any("what /usr/bin/runc resolves to" in e for e in runc.evidence)
    assert f"({RULES_FILE}:2)" in unit.summary


def test_benchmark_literal_rules_on_debian():
    """All 16 of the benchmark's rules as printed: /etc/sysconfig is missing, so loading stops there."""
    literal = "\n".join(c.rule_text(c.path) for c in controls())
    a = Assessment(host(literal), "docker")
    stop = f"{RULES_FILE}:11"
    after = {"1.1.14", "1.1.15", "1.1.16", "1.1.17", "1.1.18"}
    assert {c.id: a.control_verdict(c, "persisted").status for c in controls()} == expected(fail=after | {"1.1.3"})
    for cid in after:
        assert f"never loads at boot: loading stops at {stop}" in a.control_verdict(CONTROLS[cid], "persisted").summary
    dockerd = a.control_verdict(CONTROLS["1.1.3"], "persisted")
    assert "/usr/sbin/dockerd needs -p rwxa -k docker" in dockerd.summary
    health = a.host_verdict("load-health")
    assert health.status == Status.FAIL and stop in health.summary and "/etc/sysconfig/docker" in health.summary
    assert any("5 rule line(s) after it never load" in e for e in health.evidence)


W6 = "-w /etc/docker -k docker"
S4 = "-a exit,always -F path=/run/containerd -F perm=war -k docker"
PERSISTED = {  # rules.d text -> (1.1.6 /etc/docker watch, 1.1.4 /run/containerd syscall)
    "literal": (f"{W6}\n{S4}", Status.PASS, Status.PASS),
    "listing-forms": (
        "-w /etc/docker -p rwxa -k docker\n-w /run/containerd -p rwa -k docker",
        Status.PASS,
        Status.PASS,
    ),
    # path= on a directory watches its inode only; the benchmark's -w covers the whole subtree
    "cac-pairs": ("\n".join(pair("/etc/docker") + pair("/run/containerd", "rwa")), Status.FAIL, Status.PASS),
    "cac-pairs-dir": (
        "\n".join(pair("/etc/docker", field="dir") + pair("/run/containerd", "rwa")),
        Status.PASS,
        Status.PASS,
    ),
    "cac-b64-only": ("\n".join(pair("/etc/docker")[1:] + pair("/run/containerd", "rwa")[1:]), Status.FAIL, Status.FAIL),
    "attached": (
        "-a always,exit -Fdir=/etc/docker -kdocker\n-a exit,always -Fpath=/run/containerd -Fperm=war -kdocker",
        Status.PASS,
        Status.PASS,
    ),
    # measured: the kernel rejects path= ending in / (EINVAL) and the load stops there
    "path-trailing-slash": (
        "-w /etc/docker -k docker\n-a exit,always -F path=/run/containerd/ -F perm=war -k docker",
        Status.PASS,
        Status.FAIL,
    ),
    "trailing-slash": ("-w /etc/docker/ -k docker\n-w /run/containerd/ -p rwxa -k docker", Status.PASS, Status.PASS),
    "narrow-wa": ("-w /etc/docker -p wa -k docker\n-w /run/containerd -p wa -k docker", Status.FAIL, Status.FAIL),
    "syscall-perms-on-watch": ("-w /etc/docker -p rwa -k docker\n" + S4, Status.FAIL, Status.PASS),
    "wrong-key": ("-w /etc/docker -k cis\n-w /run/containerd -k containerd", Status.FAIL, Status.FAIL),
    "commented": (f"#{W6}\n  # {S4}", Status.FAIL, Status.FAIL),
    "trailing-comment-stops-load": (f"-b 8192\n{W6} # 1.1.6\n{S4}", Status.FAIL, Status.FAIL),
    "never-first": (f"-a never,exit -F path=/etc/docker -F perm=rwxa\n{W6}\n{S4}", Status.FAIL, Status.PASS),
    "prepended-never": (f"{W6}\n{S4}\n-A never,exit -F path=/run/containerd -F perm=r", Status.PASS, Status.FAIL),
    "auid-conditional": (
        "-a always,exit -F path=/etc/docker -F auid>=1000 -F key=docker\n"
        "-a always,exit -F path=/run/containerd -F perm=war -F auid>=1000 -F key=docker",
        Status.FAIL,
        Status.FAIL,
    ),
    "neighbours-only": (
        "-w /etc/docker/daemon.json -k docker\n-w /run/containerd/containerd.sock -k docker",
        Status.FAIL,
        Status.FAIL,
    ),
    "W-removes": (f"{W6}\n{S4}\n-W /etc/docker -k docker", Status.FAIL, Status.PASS),
    "D-moved-first": (f"{W6}\n-D\n{S4}", Status.PASS, Status.PASS),
    "duplicate-stops-load": (f"{W6}\n-w /etc/docker/ -p rwxa -k docker\n{S4}", Status.PASS, Status.FAIL),
    "duplicate-after-c": (f"-c\n{W6}\n{W6}\n{S4}", Status.PASS, Status.PASS),
    "missing-dir-stops-load": (
        "-a always,exit -F dir=/etc/sysconfig -F perm=wa -k docker\n" + f"{W6}\n{S4}",
        Status.FAIL,
        Status.FAIL,
    ),
    "e2-last": (f"{W6}\n-e 2\n{S4}", Status.PASS, Status.PASS),  # augenrules moves -e 2 to the end
    "control-lines": (
        f"-D\n-b 8192\n-f 1\n--backlog_wait_time 60000\n-r 100\n--loginuid-immutable\n-i\n{W6}\n{S4}",
        Status.PASS,
        Status.PASS,
    ),
}


@pytest.mark.parametrize(("text", "etc_docker", "run_containerd"), PERSISTED.values(), ids=PERSISTED.keys())
def test_persisted_scenarios(text, etc_docker, run_containerd):
    a = Assessment(host(text), "docker")
    got = [a.control_verdict(CONTROLS[c], "persisted").status for c in ("1.1.6", "1.1.4")]
    assert got == [etc_docker, run_containerd]


AUDIT_RULES = {  # /etc/audit/audit.rules loaded as written: nothing is moved
    "e2-in-middle": (f"{W6}\n-e 2\n{S4}\n{S4.replace('docker', 'd2')}", Status.PASS, Status.FAIL),
    "D-in-middle": (f"{W6}\n-D\n{S4}", Status.FAIL, Status.PASS),
    "literal": (f"-D\n-b 8192\n{W6}\n{S4}\n-e 2", Status.PASS, Status.PASS),
}


@pytest.mark.parametrize(("text", "etc_docker", "run_containerd"), AUDIT_RULES.values(), ids=AUDIT_RULES.keys())
def test_audit_rules_scenarios(text, etc_docker, run_containerd):
    a = Assessment(host(auditd_unit=AUDITCTL_UNIT, audit_rules=text), "docker")
    got = [a.control_verdict(CONTROLS[c], "persisted") for c in ("1.1.6", "1.1.4")]
    assert [v.status for v in got] == [etc_docker, run_containerd]


def test_e2_in_the_middle_names_the_failing_line():
    a = Assessment(host(auditd_unit=AUDITCTL_UNIT, audit_rules=f"{W6}\n-e 2\n{S4}\n"), "docker")
    verdict = a.control_verdict(CONTROLS["1.1.4"], "persisted")
    assert verdict.status == Status.FAIL
    assert any(e.startswith("at boot /etc/audit/audit.rules:3: ") and "immutable" in e for e in verdict.evidence)


LIVE = {
    "canonical": ("-w /etc/docker -p rwxa -k docker\n-w /run/containerd -p rwa -k docker", Status.PASS, Status.PASS),
    "two-keys": (
        "-w /etc/docker -p rwxa -k docker -k cis\n-w /run/containerd -p rwa -k cis -k docker",
        Status.PASS,
        Status.PASS,
    ),
    "arch-pairs": (
        "\n".join(pair("/etc/docker", field="dir") + pair("/run/containerd", "rwa")),
        Status.PASS,
        Status.PASS,
    ),
    "arch-pairs-path-on-dir": (
        "\n".join(pair("/etc/docker") + pair("/run/containerd", "rwa")),
        Status.FAIL,
        Status.PASS,
    ),
    "arch-b64-only": (
        "\n".join(pair("/etc/docker")[1:] + pair("/run/containerd", "rwa")[1:]),
        Status.FAIL,
        Status.FAIL,
    ),
    "narrow": ("-w /etc/docker -p wa -k docker\n-w /run/containerd -p wa -k docker", Status.FAIL, Status.FAIL),
    "no-rules": ("No rules", Status.FAIL, Status.FAIL),
    "never-listed-like-watch": (
        "-a never,exit -S all -F path=/etc/docker\n-w /etc/docker -p rwxa -k docker\n"
        "-w /run/containerd -p rwa -k docker",
        Status.FAIL,
        Status.PASS,
    ),
    "other-key-first": (
        "-w /etc/docker -p rwxa -k x\n-w /etc/docker -p rwxa -k docker\n-w /run/containerd -p rwa -k docker",
        Status.FAIL,
        Status.PASS,
    ),
    "conditional": (
        "-a always,exit -S all -F path=/etc/docker -F perm=rwxa -F auid>=1000 -F key=docker\n"
        "-a always,exit -F arch=b64 -S open,openat -F path=/run/containerd -F key=docker",
        Status.FAIL,
        Status.FAIL,
    ),
    "neighbours": (
        "-w /etc/docker/daemon.json -p rwxa -k docker\n-w /run/containerd/containerd.sock -p rwxa -k docker",
        Status.FAIL,
        Status.FAIL,
    ),
}


@pytest.mark.parametrize(("listing", "etc_docker", "run_containerd"), LIVE.values(), ids=LIVE.keys())
def test_live_scenarios(listing, etc_docker, run_containerd):
    """Loaded from the same persisted rules: they tell the listing's `-w` lines apart."""
    a = Assessment(host(listing.replace("No rules", ""), listing=listing), "docker")
    got = [a.control_verdict(CONTROLS[c], "live").status for c in ("1.1.6", "1.1.4")]
    assert got == [etc_docker, run_containerd]


def test_live_never_is_known_from_the_persisted_rules():
    never = "-a never,exit -F path=/etc/docker -F perm=rwxa"
    a = Assessment(host(f"{never}\n{W6}", listing="-w /etc/docker -p rwxa\n-w /etc/docker -p rwxa -k docker"), "docker")
    verdict = a.control_verdict(CONTROLS["1.1.6"], "live")
    assert verdict.status == Status.FAIL and "(a `never` rule" in verdict.summary


def test_a_listing_note_is_evidence_near_its_rule_not_beside_a_name_prefix():
    # /etc is above /etc/docker; /etc/dock only shares its first characters (no rule of it can match).
    nevers = "-a never,exit -F path=/etc -F perm=wa\n-a never,exit -F path=/etc/dock -F perm=wa"
    listing = f"{good_listing()}\n-w /etc -p wa\n-w /etc/dock -p wa"
    a = Assessment(host(f"{good_rules()}\n{nevers}", listing=listing), "docker")
    evidence = " | ".join(a.control_verdict(CONTROLS["1.1.6"], "live").evidence)
    assert "`-a never,exit -F path=/etc -F perm=wa` says which" in evidence
    assert "/etc/dock " not in evidence


PRECONDITIONS = {  # host-wide errors come before existence; a failed listing only after it
    "not-root": (dict(uid=1000), Status.ERROR, Status.ERROR, ()),
    "uid-unknown": (dict(uid=None), Status.ERROR, Status.ERROR, ()),
    "no-auditctl": (dict(auditctl=None), Status.ERROR, Status.ERROR, ()),
    "unreadable-rules": (dict(unreadable=["/etc/audit/rules.d/x.rules"]), Status.ERROR, Status.ERROR, ()),
    "listing-failed": (dict(listing_rc=1, listing_text="You must be root"), Status.ERROR, Status.PASS, ABSENT),
}


@pytest.mark.parametrize(("over", "live", "persisted", "na"), PRECONDITIONS.values(), ids=PRECONDITIONS.keys())
def test_preconditions(over, live, persisted, na):
    snap = host(good_rules(), good_listing(), **over)
    assert verdicts(snap, "live") == expected(status=live, na=na)
    assert verdicts(snap, "persisted") == expected(status=persisted, na=na)


def test_path_not_examined_is_an_error():
    snap = host(good_rules(), good_listing(), daemon_json='{"data-root": "/srv/docker"}')
    verdict = Assessment(snap, "docker").control_verdict(CONTROLS["1.1.5"], "live")
    assert verdict.status == Status.ERROR and "/srv/docker was not examined" in verdict.summary


@pytest.mark.parametrize("check", ["live", "persisted"])
def test_require_all_fails_absent_paths(check):
    assert verdicts(host(good_rules(), good_listing()), check, require_all=True) == expected(fail=ABSENT, na=())


def test_garbage_line_is_reported_with_file_and_line():
    snap = host(listing=good_listing())
    snap.rules_d = [("/etc/audit/rules.d/00-junk.rules", "# junk\n\x00\xff\x1b garbage\n"), (RULES_FILE, good_rules())]
    a = Assessment(snap, "docker")
    verdict = a.control_verdict(CONTROLS["1.1.6"], "persisted")
    assert verdict.status == Status.FAIL
    assert "never loads at boot: loading stops at /etc/audit/rules.d/00-junk.rules:2" in verdict.summary
    assert any(e.startswith("at boot /etc/audit/rules.d/00-junk.rules:2: ") for e in verdict.evidence)
    assert a.host_verdict("load-health").summary.startswith(
        "at boot, loading stops at /etc/audit/rules.d/00-junk.rules:2"
    )


def test_unreadable_listing_line_is_evidence():
    a = Assessment(host(good_rules(), listing=good_listing() + "\n-w /x -p zz"), "docker")
    verdict = a.control_verdict(CONTROLS["1.1.6"], "live")
    assert verdict.status == Status.PASS
    assert any(e.startswith("unreadable listing line auditctl -l:") and "-w /x -p zz" in e for e in verdict.evidence)


@pytest.mark.parametrize("seed", range(8))
def test_random_garbage_never_raises(seed):
    rnd = random.Random(seed)
    # flag options (-D, -c) after a rule crash the parser: see test_rules.test_flag_after_rule_is_an_error_line...
    words = [
        W6,
        S4,
        "-e 2",
        "-b 1",
        "#",
        "-w",
        "-p",
        "rwz",
        "/etc/sysconfig/x",
        "-F",
        "dir=/nope",
        "\x00",
        "\t",
        "-a",
        "never,exit",
        "-k",
        "docker",
        "-A",
        "-W /etc/docker",
    ]
    text = "\n".join(" ".join(rnd.choice(words) for _ in range(rnd.randint(0, 6))) for _ in range(40))
    a = Assessment(host(text, listing=text), "docker")
    for c in controls():
        for check in ("live", "persisted"):
            assert a.control_verdict(c, check).status in {Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.ERROR}
    for check in ("auditd-installed", "auditd-running", "audit-enabled", "load-health"):
        assert a.host_verdict(check).status in {Status.PASS, Status.FAIL, Status.ERROR}


HOST = {
    "installed": ("auditd-installed", {}, Status.PASS),
    "not-installed": ("auditd-installed", dict(auditd=None), Status.FAIL),
    "running": ("auditd-running", {}, Status.PASS),
    "not-running": ("auditd-running", dict(auditd_running=False), Status.FAIL),
    # Issue 21.2: only root can ask the kernel for auditd's pid; not knowing is no FAIL
    "running-not-root": ("auditd-running", dict(auditd_running=False, uid=1000), Status.ERROR),
    "running-status-failed": (
        "auditd-running",
        dict(auditd_running=False, status_rc=1, status_text="EPERM"),
        Status.ERROR,
    ),
    "enabled-1": ("audit-enabled", {}, Status.PASS),
    "enabled-2": ("audit-enabled", dict(status_text="enabled 2\nfailure 1\n"), Status.PASS),
    "enabled-0": ("audit-enabled", dict(status_text="enabled 0\n"), Status.FAIL),
    "status-failed": ("audit-enabled", dict(status_rc=1, status_text="err"), Status.ERROR),
    "enabled-not-root": ("audit-enabled", dict(uid=1000), Status.ERROR),
    "load-health-ok": ("load-health", {}, Status.PASS),
    "load-health-listing-failed": ("load-health", dict(listing_rc=1), Status.ERROR),
    "load-health-missing-live": ("load-health", dict(listing_text="-w /etc/docker -p rwxa -k docker"), Status.FAIL),
}


@pytest.mark.parametrize(("check", "over", "status"), HOST.values(), ids=HOST.keys())
def test_host_verdicts(check, over, status):
    assert Assessment(host(good_rules(), good_listing(), **over), "docker").host_verdict(check).status == status


def test_flag_after_rule_does_not_crash_the_assessment():
    a = Assessment(host(f"{W6} -c\n{S4}", listing=good_listing()), "docker")
    verdict = a.control_verdict(CONTROLS["1.1.4"], "persisted")
    assert verdict.status == Status.FAIL and f"{RULES_FILE}:1" in verdict.summary


@pytest.mark.parametrize(
    ("machine", "arch_rule", "status"),
    [("x86_64", "x86_64", Status.PASS), ("aarch64", "aarch64", Status.PASS), ("aarch64", "x86_64", Status.FAIL)],
)
def test_arch_names_are_read_for_the_hosts_machine(machine, arch_rule, status):
    """Issue 10.6: `-F arch=x86_64` is no ABI of an aarch64 host: auditctl rejects the line there."""
    b32 = "i386" if machine == "x86_64" else "arm"
    text = "\n".join(
        f"-a always,exit -F arch={a} -S all -F dir=/etc/docker -F perm=rwxa -F key=docker"
        for a in (arch_rule, b32 if arch_rule != "x86_64" or machine == "x86_64" else "b32")
    )
    snap = host(text, listing="", arch=machine)
    verdict = Assessment(snap, "docker").control_verdict(CONTROLS["1.1.6"], "persisted")
    assert verdict.status == status, verdict.summary
    if status == Status.FAIL:
        assert "is not valid on a aarch64 machine" in verdict.summary


def test_crafted_config_is_a_note_not_a_crash():
    """Issue 10.9: daemon.json nested 100,000 deep and a 5000-digit number; TOML nested deep."""
    for daemon_json in ("[" * 100000, '{"x": ' + "9" * 5000 + "}"):
        snap = host(good_rules(), good_listing(), daemon_json=daemon_json, containerd_config="a = " + "[" * 50000)
        verdict = Assessment(snap, "docker").control_verdict(CONTROLS["1.1.5"], "live")
        assert verdict.status == Status.PASS and any("not valid JSON" in e for e in verdict.evidence)


@pytest.mark.parametrize(
    ("extra", "over", "reason"),
    [
        ("-a never,task", {}, "stops auditing of all processes"),
        ("-a task,never -F uid=33", {}, "stops auditing of those matching -F uid=33 processes"),
        ("-a always,exclude -F msgtype=SYSCALL", {}, "drops the records that carry the key"),
        ("-a always,exclude -F msgtype=PATH", {}, "drops the records that carry the key or the path"),
        ("-a never,filesystem -F fstype=ext4", {}, "drops every inode on ext4"),
        ("", {"status_text": "enabled 0\n"}, "audit is disabled"),
        ("", {"auditd_running": False}, "auditd is not running"),
    ],
    ids=["task-never", "task-never-uid", "exclude-syscall", "exclude-path", "fs-never", "e0", "no-auditd"],
)
def test_nothing_recorded_fails_every_control_live(extra, over, reason):
    """Issue 9.4: host-level silence is every control's live verdict, not only a host check."""
    listing = "\n".join(filter(None, [extra, good_listing()]))
    snap = host(good_rules() + ("\n" + extra if extra else ""), listing, **over)
    snap.mounts = "/dev/vda / ext4 rw 0 0\n"
    got = verdicts(snap, "live")
    assert got == expected(fail=set(CONTROLS) - ABSENT), got
    assert reason in Assessment(snap, "docker").control_verdict(CONTROLS["1.1.6"], "live").summary


def test_exclude_of_another_record_type_costs_nothing():
    snap = host(
        good_rules() + "\n-a always,exclude -F msgtype=CWD", "-a always,exclude -F msgtype=CWD\n" + good_listing()
    )
    assert verdicts(snap, "live") == expected()


@pytest.mark.parametrize(
    ("cmdline", "enabled", "status"),
    [
        ("BOOT_IMAGE=/vmlinuz root=/dev/vda audit=0", "enabled", Status.FAIL),
        ("root=/dev/vda", "disabled", Status.FAIL),
        ("root=/dev/vda", "enabled", Status.PASS),
    ],
)
def test_boot_without_audit_fails_persisted(cmdline, enabled, status):
    snap = host(good_rules(), good_listing(), cmdline=cmdline, auditd_enabled=enabled)
    assert verdicts(snap, "persisted")["1.1.6"] == status


SHIPPED = "-D\n-b 8192\n--backlog_wait_time 60000\n-f 1\n"  # Debian 12's rules.d/audit.rules


def loss(rules_text=SHIPPED, status=STATUS, **over):
    snap = host("", rules_d=[("/etc/audit/rules.d/audit.rules", rules_text)], status_text=status, **over)
    return Assessment(snap, "docker").host_verdict("event-loss")


def test_event_loss_passes_with_the_shipped_settings():
    verdict = loss()
    assert verdict.status == Status.PASS, verdict.summary
    assert "after boot backlog_limit 8192 (`-b 8192` at /etc/audit/rules.d/audit.rules:2)" in verdict.evidence


def test_event_loss_names_a_persisted_rate_limit_and_its_line():
    verdict = loss(SHIPPED + "-r 1\n")
    assert verdict.status == Status.FAIL
    assert "after boot: rate_limit 1 (`-r 1` at /etc/audit/rules.d/audit.rules:5)" in verdict.summary
    assert "live:" not in verdict.summary


def test_event_loss_names_a_live_rate_limit():
    verdict = loss(status=STATUS.replace("rate_limit 0", "rate_limit 1"))
    assert verdict.status == Status.FAIL and "live: rate_limit 1 (auditctl -s)" in verdict.summary


@pytest.mark.parametrize(
    ("rules_text", "cmdline", "expected"),
    [
        ("-D\n", "", "backlog_limit 64 (kernel default, no rule sets it) is below 8192"),
        ("-D\n", "audit_backlog_limit=8192", None),
        ("-b 320\n", "", "backlog_limit 320 (`-b 320` at /etc/audit/rules.d/audit.rules:1)"),
        ("-b 0x2000\n", "", None),  # strtoul base 0
        ("-b 0\n--backlog_wait_time 0\n", "", None),  # no limit: nothing is dropped for the backlog
        ("-b 8192\n--backlog_wait_time 0\n", "", "backlog_wait_time 0 (`--backlog_wait_time 0` at"),
    ],
)
def test_event_loss_backlog_after_boot(rules_text, cmdline, expected):
    verdict = loss(rules_text, cmdline=cmdline)
    if expected is None:
        assert verdict.status == Status.PASS, verdict.summary
    else:
        assert verdict.status == Status.FAIL and expected in verdict.summary, verdict.summary


def test_event_loss_setting_after_the_stop_never_applies():
    verdict = loss("-b 8192\n-w relative/x -k docker\n-r 1\n")
    assert verdict.status == Status.PASS, verdict.summary


def test_event_loss_without_status_fields_is_an_error():
    assert loss(status="enabled 1\n").status == Status.ERROR


def test_event_loss_reports_lost_without_failing():
    verdict = loss(status=STATUS.replace("lost 0", "lost 17"))
    assert verdict.status == Status.PASS and any(e.startswith("lost 17") for e in verdict.evidence)


HARDENED_FIRST = "\n".join(  # CIS Linux and audit-userspace rules in a file sorted before the Docker rules
    [
        "-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time-change",
        "-a always,exit -F arch=b32 -S adjtimex,settimeofday,clock_settime,stime -k time-change",
        "-a always,exit -F arch=b64 -S unshare,setns -F key=container-config",
        "-a always,exit -F arch=b32 -S unshare,setns -F key=container-config",
        "-a always,exit -F arch=b64 -S init_module,finit_module -F auid!=unset -k modules",
        "-a never,exit -F subj_type=crond_t",
    ]
)


@pytest.mark.parametrize("check", ["live", "persisted"])
def test_hardened_rules_in_no_permission_class_take_nothing(check):
    """Rules limited to syscalls that never touch a file, and an LSM field on a host without an LSM,
    take none of Docker's accesses: no false FAIL (issue 20)."""
    listing = HARDENED_FIRST + "\n" + good_listing()
    snap = host(good_rules(), listing, lsm_labelled=False, selinux=False)
    snap.rules_d.insert(0, ("/etc/audit/rules.d/30-hardened.rules", HARDENED_FIRST + "\n"))
    assert verdicts(snap, check) == expected()


def test_hardened_rule_taking_chmod_is_named_with_its_key():
    perm_mod = "-a always,exit -F arch=b64 -S chmod,fchmod,fchmodat -F auid>=1000 -F auid!=unset -k perm_mod"
    snap = host(perm_mod + "\n" + good_rules())
    verdict = Assessment(snap, "docker").control_verdict(CONTROLS["1.1.6"], "persisted")
    assert verdict.status == Status.FAIL
    assert (
        "attribute change on b64 (chmod, fchmod, fchmodat by processes with auid>=1000, auid!=unset): "
        f"recorded with another key (key perm_mod, not 'docker') by `{perm_mod}` ({RULES_FILE}:1)"
    ) in verdict.summary


def test_live_evidence_names_the_file_a_listed_rule_is_persisted_in():
    perm_mod = "-a always,exit -F arch=b64 -S chmod,fchmod,fchmodat -F auid>=1000 -F auid!=unset -F key=perm_mod"
    snap = host(perm_mod.replace("-F key=", "-k ") + "\n" + good_rules(), perm_mod + "\n" + good_listing())
    verdict = Assessment(snap, "docker").control_verdict(CONTROLS["1.1.6"], "live")
    assert verdict.status == Status.FAIL
    assert f"by `{perm_mod}` (auditctl -l:1, persisted at {RULES_FILE}:1)" in verdict.summary


def test_one_persisted_twin_does_not_settle_two_lines_that_list_alike():
    """Issue 21.12: a runtime `-a never,exit -F path=/etc/docker -F perm=rwxa -k docker` and the
    persisted `-w /etc/docker -k docker` both list as `-w /etc/docker -p rwxa -k docker`; the one
    twin said both were `always`, a false live PASS. Either line may be the `never`."""
    line = "-w /etc/docker -p rwxa -k docker"
    snap = host(good_rules(), line + "\n" + good_listing())
    assert verdicts(snap, "live")["1.1.6"] == Status.FAIL
    assert verdicts(host(good_rules(), good_listing()), "live")["1.1.6"] == Status.PASS  # one line: settled
