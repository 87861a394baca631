"""Accesses the kernel never records although the rules are right: a daemon started before
auditing was first enabled (issue 21.8), and a `-w DIR` added while DIR was absent (issue 21.7)."""

import pytest

from cisaudit.host.probe import parse_probe
from cisaudit.model.catalogue import controls
from cisaudit.model.evaluate import Assessment
from cisaudit.model.rules import AuditRule, parse_rules
from cisaudit.model.unaudited import audit_from_boot, unaudited_daemons
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
