"""Scratch directories no other user can change: --verify-events refuses a path that any user but
root (or the one running it) could redirect, and /tmp is writable by everyone
(docs/threat-model.md). Under the home directory of the user running the tests (0700)."""

from __future__ import annotations

import tempfile
from pathlib import Path


def locked_tmpdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir=Path.home()))
