"""The kernel sandbox itself puts the machine back as it found it."""

from __future__ import annotations

import pytest

from selftests.kernel import KernelSandbox, audit_status, sh

pytestmark = pytest.mark.kernel


def test_restore_puts_back_the_enabled_flag(kernel: KernelSandbox) -> None:
    """A test that runs `auditctl -e 0` must not leave audit disabled for the next one (nor
    leave it enabled on a machine where it was disabled: starting auditd enables it)."""
    before = audit_status()["enabled"]
    inner = KernelSandbox()  # the fixture holds the lock and already runs auditd
    sh("auditctl -e 0")
    inner.restore()
    assert audit_status()["enabled"] == before == "1"
