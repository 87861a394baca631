"""The cached guest image: built by build-image.sh, rebuilt only when its recipe changes."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("build-image.sh")
MIRROR_SCRIPT = Path(__file__).with_name("mirror.sh")
REPO = Path(__file__).resolve().parents[2]
RUN_TOOLS = ("qemu-system-x86_64", "qemu-img")
BUILD_TOOLS = ("debootstrap", "mkfs.ext4", "ssh-keygen", "qemu-img")
FILES = ("disk.qcow2", "vmlinuz", "initrd.img")


class ImageError(RuntimeError):
    pass


def cache_dir() -> Path:
    # Resolved: the saved state's key holds the kernel's path, so a worktree whose .cache links
    # to the main checkout's must name it the same way, or each would evict the other's state.
    return Path(os.environ.get("CISAUDIT_TESTHOSTS_CACHE") or REPO / ".cache" / "testhosts").resolve()


def recipe_hash() -> str:
    # The script holds the package list and every guest file, so it (and the mirror it asks) defines the image.
    h = hashlib.sha256(SCRIPT.read_bytes() + MIRROR_SCRIPT.read_bytes())
    h.update(os.environ.get("CISAUDIT_MIRROR", "").encode())
    return h.hexdigest()


@dataclass(frozen=True)
class Image:
    dir: Path
    recipe: str

    @property
    def disk(self) -> Path:
        return self.dir / "disk.qcow2"

    @property
    def kernel(self) -> Path:
        return self.dir / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.dir / "initrd.img"

    @property
    def client_key(self) -> Path:
        # Beside the image, not in it: a rebuild keeps the key, so VMs started before still let us in.
        return self.dir.parent / "id_ed25519"


def cached_image() -> Image | None:
    """The cached image if it is complete and matches the current recipe."""
    d = cache_dir() / "image"
    try:
        stored = (d / "recipe.sha256").read_text().strip()
    except OSError:
        return None
    img = Image(d, stored)
    if stored != recipe_hash() or not all((d / f).is_file() for f in FILES) or not img.client_key.is_file():
        return None
    return img


def unavailable_reason() -> str | None:
    """Why test hosts cannot run here, or None when they can."""
    missing = [t for t in RUN_TOOLS if not shutil.which(t)]
    if cached_image() is None:
        missing += [t for t in BUILD_TOOLS if not shutil.which(t) and t not in missing]
        if not missing and os.geteuid() != 0:
            return "building the test-host image needs root (debootstrap)"
    if missing:
        return "test hosts need " + ", ".join(missing) + " (apt: qemu-system-x86 qemu-utils debootstrap e2fsprogs)"
    return None


@contextmanager
def locked(name: str) -> Iterator[None]:
    """Serialise builds across processes (xdist workers, parallel sessions)."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / f"{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def ensure_image(force: bool = False, log: bool = True) -> Image:
    """Return the cached image, building it first when missing, stale or forced."""
    with locked("image"):
        img = cached_image()
        if img and not force:
            return img
        reason = unavailable_reason() if img is None else None
        if reason:
            raise ImageError(reason)
        final, tmp = cache_dir() / "image", cache_dir() / f"image.new-{os.getpid()}"
        for junk in cache_dir().glob("image.new-*"):  # left by a killed build; we hold the lock
            shutil.rmtree(junk, ignore_errors=True)
        start, recipe = time.monotonic(), recipe_hash()  # hash what is about to be built
        out = None if log else subprocess.DEVNULL
        argv = ["sh", str(SCRIPT), str(tmp), str(cache_dir() / "debs"), str(cache_dir() / "id_ed25519")]
        proc = subprocess.run(argv, stdout=out, stderr=out)
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ImageError(f"build-image.sh failed with exit code {proc.returncode}")
        (tmp / "recipe.sha256").write_text(recipe + "\n")
        # Swap in whole: running VMs keep their open (now unlinked) backing file.
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        if log:
            print(f"test-host image built in {time.monotonic() - start:.0f} s: {final}", flush=True)
        return Image(final, recipe)
