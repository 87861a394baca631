"""QEMU processes for test hosts: command line, process groups, free ports, QMP."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

from selftests.child import die_with_parent

from .image import Image

MEMORY_MB = 384
# The guest's kernel command line is part of the saved state too, so it is fixed here.
APPEND = "root=/dev/vda rw console=ttyS0 net.ifnames=0 panic=-1 quiet"


class QemuError(RuntimeError):
    pass


def free_ports(n: int) -> list[int]:
    """n distinct loopback ports free right now (QEMU binds them a moment later)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def create_overlay(backing: Path, path: Path) -> None:
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(backing), str(path)],
        check=True,
    )


def command(
    image: Image, overlay: Path, port: int, vmdir: Path, *, incoming: Path | None = None, qmp: bool = False
) -> list[str]:
    """QEMU argv. Everything that shapes guest state must match between save and restore."""
    argv = [
        "qemu-system-x86_64", "-name", f"cisaudit-{vmdir.name}",
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-machine", "pc", "-accel", "tcg,tb-size=128", "-smp", "1", "-m", str(MEMORY_MB),
        "-kernel", str(image.kernel), "-initrd", str(image.initrd), "-append", APPEND,
        "-drive", f"file={overlay},if=virtio,format=qcow2,cache=unsafe",
        "-nic", f"user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device", "virtio-rng-pci",
        # Identity via fw_cfg: the host made these files, nothing crosses the network.
        "-fw_cfg", f"name=opt/cisaudit/hostkey,file={vmdir / 'hostkey'}",
        "-fw_cfg", f"name=opt/cisaudit/hostname,file={vmdir / 'hostname'}",
        "-serial", f"file:{vmdir / 'serial.log'}",
        # ttyS1: the control line (see control()); only this process can open the socket.
        "-chardev", f"socket,id=ctl,path={vmdir / 'ctl.sock'},server=on,wait=off",
        "-device", "isa-serial,chardev=ctl",
        # The template is paused before saving; without this its clones would start paused too.
        "-global", "migration.store-global-state=off",
    ]  # fmt: skip
    if qmp:
        argv += ["-qmp", f"unix:{vmdir / 'qmp.sock'},server=on,wait=off"]
    if incoming:
        argv += ["-incoming", "exec:cat " + shlex.quote(str(incoming))]
    return argv


def spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as err:
        # Own session = own process group, so killpg also ends QEMU's "exec:" helpers.
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
            start_new_session=True, preexec_fn=die_with_parent,
        )  # fmt: skip


def kill(proc: subprocess.Popen[bytes], grace: float = 3.0) -> None:
    """Stop a QEMU and everything in its process group."""
    if proc.returncode is not None:
        return  # reaped already: its pid may be someone else's by now
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # Helpers QEMU forked (exec: migration) share its group, which stays reserved while they live.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def control(vmdir: Path, proc: subprocess.Popen[bytes], deadline: float, line: str = "") -> str:
    """Tell the guest's cisaudit-ctl (ttyS1) one line and return its answer. Pings first, until
    answered: that is how we know a restored VM runs (lines sent during the load are lost)."""
    with socket.socket(socket.AF_UNIX) as s:
        while True:
            _alive(vmdir, proc, deadline)
            try:
                s.connect(str(vmdir / "ctl.sock"))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.05)
        s.settimeout(0.3)
        got = b""
        while b"pong\n" not in got:
            _alive(vmdir, proc, deadline)
            s.sendall(b"ping\n")
            with contextlib.suppress(TimeoutError):
                got += s.recv(256)
        if not line:
            return "pong"
        s.sendall(line.encode() + b"\n")
        rest = got.split(b"pong\n", 1)[1]
        while True:
            answers = [a for a in rest.split(b"\n")[:-1] if a.strip() != b"pong"]  # late pongs
            if answers:
                return answers[0].decode(errors="replace").strip()
            _alive(vmdir, proc, deadline)
            with contextlib.suppress(TimeoutError):
                chunk = s.recv(256)
                if not chunk:
                    raise QemuError(f"{vmdir.name}: control line closed")
                rest += chunk


def _alive(vmdir: Path, proc: subprocess.Popen[bytes], deadline: float) -> None:
    if proc.poll() is not None:
        raise QemuError(f"QEMU for {vmdir.name} exited {proc.returncode}")
    if time.monotonic() > deadline:
        raise QemuError(f"{vmdir.name}: no answer on the control line before the deadline")


class Qmp:
    """Just enough QMP to pause a VM and stream its state to a file."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.file = self.sock.makefile("rwb")
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self) -> dict:
        while True:
            line = self.file.readline()
            if not line:
                raise QemuError("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, name: str, **args: object) -> object:
        self.file.write(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        self.file.flush()
        reply = self._read()
        if "error" in reply:
            raise QemuError(f"QMP {name}: {reply['error']}")
        return reply.get("return")

    def close(self) -> None:
        self.file.close()
        self.sock.close()
