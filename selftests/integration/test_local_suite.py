"""The real suite on local:// against this machine's real kernel audit rules and auditd.

Each test writes rules files and/or kernel rules, runs `pytest --hosts=local://` in a
subprocess as a user would, and compares the exact verdicts in its JUnit XML. The kernel
fixture restores the machine's rules, files and auditd state afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cisaudit.host.session import HostSession
from cisaudit.host.transport import ConnectOptions
from cisaudit.model.catalogue import controls
from cisaudit.model.evaluate import Assessment
from selftests.kernel import KernelSandbox
from selftests.suite_runner import run_suite

pytestmark = pytest.mark.kernel
HOST = "local://"
# Docker's paths this test creates when the machine lacks them; the others stay absent.
PRESENT = {
    "1.1.4": ("/run/containerd", "dir"),
    "1.1.5": ("/var/lib/docker", "dir"),
    "1.1.6": ("/etc/docker", "dir"),
    "1.1.10": ("/etc/default/docker", "file"),
}
CONTROLS = "--controls=" + ",".join(PRESENT)


def _present(kernel: KernelSandbox) -> None:
    for path, kind in PRESENT.values():
        kernel.make_path(path, kind)


def test_benchmark_rules_pass_where_paths_exist(kernel: KernelSandbox, tmp_path: Path) -> None:
    """Rules for the real paths the suite locates on this machine, docker installed or not (with
    docker.io dockerd is /usr/sbin/dockerd, and /usr/bin/runc a symlink whose watch records nothing)."""
    _present(kernel)
    assessment = Assessment(HostSession(HOST, ConnectOptions(), "docker", version="1.7.0").probe(), "docker")
    targets = {c.id: assessment.target(c) for c in controls()}
    real = [(t.control, assessment.audit_object(t).path) for t in targets.values() if t.exists]
    kernel.write_rules_d("60-cis-docker.rules", "".join(c.rule_text(path) + "\n" for c, path in real))
    assert kernel.load().returncode == 0
    run = run_suite(tmp_path, [HOST])
    for control in controls():
        expected = "pass" if targets[control.id].exists else "not-applicable"
        for check in ("live", "persisted"):
            assert run.verdict(HOST, control.id, check) == expected, (control.id, check, run.output[-2000:])
    for check in ("auditd-installed", "auditd-running", "audit-enabled", "load-health"):
        assert run.verdict(HOST, "host", check) == "pass", check
    case = run.cases[(HOST, "1.1.4", "live")]
    assert case.remote_commands == 1
    assert HOST in case.name and "1.1.4" in case.name
    assert run.returncode == 0, run.output[-3000:]


def test_literal_benchmark_list_stops_loading_at_missing_directory(kernel: KernelSandbox, tmp_path: Path) -> None:
    """All 16 rules as the benchmark prints them: on Debian /etc/sysconfig is absent (and
    /etc/containerd without containerd), so a `-w` under it fails and auditctl -R drops every
    later rule."""
    _present(kernel)
    broken = next((i for i, c in enumerate(controls(), 1) if not Path(c.path).parent.exists()), None)
    if broken is None:
        pytest.skip("every parent directory exists here; the literal list loads")
    kernel.write_rules_d("60-cis-docker.rules", "".join(c.rule_text(c.path) + "\n" for c in controls()))
    kernel.load()
    run = run_suite(tmp_path, [HOST], "--require-all")
    health = run.cases[(HOST, "host", "load-health")]
    assert health.verdict == "fail"
    assert (
        f"60-cis-docker.rules:{broken} `{controls()[broken - 1].rule_text(controls()[broken - 1].path)}`"
        in health.summary
    )
    assert run.verdict(HOST, "1.1.6", "live") == "pass"  # before the broken line: loaded
    assert run.verdict(HOST, "1.1.14", "live") == "fail"  # --require-all: absent paths fail
    assert run.returncode == 1


RC = "/run/containerd"
S_RULE = f"-a exit,always -F path={RC} -F perm=war -k docker"
# Arch-qualified rules list as themselves; `-w`-form listings are ambiguous (always/never, path/dir).
ARCH_PAIR = [f"-a always,exit -F arch={a} -S all -F path={RC} -F perm=rwa -F key=docker" for a in ("b64", "b32")]
VARIANTS = {
    # name: (rules.d text, kernel rules added by hand, load with augenrules, expected 1.1.4 live/persisted)
    "benchmark-rule": (S_RULE + "\n", [], True, ("pass", "pass")),
    "modern-arch-pair": (
        f"-a always,exit -F arch=b64 -S all -F path={RC} -F perm=rwa -F key=docker\n"
        f"-a always,exit -F arch=b32 -S all -F path={RC} -F perm=rwa -F key=docker\n",
        [],
        True,
        ("pass", "pass"),
    ),
    "b64-only": (
        f"-a always,exit -F arch=b64 -S all -F path={RC} -F perm=rwa -F key=docker\n",
        [],
        True,
        ("fail", "fail"),
    ),
    "neighbour-only": (f"-w {RC}/containerd.sock -k docker\n", [], True, ("fail", "fail")),
    "commented": ("#" + S_RULE + "\n  # " + S_RULE + "\n", [], True, ("fail", "fail")),
    "narrow-perms": (f"-w {RC} -p wa -k docker\n", [], True, ("fail", "fail")),
    "wrong-key": (f"-w {RC} -k dockerd\n", [], True, ("fail", "fail")),
    "never-first": (f"-a never,exit -F path={RC} -F perm=rwxa\n{S_RULE}\n", [], True, ("fail", "fail")),
    "live-not-persisted": ("", ARCH_PAIR, False, ("pass", "fail")),
    # The listing prints this like a `never` rule; the kernel's own list (netlink, python3 is
    # on this machine) says it is an `always` rule.
    "live-watch-not-persisted": ("", [f"-w {RC} -p rwa -k docker"], False, ("pass", "fail")),
    "persisted-not-loaded": (S_RULE + "\n", [], False, ("fail", "pass")),
    "broken-halfway": (f"-w /etc/docker -k docker # trailing comment\n{S_RULE}\n", [], True, ("fail", "fail")),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_rule_variants(kernel: KernelSandbox, tmp_path: Path, variant: str) -> None:
    text, live, load, expected = VARIANTS[variant]
    _present(kernel)
    if text:
        kernel.write_rules_d("60-variant.rules", text)
    if load:
        kernel.load()
    kernel.kernel(*live)
    run = run_suite(tmp_path, [HOST], "--controls=1.1.4")
    got = (run.verdict(HOST, "1.1.4", "live"), run.verdict(HOST, "1.1.4", "persisted"))
    assert got == expected, run.cases[(HOST, "1.1.4", "persisted")]
    health = run.verdict(HOST, "host", "load-health")
    assert health == ("fail" if variant in ("persisted-not-loaded", "broken-halfway") else "pass")
    assert run.returncode == (0 if expected == ("pass", "pass") else 1)


def test_auditctl_mode_ignores_rules_d(kernel: KernelSandbox, tmp_path: Path) -> None:
    """A host whose auditd unit loads audit.rules directly: rules.d files are not persisted."""
    _present(kernel)
    kernel.use_auditctl_loader()
    kernel.write_rules_d("60-cis-docker.rules", S_RULE + "\n")
    kernel.kernel(*ARCH_PAIR)
    run = run_suite(tmp_path, [HOST], "--controls=1.1.4")
    assert run.verdict(HOST, "1.1.4", "live") == "pass"
    persisted = run.cases[(HOST, "1.1.4", "persisted")]
    assert persisted.verdict == "fail" and "loader: auditctl" in persisted.evidence


def test_bad_hosts_error_without_stopping_others(kernel: KernelSandbox, tmp_path: Path) -> None:
    """(A malformed spec such as `paramiko://` stops the whole run as a usage error instead:
    test_hostile_hosts.test_bad_spec_is_usage_error_before_any_backend.)"""
    _present(kernel)
    run = run_suite(tmp_path, [HOST, "paramiko://127.0.0.1:1"], CONTROLS)
    assert run.verdict(HOST, "1.1.4", "live") == "fail"
    for bad in ("paramiko://127.0.0.1:1",):
        case = run.cases[(bad, "1.1.4", "live")]
        assert case.verdict == "error" and case.outcome == "error"
        assert "\n" not in case.summary
    assert run.returncode == 1


def _runc_link(kernel: KernelSandbox) -> None:
    """Debian's layout: /usr/bin/runc -> ../sbin/runc."""
    kernel.make_path("/usr/sbin/runc", "file")
    kernel.make_path("/usr/bin/runc", "symlink", "../sbin/runc")


def test_verify_events_finds_an_event_for_each_access(kernel: KernelSandbox, tmp_path: Path) -> None:
    """Every required class is triggered and found: rwa on /run/containerd's inode, rwxa on
    /etc/docker and a file in it, rwxa through the /usr/bin/runc link to a watched target."""
    _present(kernel)
    kernel.make_path("/etc/docker/daemon.json", "file")
    _runc_link(kernel)
    # arch-qualified: the listing shows them unambiguously (a `-w` line could be a `never` rule)
    kernel.kernel(
        *ARCH_PAIR,
        *(
            f"-a always,exit -F arch={a} -S all -F {f}={p} -F perm=rwxa -F key=docker"
            for a in ("b64", "b32")
            for f, p in (("dir", "/etc/docker"), ("path", "/usr/sbin/runc"))
        ),
    )
    run = run_suite(tmp_path, [HOST], "--verify-events", "--controls=1.1.4,1.1.6,1.1.10,1.1.18")
    for cid, accesses in (("1.1.4", 3), ("1.1.6", 8), ("1.1.18", 4)):
        case = run.cases[(HOST, cid, "events")]
        assert case.verdict == "pass", case.summary
        assert case.evidence.count("(pid ") == accesses and "no event" not in case.evidence, case.evidence
    assert "/etc/docker/daemon.json (pid" in run.cases[(HOST, "1.1.6", "events")].evidence
    assert run.verdict(HOST, "1.1.10", "events") == "fail"  # no rule, so no event
    assert run.cases[(HOST, "1.1.4", "events")].remote_commands == 2


def test_verify_events_fails_where_the_kernel_records_some_accesses_only(kernel: KernelSandbox, tmp_path: Path) -> None:
    """Rules the kernel does not honour for every access: a watch on the runc symlink itself
    (accesses through it record nothing) and `-F path=/etc/docker` (the directory's inode, not
    the files in it). The live check knows it, and the events prove it."""
    _present(kernel)
    kernel.make_path("/etc/docker/daemon.json", "file")
    _runc_link(kernel)
    kernel.kernel("-a always,exit -F path=/etc/docker -F perm=rwxa -k docker", "-w /usr/bin/runc -p rwxa -k docker")
    kernel.write_rules_d(
        "60-x.rules", "-a always,exit -F path=/etc/docker -F perm=rwxa -k docker\n-w /usr/bin/runc -p rwxa -k docker\n"
    )  # persisted: unambiguous
    run = run_suite(tmp_path, [HOST], "--verify-events", "--controls=1.1.6,1.1.18")
    assert run.verdict(HOST, "1.1.18", "live") == "fail" and run.verdict(HOST, "1.1.6", "live") == "fail"
    for cid in ("1.1.18", "1.1.6"):
        case = run.cases[(HOST, cid, "events")]
        assert case.verdict == "fail" and case.summary.startswith("no live rule to produce events"), case
