"""Fixtures shared by the project's own tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from selftests.kernel import KernelSandbox, sh
from selftests.suite_runner import require


@pytest.fixture
def kernel() -> Iterator[KernelSandbox]:
    require(os.geteuid() == 0, "needs root to change the kernel's audit rules")
    require(shutil.which("auditctl") is not None and shutil.which("augenrules") is not None,
            "needs auditd's auditctl and augenrules (apt-get install auditd)")
    require(sh("auditctl -s", check=False).returncode == 0, "kernel audit subsystem not available")
    sandbox = KernelSandbox()
    sh("auditctl -D")
    try:
        yield sandbox
    finally:
        sandbox.restore()
