"""Accesses the kernel never records although the rules are right: a daemon started before
auditing was first enabled (issue 21.8), and a `-w DIR` added while DIR was absent (issue 21.7)."""

import pytest

from cisaudit.host.probe import parse_probe
from cisaudit.model.catalogue import controls
from cisaudit.model.evaluate import Assessment
from cisaudit.model.rules import AuditRule, parse_rules
from cisaudit.model.unaudited import audit_from_boot, unaudited_daemons
from cisaudit.model.verdict import Check
from selftests import probe_frames
from selftests.unit.test_evaluate import ABSENT, expected, good_listing, good_rules, host, verdicts

NONCE = "@@cisaudit-0123456789abcdef"
CMDLINE = "BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro quiet\n"
# auditd started at tick 900; dockerd at 500 (before it), containerd at 1200 (after it)
STARTS = [("auditd", 812, 900), ("dockerd", 640, 500), ("containerd", 655, 1200)]


@pytest.mark.parametrize(
    ("cmdline", "on"),
    [
        ("ro audit=1", True),
        ("ro audit=on", True),
        ("ro audit=0x1", True),
        ("ro audit=1 audit=0", False),
        ("ro audit=off", False),
        ("ro -- audit=1", False),  # after `--`: init's argument, not the kernel's
        ("ro audit=yes", False),
        ("ro", False),
    ],
)
def test_audit_from_boot_reads_the_kernels_parameter(cmdline, on):
    assert audit_from_boot(cmdline) is on


def test_a_daemon_started_before_auditd_without_audit_1_fails_live_only():
    snap = host(good_rules(), good_listing(), cmdline=CMDLINE, process_starts=STARTS)
    assert verdicts(snap, "live") == expected(fail={c.id for c in controls()} - ABSENT)
    assert verdicts(snap, "persisted") == expected()  # at boot auditd starts first
    verdict = Assessment(snap, "docker").control_verdict(controls()[3], "live")
    assert "dockerd (pid 640) started before auditd (pid 812)" in verdict.summary
    assert "audit_alloc" in verdict.summary and "containerd" not in verdict.summary.replace("containerd:", "")


@pytest.mark.parametrize(
    "starts",
    [
        [("auditd", 812, 900), ("dockerd", 640, 901), ("containerd", 655, 1200)],  # both after auditd
        [("dockerd", 640, 500)],  # auditd not running: its own verdicts say so
        [],
    ],
    ids=["after-auditd", "no-auditd", "no-daemons"],
)
def test_daemons_started_after_auditd_are_audited(starts):
    assert unaudited_daemons(CMDLINE, starts) == []


def test_audit_1_audits_every_process_from_boot():
    snap = host(good_rules(), good_listing(), cmdline="ro audit=1", process_starts=STARTS)
    assert verdicts(snap, "live") == expected()


def test_the_probe_reports_start_times_and_drops_lines_it_cannot_read():
    body = "auditd 812 900\ndockerd 640 500\ncontainerd 655 \nx y z\n"
    out = probe_frames.section(NONCE, "process-starts", "", body) + probe_frames.section(NONCE, "done", "", "")
    assert parse_probe(out, NONCE, controls("1.7.0")).process_starts == [("auditd", 812, 900), ("dockerd", 640, 500)]


def _kernel_list(listing, inode_paths):
    rules = [l.item for l in parse_rules(listing, "auditctl -l") if isinstance(l.item, AuditRule)]
    return [("exit", "always", "path" if r.path in inode_paths else "dir", r.path or "") for r in rules]


def test_a_watch_added_while_its_directory_was_absent_is_an_inode_watch():
    """Issue 21.7, measured here (docs/kernel-behaviour.md): `-w /etc/docker` loaded before
    /etc/docker existed lists as `-w /etc/docker -p rwxa`, like a tree watch, but the kernel holds
    an inode watch (netlink: path=), which records nothing below the directory. The persisted twin
    and the directory as it is now must not make it a tree watch."""
    listing = good_listing()
    inode = host(good_rules(), listing, kernel_rules=_kernel_list(listing, {"/etc/docker"}))
    result = verdicts(inode, "live")
    assert result == expected(fail={"1.1.6"})
    assert verdicts(inode, "persisted") == expected()  # at the next boot the directory exists
    tree = host(good_rules(), listing, kernel_rules=_kernel_list(listing, set()))
    assert verdicts(tree, "live") == expected()


BOOT = 1_764_900_000  # /proc/stat btime of the host below


def _births(listing, born):
    """The probe's watch-births section where neither python3 nor perl runs: every `-w` path."""
    rules = [l.item for l in parse_rules(listing, "auditctl -l") if isinstance(l.item, AuditRule)]
    return {r.path: born.get(r.path, BOOT - 3600) for r in rules if r.path}


def test_without_python3_or_perl_a_directory_born_before_boot_settles_the_watch_as_a_tree_watch():
    """Issue 21.7 (b): a directory born before this boot existed whenever any rule was loaded, so
    a `-w` on it is a tree watch: live PASS as before, with no reader on the host."""
    listing = good_listing()
    snap = host(good_rules(), listing, watch_births=_births(listing, {}), boot_time=BOOT)
    assert verdicts(snap, "live") == expected()


@pytest.mark.parametrize("born", [BOOT + 60, 0], ids=["after-boot", "unknown"])
def test_without_python3_or_perl_a_watch_on_a_directory_born_after_boot_fails_closed(born):
    """Issue 21.7 (b): /etc/docker made after the boot (or of unknown birth: busybox stat prints
    no %W) may have been absent when `-w /etc/docker` was loaded: an inode watch, which `auditctl
    -l` prints like a tree watch. The live verdict fails closed and says how to settle it."""
    listing = good_listing()
    snap = host(good_rules(), listing, watch_births=_births(listing, {"/etc/docker": born}), boot_time=BOOT)
    assert verdicts(snap, "live") == expected(fail={"1.1.6"})
    assert verdicts(snap, "persisted") == expected()
    got = Assessment(snap, "docker").control_verdict(next(c for c in controls() if c.id == "1.1.6"), Check.LIVE)
    assert any("install python3 or perl" in e for e in got.evidence), got


def test_a_kernel_list_the_reader_could_not_read_settles_nothing():
    """The reader ran and failed (no `done`): no watch's kind is known, as without a reader."""
    body = "exit always dir 2f6574632f646f636b6572\n"  # cut short
    out = probe_frames.section(NONCE, "kernel-rules", "", body) + probe_frames.section(NONCE, "done", "", "")
    snap = parse_probe(out, NONCE, controls("1.7.0"))
    assert snap.kernel_rules is None and snap.watch_births == {}


def test_the_probe_reports_births_and_unknown_births_as_0():
    body = "1700000000 /etc/docker\n- /run/containerd\n? /a b\n0 /x\n"
    out = (
        probe_frames.section(NONCE, "boot-time", "", "1764900000\n")
        + probe_frames.section(NONCE, "watch-births", "", body)
        + probe_frames.section(NONCE, "done", "", "")
    )
    snap = parse_probe(out, NONCE, controls("1.7.0"))
    assert snap.boot_time == 1764900000
    assert snap.watch_births == {"/etc/docker": 1700000000, "/run/containerd": 0, "/a b": 0, "/x": 0}


def test_without_python3_or_perl_remediation_still_plans_the_tree_watch():
    """apply.sh loads the planned `-w` while its directory exists: the plan's simulation takes it
    as the tree watch it is, so a host without a reader is still remediated (the re-probe judges)."""
    from cisaudit.model.catalogue import benchmark
    from cisaudit.model.plan import make_plan

    c116 = next(c for c in controls() if c.id == "1.1.6")
    listing = "\n".join(l for l in good_listing().splitlines() if not l.startswith("-w /etc/docker -p"))
    rules = good_rules().replace("-w /etc/docker -k docker\n", "")
    snap = host(rules, listing, watch_births=_births(listing, {}), boot_time=BOOT)
    plan = make_plan(Assessment(snap, "docker"), [c116], benchmark("1.7.0"))
    assert plan.rule_lines == ["-w /etc/docker -k docker"] and not plan.left_alone, plan
