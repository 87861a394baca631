"""cisaudit.model.boot: what exists when the rule loader runs at boot (docs/kernel-behaviour.md, "Boot")."""

import pytest

from cisaudit.model.boot import BootModel, bound_location
from cisaudit.model.snapshot import PathInfo, Snapshot

AFTER_TMPFILES = "[Unit]\nAfter=local-fs.target systemd-tmpfiles-setup.service\n"
MOUNTS = (
    "/dev/vda / ext4 rw 0 0\ntmpfs /run tmpfs rw 0 0\nserver:/x /mnt/n\\040fs nfs4 rw 0 0\n"
    "tmpfs /srv/scratch tmpfs rw 0 0\n"
)


def model(tmpfiles=(), unit=AFTER_TMPFILES):
    snap = Snapshot(mounts=MOUNTS, tmpfiles=list(tmpfiles))
    return BootModel(snap, unit)


def now(path, kind="dir"):
    return PathInfo(path, kind, path)


@pytest.mark.parametrize(
    ("path", "exists"),
    [
        ("/etc/docker", True),
        ("/run", True),
        ("/run/containerd", False),
        ("/srv/scratch", True),
        ("/srv/scratch/x", False),
        ("/mnt/n fs/data", False),
    ],
)
def test_volatile_and_late_filesystems(path, exists):
    assert model().at_boot(path, now(path)).exists is exists


def test_tmpfiles_entry_creates_the_path_and_its_parents_before_the_loader():
    boot = model([("/usr/lib/tmpfiles.d/x.conf", "d /run/containerd/sub 0711 root root -\n")])
    assert boot.at_boot("/run/containerd/sub", None).exists and boot.at_boot("/run/containerd", None).is_dir


def test_the_reason_names_the_filesystem_and_what_is_missing():
    reason = model().at_boot("/run/containerd", now("/run/containerd")).reason
    assert reason.startswith("at boot /run/containerd does not exist yet: it is on tmpfs (/run)")
    assert "no tmpfiles.d entry creates it" in reason


@pytest.mark.parametrize(
    ("files", "exists"),
    [
        ([("/etc/tmpfiles.d/x.conf", ""), ("/usr/lib/tmpfiles.d/x.conf", "d /run/containerd - - - -\n")], False),
        ([("/etc/tmpfiles.d/y.conf", "d /run/containerd - - - -\n"), ("/usr/lib/tmpfiles.d/x.conf", "")], True),
        ([("/usr/lib/tmpfiles.d/x.conf", "d /run/%t/x - - - -\n#d /run/containerd\n")], False),
    ],
    ids=["etc-masks-usr", "other-name-adds", "specifiers-and-comments-skipped"],
)
def test_tmpfiles_files_override_by_name(files, exists):
    assert model(files).at_boot("/run/containerd", None).exists is exists


def test_no_tmpfiles_when_the_loader_may_run_first():
    boot = model([("/usr/lib/tmpfiles.d/x.conf", "d /run/containerd - - - -\n")], unit="[Service]\n")
    assert not boot.at_boot("/run/containerd", None).exists
    assert "does not run after systemd-tmpfiles-setup.service" in boot.at_boot("/run/containerd", None).reason


def test_bound_location_follows_parents_not_the_last_component():
    snap = Snapshot(
        paths={"/var/run": PathInfo("/var/run", "symlink", "/run"), "/usr/bin": PathInfo("/usr/bin", "dir", "/usr/bin")}
    )
    assert bound_location("/var/run/containerd", snap) == "/run/containerd"
    assert bound_location("/usr/bin/runc", snap) == "/usr/bin/runc"
