"""Report files written whole or not at all, and never through a link someone else put there."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


class OutputError(Exception):
    """An output asked for could not be made: one line for the terminal; the run then fails."""


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def replaced(path: Path) -> Iterator[IO[str]]:
    """A new file beside `path` (mkstemp: a random name, created exclusively), renamed over `path`
    when the block ends: rename replaces a symlink at `path` itself, it never writes where one
    points (a report directory others can write must not let them aim root's write)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            yield out
        os.chmod(tmp, 0o666 & ~_umask())  # what open("w") would have made
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def scratch(beside: Path, name: str) -> tuple[IO[str], Path]:
    """A new scratch file beside `beside` with an unpredictable name, open for writing."""
    beside.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=beside.parent, prefix=f".{beside.name}.{name}.", suffix=".tmp")
    return os.fdopen(fd, "w", encoding="utf-8"), Path(tmp)
