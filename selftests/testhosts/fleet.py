"""A fleet of independent QEMU test hosts, each with its own kernel, audit subsystem and host key.

    with Fleet(3) as fleet:
        rc, out, err = fleet[0].run("auditctl -s")

Start and close a Fleet from the main thread: QEMU is tied to the thread that started it
(PR_SET_PDEATHSIG), and only the main thread can install the SIGTERM/SIGHUP cleanup.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType, TracebackType
from typing import Literal

from . import qemu
from .image import Image, ensure_image
from .state import drop_state, ensure_state
from .vm import VM, SSHNotReady, new_host_key, ssh_client, tail, wait_ssh

Mode = Literal["auto", "boot", "restore"]
_LIVE: set[Fleet] = set()
_PREV_HANDLERS: dict[int, object] = {}


class FleetError(RuntimeError):
    pass


class Fleet:
    """size VMs, each its own QEMU (TCG) with its own qcow2 overlay, kernel and host key.

    mode "restore" loads each VM from the cached saved state of one booted VM (seconds; the
    first use saves it), "boot" boots each kernel (tens of seconds), "auto" restores and falls
    back to booting if that fails. Every VM listens on 127.0.0.1 only (QEMU user networking)."""

    def __init__(self, size: int = 3, *, mode: Mode = "auto", timeout: float = 300.0) -> None:
        if mode not in ("auto", "boot", "restore"):
            raise ValueError(f"mode {mode!r}: use auto, boot or restore")
        self.size, self.mode, self.timeout = size, mode, timeout
        self.vms: list[VM] = []
        self.dir = Path()
        self.image: Image | None = None
        self.state: Path | None = None
        self.ready_seconds = 0.0  # start() to all VMs answering SSH, excluding image/state builds

    # -- public API --------------------------------------------------------------------------
    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def ssh_config(self) -> Path:
        """OpenSSH config with a strict Host entry per VM: `ssh -F FILE cisaudit-vm0`."""
        return self.dir / "ssh_config"

    def hosts_option(self, backend: Literal["paramiko", "ssh"] = "paramiko") -> str:
        """Value for `pytest --hosts=`; "ssh" names the ssh_config aliases (use with its -F)."""
        if backend == "ssh":
            return ",".join(f"ssh://cisaudit-{vm.name}" for vm in self.vms)
        return ",".join(vm.spec for vm in self.vms)

    def __enter__(self) -> Fleet:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __iter__(self) -> Iterator[VM]:
        return iter(self.vms)

    def __len__(self) -> int:
        return len(self.vms)

    def __getitem__(self, i: int) -> VM:
        return self.vms[i]

    def start(self) -> None:
        self.image = ensure_image()
        if self.mode != "boot":
            try:
                self.state = ensure_state(self.image, self.timeout)
            except (qemu.QemuError, SSHNotReady, OSError) as exc:
                if self.mode == "restore":
                    raise
                print(f"testhosts: no saved state ({exc}); booting instead", file=sys.stderr)
        sweep_stale()
        self.dir = Path(tempfile.mkdtemp(prefix="cisaudit-fleet-"))
        (self.dir / "owner").write_text(f"{os.getpid()}\n")
        _LIVE.add(self)
        _install_handlers()
        try:
            t0 = time.monotonic()
            self._start_all()
            self.ready_seconds = time.monotonic() - t0
        except BaseException:
            self.close()
            raise

    def reset(self, vm: VM) -> VM:
        """Give vm a clean disk and a fresh boot (or restore); same port, name and host key."""
        self._discard(vm)
        self._launch(vm)
        self._await(vm, time.monotonic() + self.timeout)
        return vm

    def reset_all(self, vms: list[VM]) -> None:
        """reset() each of vms, all at once (as the fleet starts); a VM whose port was taken
        meanwhile moves to another, as at start."""
        for vm in vms:
            self._discard(vm)
        self._launch_and_wait(vms)

    def reboot(self, vm: VM, poweroff_timeout: float = 120.0) -> VM:
        """A real reboot: `systemctl poweroff` inside vm, wait for its QEMU to exit, then boot the
        same overlay again (never a saved state), so the guest boots the disk it left. Returns vm
        SSH-ready with the same host key and name; its port (and so vm.spec, known_hosts and
        ssh_config) changes only if another process took the port meanwhile."""
        vm.power_off(poweroff_timeout)
        return self.boot_again(vm)

    def boot_again(self, vm: VM) -> VM:
        """After the guest ended its QEMU (poweroff, or a reboot under -no-reboot): boot the same
        overlay again, SSH-ready, as reboot() does."""
        serial = vm.dir / "serial.log"
        if serial.exists():  # QEMU truncates it; keep the shutdown's messages
            serial.replace(vm.dir / "serial.prev.log")
        deadline = time.monotonic() + self.timeout
        for _ in range(3):
            self._boot(vm)
            try:
                self._await_ssh(vm, deadline)
                return vm
            except SSHNotReady:
                if not _port_taken(vm):
                    raise
            vm.port = qemu.free_ports(1)[0]
            self._write_ssh_files()
        raise FleetError(f"{vm.name}: could not bind a forwarded port after 3 tries")

    def close(self) -> None:
        """Kill every QEMU (whole process group) and delete overlays. Idempotent."""
        for vm in self.vms:  # signal all first so they shut down together
            vm.close_ssh()
            if vm.proc and vm.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(vm.proc.pid, signal.SIGTERM)
        for vm in self.vms:
            if vm.proc:
                qemu.kill(vm.proc)
        if self.dir != Path():
            shutil.rmtree(self.dir, ignore_errors=True)
        _LIVE.discard(self)

    # -- internals ---------------------------------------------------------------------------
    def _start_all(self) -> None:
        assert self.image
        self.vms = []
        for i, port in enumerate(qemu.free_ports(self.size)):
            d = self.dir / f"vm{i}"
            d.mkdir()
            key = new_host_key(d / "hostkey")
            (d / "hostname").write_text(f"cisaudit-vm{i}")
            vm = VM(i, f"vm{i}", port, d, self.image.client_key, self.known_hosts,
                    f"{key.get_name()} {key.get_base64()}")  # fmt: skip
            self.vms.append(vm)
        self._write_ssh_files()
        try:
            self._launch_and_wait()
        except (qemu.QemuError, SSHNotReady, OSError) as exc:
            if self.mode != "auto" or not self.state:
                raise
            # A saved state that does not restore is stale in some way we did not key on.
            print(f"testhosts: restore failed ({exc}); dropping saved state, booting", file=sys.stderr)
            for vm in self.vms:
                vm.close_ssh()
                if vm.proc:
                    qemu.kill(vm.proc)
                (vm.dir / "disk.qcow2").unlink(missing_ok=True)
            drop_state(self.image)
            self.state = None
            self._launch_and_wait()

    def _discard(self, vm: VM) -> None:
        vm.close_ssh()
        if vm.proc:
            qemu.kill(vm.proc)
        for f in ("disk.qcow2", "serial.log", "qemu.log"):
            (vm.dir / f).unlink(missing_ok=True)

    def _launch_and_wait(self, vms: list[VM] | None = None) -> None:
        pending = self.vms if vms is None else vms
        deadline = time.monotonic() + self.timeout
        for _ in range(3):
            for vm in pending:  # all QEMUs first, so they boot in parallel
                self._launch(vm)
            # Waiting in threads overlaps the guests' SSH work; QEMU is started by this thread only.
            with ThreadPoolExecutor(len(pending)) as pool:
                waits = [(vm, pool.submit(self._await, vm, deadline)) for vm in pending]
            errors = [(vm, e) for vm, w in waits if (e := w.exception()) is not None]
            if not errors:
                return
            # Someone took a port between free_ports() and QEMU's bind: move those VMs only.
            fatal = [e for vm, e in errors if not _port_taken(vm)]
            if fatal:
                raise fatal[0]
            pending = [vm for vm, _ in errors]
            for vm, port in zip(pending, qemu.free_ports(len(pending)), strict=True):
                for f in ("disk.qcow2", "qemu.log"):
                    (vm.dir / f).unlink(missing_ok=True)
                vm.port = port
            self._write_ssh_files()
        raise FleetError("could not bind forwarded ports after 3 tries")

    def _launch(self, vm: VM) -> None:
        assert self.image
        if self.state and self.mode == "auto" and not (self.state / "complete").exists():
            self.state = None  # replaced by a newer recipe's state since we started: boot instead
        if self.state:
            qemu.create_overlay(self.state / "disk.qcow2", vm.overlay)
            # A restored VM keeps the template's command line; it gets an id in _await.
            vm.machine_id = None
            argv = qemu.command(self.image, vm.overlay, vm.port, vm.dir, incoming=self.state / "vmstate")
            vm.proc = qemu.spawn(argv, vm.dir / "qemu.log")
        else:
            qemu.create_overlay(self.image.disk, vm.overlay)
            vm.machine_id = uuid.uuid4().hex
            self._boot(vm)

    def _boot(self, vm: VM) -> None:
        """Start QEMU on vm's overlay as it is, booting its kernel (no saved state)."""
        assert self.image
        argv = qemu.command(self.image, vm.overlay, vm.port, vm.dir)
        if vm.machine_id:
            argv[argv.index("-append") + 1] += f" systemd.machine_id={vm.machine_id}"
        vm.proc = qemu.spawn(argv, vm.dir / "qemu.log")

    def _await(self, vm: VM, deadline: float) -> None:
        assert vm.proc
        if self.state:  # restored: make it this VM (fw_cfg identity), set the clock, new machine id
            line = f"restored {time.time():.3f} {uuid.uuid4().hex}"
            answer = qemu.control(vm.dir, vm.proc, deadline, line)
            if answer != "ok":
                raise qemu.QemuError(f"{vm.name}: identity fix-up answered {answer!r}: {tail(vm.dir)}")
        self._await_ssh(vm, deadline)

    def _await_ssh(self, vm: VM, deadline: float) -> None:
        assert vm.proc and self.image
        key = self.image.client_key
        vm.close_ssh()
        vm._ssh = wait_ssh(
            vm.proc, vm.dir, vm.port, deadline, lambda: ssh_client(vm.port, key, known_hosts=vm.known_hosts)
        )

    def _write_ssh_files(self) -> None:
        assert self.image
        _write(self.known_hosts, "".join(f"[127.0.0.1]:{vm.port} {vm.host_key}\n" for vm in self.vms))
        _write(self.ssh_config, "".join(
            f"Host cisaudit-{vm.name}\n  HostName 127.0.0.1\n  Port {vm.port}\n  User root\n"
            f"  IdentityFile {self.image.client_key}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {self.known_hosts}\n  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n  LogLevel ERROR\n"
            for vm in self.vms
        ))  # fmt: skip


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)  # readers in other threads never see half a file


def _port_taken(vm: VM) -> bool:
    try:
        log = (vm.dir / "qemu.log").read_text(errors="replace")
    except OSError:
        return False
    return vm.proc is not None and vm.proc.poll() is not None and "host forwarding rule" in log


def sweep_stale() -> None:
    """Delete fleet dirs whose owner died by SIGKILL (its QEMUs died with it: PDEATHSIG)."""
    for d in Path(tempfile.gettempdir()).glob("cisaudit-fleet-*"):
        try:
            os.kill(int((d / "owner").read_text()), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except (OSError, ValueError):
            pass  # alive, not ours, or being created right now


def close_all() -> None:
    for fleet in list(_LIVE):
        fleet.close()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    close_all()
    prev = _PREV_HANDLERS.get(signum)
    if callable(prev):
        prev(signum, frame)
    else:  # default action: die by the same signal, as if we had never caught it
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _install_handlers() -> None:
    if _PREV_HANDLERS or threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        prev = signal.getsignal(sig)
        if prev is not signal.SIG_IGN:
            _PREV_HANDLERS[sig] = prev
            signal.signal(sig, _on_signal)


atexit.register(close_all)
