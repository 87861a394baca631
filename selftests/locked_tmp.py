"""Scratch directories no other user can change: --verify-events refuses a path that any user but
root (or the one running it) could redirect, and /tmp is writable by everyone
(docs/threat-model.md). As root, under /run/cisaudit-selftests (root's, 0755: the kernel-truth
tests' unprivileged actors must reach their objects; /run is a tmpfs, so nothing outlives a boot);
otherwise under the home directory of the user running the tests (0700)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT_BASE = Path("/run/cisaudit-selftests")


def locked_tmpdir(prefix: str) -> Path:
    base = Path.home()
    if os.geteuid() == 0:
        base = ROOT_BASE
        base.mkdir(mode=0o755, exist_ok=True)
        os.chown(base, 0, 0)
        base.chmod(0o755)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))
