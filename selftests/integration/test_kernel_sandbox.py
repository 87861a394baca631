"""The kernel sandbox itself puts the machine back as it found it."""

from __future__ import annotations

import pytest

from selftests.kernel import AUDIT_DIR, KernelSandbox, audit_status, sh

pytestmark = pytest.mark.kernel


def test_restore_puts_back_the_enabled_flag(kernel: KernelSandbox) -> None:
    """A test that runs `auditctl -e 0` must not leave audit disabled for the next one (nor
    leave it enabled on a machine where it was disabled: starting auditd enables it)."""
    before = audit_status()["enabled"]
    inner = KernelSandbox()  # the fixture holds the lock and already runs auditd
    sh("auditctl -e 0")
    inner.restore()
    assert audit_status()["enabled"] == before == "1"


def test_restore_puts_back_rate_and_backlog_settings_and_removes_added_directories(kernel: KernelSandbox) -> None:
    """A rules file with `-r 1` would otherwise drop almost every event for every later test."""
    before = {k: audit_status()[k] for k in ("rate_limit", "backlog_limit", "backlog_wait_time")}
    inner = KernelSandbox()
    sh("auditctl -r 1 && auditctl -b 320 && auditctl --backlog_wait_time 0")
    added = AUDIT_DIR / "rules.d" / "50.rules"
    added.mkdir()
    inner.restore()
    assert {k: audit_status()[k] for k in before} == before
    assert not added.exists()
