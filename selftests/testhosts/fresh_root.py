"""A fresh Debian root (debootstrap minbase: no python3, no pip), built by build-fresh-root.sh and
cached as a tarball keyed by its recipe: rebuilt only when the recipe changes, one build at a time.
Debian 12 (bookworm) unless CISAUDIT_FRESH_ROOT_SUITE names another suite (trixie: Debian 13)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from selftests.testhosts.image import MIRROR_SCRIPT, ImageError, cache_dir, locked

SCRIPT = Path(__file__).with_name("build-fresh-root.sh")
TOOLS = ("debootstrap", "zstd", "unshare", "chroot")


def suite() -> str:
    return os.environ.get("CISAUDIT_FRESH_ROOT_SUITE") or "bookworm"


def cache() -> Path:
    """The tarball's directory, and the apt and pip caches the root's setup runs share."""
    return cache_dir() / "fresh-root"


def recipe_hash() -> str:
    h = hashlib.sha256(SCRIPT.read_bytes() + MIRROR_SCRIPT.read_bytes())
    h.update(os.environ.get("CISAUDIT_MIRROR", "").encode() + b"\0" + suite().encode())
    return h.hexdigest()[:16]


def ensure_tarball() -> tuple[Path, bool]:
    """The cached root tarball, built first when missing or stale; True when it was built now."""
    tarball = cache() / f"{suite()}-minbase-{recipe_hash()}.tar.zst"
    with locked("fresh-root"):
        if tarball.is_file():
            return tarball, False
        cache().mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            ["sh", str(SCRIPT), str(tarball), suite(), str(cache() / f"debs-{suite()}")],
            capture_output=True,
            text=True,
            timeout=1200,
        )
        if proc.returncode != 0:
            raise ImageError(f"build-fresh-root.sh failed ({proc.returncode}): {proc.stderr[-3000:]}")
        for stale in cache().glob(f"{suite()}-minbase-*.tar.zst"):
            if stale != tarball:
                stale.unlink()
        return tarball, True
