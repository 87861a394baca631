"""Fixtures shared by the project's own tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from filelock import FileLock

from selftests.kernel import KernelSandbox, sh
from selftests.locked_tmp import locked_tmpdir
from selftests.suite_runner import require
from selftests.testhosts.fleet import Fleet
from selftests.testhosts.image import unavailable_reason


@pytest.fixture
def locked_tmp() -> Iterator[Path]:
    """A scratch directory no other user can change (selftests/locked_tmp.py)."""
    path = locked_tmpdir("cisaudit-selftest-")
    yield path
    shutil.rmtree(path)


@pytest.fixture
def kernel() -> Iterator[KernelSandbox]:
    require(os.geteuid() == 0, "needs root to change the kernel's audit rules")
    require(
        shutil.which("auditctl") is not None and shutil.which("augenrules") is not None,
        "needs auditd's auditctl and augenrules (apt-get install auditd)",
    )
    require(sh("auditctl -s", check=False).returncode == 0, "kernel audit subsystem not available")
    # One test at a time may own the kernel's rules (the remediation script tests take this lock too).
    with FileLock("/run/lock/cisaudit-selftest.lock"):
        sandbox = KernelSandbox()
        sh("auditctl -D")
        try:
            yield sandbox
        finally:
            sandbox.restore()


@pytest.fixture
def kernel_still() -> Iterator[None]:
    """This machine's audit rules held still while a test audits it (over SSH or local://): the
    kernel lock, so no other test changes them meanwhile (a load in progress reads as an
    incomplete listing, an ERROR verdict)."""
    with FileLock("/run/lock/cisaudit-selftest.lock"):
        yield


@pytest.fixture(scope="session")
def fleet() -> Iterator[Fleet]:
    """CISAUDIT_FLEET_SIZE (default 3) independent QEMU VMs, started once per session: restored
    from a cached saved state (CISAUDIT_FLEET_MODE=auto, the default) or booted (=boot); the
    image is built first if needed."""
    reason = unavailable_reason()
    require(reason is None, reason or "")
    size, mode = int(os.environ.get("CISAUDIT_FLEET_SIZE", "3")), os.environ.get("CISAUDIT_FLEET_MODE", "auto")
    with Fleet(size, mode=mode) as hosts:  # type: ignore[arg-type]
        yield hosts
