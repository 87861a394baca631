"""What exists when the host's loader runs at boot: the paths its rules name, replayed.

Pure code. auditd loads the rules early (Debian: auditd.service, After=local-fs.target
systemd-tmpfiles-setup.service, Before=sysinit.target), long before containerd or dockerd
start, so a path on a tmpfs such as /run exists then only if systemd-tmpfiles creates it first.
A path on a disk filesystem exists at boot if it exists now. docs/kernel-behaviour.md, "Boot".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from cisaudit.model.snapshot import PathInfo, Snapshot

VOLATILE_FS = {"tmpfs", "ramfs"}
LATE_FS = {"nfs", "nfs4", "cifs", "smb3", "ceph", "glusterfs", "9p", "sshfs"}  # mounted after the network
TMPFILES_DIRS = (
    "/etc/tmpfiles.d",
    "/run/tmpfiles.d",
    "/usr/local/lib/tmpfiles.d",
    "/usr/lib/tmpfiles.d",
    "/lib/tmpfiles.d",
)
TMPFILES_UNIT = "systemd-tmpfiles-setup.service"
_CREATES_DIR = set("dDvqQ")
_CREATES_OTHER = set("fFLpcbC")
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")
_AFTER_RE = re.compile(r"^\s*After\s*=\s*(.*)$", re.MULTILINE)


def bound_location(path: str, snap: Snapshot) -> str:
    """Where the kernel binds a rule on `path`: parents resolved through symlinks, the last
    component as written (a rule on a symlink watches the link itself)."""
    if path == "/":
        return "/"
    parent, _, name = path.rpartition("/")
    info = snap.paths.get(parent or "/")
    real_parent = info.target if info and info.target else (parent or "/")
    return real_parent.rstrip("/") + "/" + name


def real_path(path: str, snap: Snapshot) -> str:
    """The object a path names after every symlink (readlink -m)."""
    info = snap.paths.get(path)
    return info.target if info and info.target else path


@dataclass(frozen=True)
class Mount:
    point: str
    fstype: str


@dataclass(frozen=True)
class BootPath:
    exists: bool
    is_dir: bool
    reason: str = ""  # why it does not exist at boot


def _parse_mounts(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) >= 3:
            point = _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), fields[1])
            mounts.append(Mount(point, fields[2]))
    return mounts


def _tmpfiles_created(files: list[tuple[str, str]]) -> dict[str, bool]:
    """Paths systemd-tmpfiles creates (path -> is a directory), files overridden by name as systemd does."""
    chosen: dict[str, str] = {}
    order = {d: i for i, d in enumerate(TMPFILES_DIRS)}
    for path, text in sorted(files, key=lambda f: order.get(f[0].rpartition("/")[0], len(order))):
        chosen.setdefault(path.rpartition("/")[2], text)
    created: dict[str, bool] = {}
    for text in chosen.values():
        for line in text.splitlines():
            fields = line.split()
            if len(fields) < 2 or fields[0].startswith("#") or "%" in fields[1]:
                continue
            kind = fields[0].rstrip("!+-=~^")
            if kind[:1] in _CREATES_DIR | _CREATES_OTHER and fields[1].startswith("/"):
                created[fields[1].rstrip("/") or "/"] = kind[:1] in _CREATES_DIR
    return created


class BootModel:
    """The host's paths as its rule loader finds them at boot."""

    def __init__(self, snap: Snapshot, loader_unit: str):
        self.snap = snap
        self.loader_unit = loader_unit

    @cached_property
    def mounts(self) -> list[Mount]:
        return _parse_mounts(self.snap.mounts)

    @cached_property
    def tmpfiles_first(self) -> bool:
        """systemd-tmpfiles-setup runs before the unit that loads the rules."""
        return any(TMPFILES_UNIT in after.split() for after in _AFTER_RE.findall(self.loader_unit))

    @cached_property
    def created(self) -> dict[str, bool]:
        return _tmpfiles_created(self.snap.tmpfiles) if self.tmpfiles_first else {}

    @cached_property
    def _mount_of(self) -> dict[str, Mount | None]:
        return {}

    def mount_of(self, real: str) -> Mount | None:
        """The mount `real` is on (the longest mount point above it), once per path."""
        if real not in self._mount_of:
            self._mount_of[real] = self._find_mount(real)
        return self._mount_of[real]

    @cached_property
    def _points(self) -> dict[str, Mount]:
        """Each mount point's last mount (the one on top)."""
        return {mount.point.rstrip("/") or "/": mount for mount in self.mounts}

    def _find_mount(self, real: str) -> Mount | None:
        """The longest mount point that is `real` or above it: its ancestors looked up, not every
        mount scanned (a host with thousands of rules asks for thousands of paths)."""
        here = real
        while here:
            if here in self._points:
                return self._points[here]
            here = here.rpartition("/")[0]
        return self._points.get("/") if real.startswith("/") else None

    def fstype(self, real: str) -> str:
        mount = self.mount_of(real)
        return mount.fstype if mount else ""

    def at_boot(self, real: str, now: PathInfo | None) -> BootPath:
        """Whether `real` (a resolved path) exists when the loader runs at boot, and is a directory."""
        mount = self.mount_of(real)
        is_dir_now = bool(now and now.kind == "dir")
        if mount is None or (mount.fstype not in VOLATILE_FS and mount.fstype not in LATE_FS):
            # The probe stats every rule path and its parent; one it did not see is taken as there.
            exists = now.exists if now else True
            return BootPath(exists, exists and is_dir_now)
        if mount.fstype in LATE_FS:
            return BootPath(
                False,
                False,
                f"at boot {real} is not there yet: {mount.point} is {mount.fstype}, mounted after the audit rules load",
            )
        if real == mount.point:
            return BootPath(True, True)
        if real in self.created:
            return BootPath(True, self.created[real])
        if any(p.startswith(real + "/") for p in self.created):
            return BootPath(True, True)
        how = (
            "no tmpfiles.d entry creates it"
            if self.tmpfiles_first
            else f"the loader does not run after {TMPFILES_UNIT}"
        )
        return BootPath(
            False,
            False,
            f"at boot {real} does not exist yet: it is on {mount.fstype} "
            f"({mount.point}) and {how} before the audit rules load; the service that "
            "makes it starts later",
        )
