"""A saved, fully booted VM (RAM + disk) that new VMs restore from instead of booting.

Kept in the cache and keyed by image recipe, QEMU version and QEMU command line, so every
session after the first skips the boot. Restored VMs are then told over their control line
(ttyS1, a local socket) to take their own identity (fw_cfg is read again), clock and machine id.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from . import qemu
from .image import Image, cache_dir, locked
from .vm import new_host_key, run, ssh_client, wait_ssh

STATE_VERSION = "2"
ZERO_FREE_MEMORY = """
echo 3 >/proc/sys/vm/drop_caches
mb=$(awk '/MemAvailable/ {print int($2 / 1024) - 32}' /proc/meminfo)
mkdir -p /run/zero && mount -t tmpfs -o size=${mb}M zero /run/zero
dd if=/dev/zero of=/run/zero/fill bs=1M count=$mb 2>/dev/null
rm -f /run/zero/fill && umount /run/zero && rmdir /run/zero
"""


def state_key(image: Image) -> str:
    version = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout
    argv = qemu.command(image, Path("/OVERLAY"), 0, Path("/VMDIR"))
    return hashlib.sha256("\0".join([STATE_VERSION, image.recipe, version, *argv]).encode()).hexdigest()


def state_dir(image: Image) -> Path:
    # One directory per key, never changed once complete: a fleet restoring from it while
    # another process saves a state for a different key cannot see a half-swapped pair.
    return cache_dir() / f"state-{state_key(image)[:16]}"


def saved_state(image: Image) -> Path | None:
    d = state_dir(image)
    return d if all((d / f).is_file() for f in ("vmstate", "disk.qcow2", "complete")) else None


def drop_state(image: Image) -> None:
    with locked("state"):
        shutil.rmtree(state_dir(image), ignore_errors=True)


def ensure_state(image: Image, timeout: float = 300.0) -> Path:
    """Boot one VM, let it settle, pause it and stream its RAM to a file (once per recipe)."""
    with locked("state"):
        found = saved_state(image)
        if found:
            return found
        final = state_dir(image)
        tmp = final.with_name(final.name + ".new")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        # Sockets and logs in a short temp path (AF_UNIX paths are limited to 108 bytes).
        vmdir = Path(tempfile.mkdtemp(prefix="cisaudit-template-"))
        qemu.create_overlay(image.disk, tmp / "disk.qcow2")
        key = new_host_key(vmdir / "hostkey")
        (vmdir / "hostname").write_text("cisaudit-template")
        port = qemu.free_ports(1)[0]
        proc = qemu.spawn(qemu.command(image, tmp / "disk.qcow2", port, vmdir, qmp=True), vmdir / "qemu.log")
        try:
            deadline = time.monotonic() + timeout
            client = wait_ssh(proc, vmdir, port, deadline, lambda: ssh_client(port, image.client_key, host_key=key))
            # Snapshot a quiet system, not one with units still starting...
            run(client, "timeout 90 systemctl is-system-running --wait; sync", 120)
            # ...whose free memory is zeros: QEMU saves zero pages as flags, not data, so the
            # state file shrinks, restores load faster and untouched pages cost restored VMs no RAM.
            run(client, ZERO_FREE_MEMORY, 120)
            client.close()
            # ...and one whose control line is listening, or restored VMs could not be told who they are.
            qemu.control(vmdir, proc, deadline)
            qmp = qemu.Qmp(vmdir / "qmp.sock")
            qmp.cmd("stop")
            qmp.cmd("migrate", uri="exec:cat > " + shlex.quote(str(tmp / "vmstate")))
            while (status := qmp.cmd("query-migrate")["status"]) not in ("completed", "failed"):  # type: ignore[index]
                if time.monotonic() > deadline:
                    raise qemu.QemuError("saving VM state timed out")
                time.sleep(0.1)
            if status != "completed":
                raise qemu.QemuError(f"saving VM state: {status}")
            qmp.cmd("quit")
            qmp.close()
            proc.wait(30)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            qemu.kill(proc)
            shutil.rmtree(vmdir, ignore_errors=True)
        (tmp / "complete").write_text(state_key(image) + "\n")
        for old in cache_dir().glob("state-*"):  # other recipes or QEMU versions
            if old != tmp:
                shutil.rmtree(old, ignore_errors=True)
        # The disk's backing path stays valid: it names the image, not this directory.
        tmp.rename(final)
        return final
