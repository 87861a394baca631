"""One test-host VM as the harness sees it: address, keys, and commands over strict SSH."""

from __future__ import annotations

import contextlib
import select
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import qemu


class SSHNotReady(RuntimeError):
    pass


def ssh_client(
    port: int, client_key: Path, known_hosts: Path | None = None, host_key: paramiko.PKey | None = None
) -> paramiko.SSHClient:
    """Connect as root with host-key checking on: only a key from known_hosts (or host_key) passes."""
    client = paramiko.SSHClient()
    if known_hosts:
        client.load_host_keys(str(known_hosts))
    if host_key:
        client.get_host_keys().add(f"[127.0.0.1]:{port}", host_key.get_name(), host_key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            "127.0.0.1", port, username="root", key_filename=str(client_key),
            look_for_keys=False, allow_agent=False, timeout=5, banner_timeout=5, auth_timeout=10,
        )  # fmt: skip
    except BaseException:
        client.close()
        raise
    return client


def banner(port: int) -> bool:
    """Does sshd answer on port? QEMU's forwarder accepts TCP even while the guest is booting, so
    only a banner tells. Probing this way also keeps paramiko's transport thread from logging."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            return s.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def wait_ssh(
    proc: subprocess.Popen[bytes],
    vmdir: Path,
    port: int,
    deadline: float,
    connect: Callable[[], paramiko.SSHClient],
) -> paramiko.SSHClient:
    """Retry connect() until sshd answers; fail fast with QEMU's own words if QEMU died."""
    while True:
        try:
            if not banner(port):
                raise EOFError("no SSH banner yet")
            return connect()
        except paramiko.BadHostKeyException:
            raise  # a wrong key never becomes right by waiting
        except (paramiko.SSHException, OSError, EOFError) as exc:
            if proc.poll() is not None:
                raise SSHNotReady(f"QEMU for {vmdir.name} exited {proc.returncode}: {tail(vmdir)}") from exc
            if time.monotonic() > deadline:
                raise SSHNotReady(f"{vmdir.name}: no SSH before deadline: {tail(vmdir)}") from exc
            time.sleep(0.3)


def tail(vmdir: Path, n: int = 15) -> str:
    lines: list[str] = []
    for name in ("qemu.log", "serial.log"):
        with contextlib.suppress(OSError):
            lines += [f"[{name}] {x}" for x in (vmdir / name).read_text(errors="replace").splitlines()[-n:]]
    return "\n" + "\n".join(lines)


@dataclass
class VM:
    index: int
    name: str
    port: int
    dir: Path
    client_key: Path
    known_hosts: Path
    host_key: str  # "ssh-ed25519 AAAA...", as in known_hosts
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    # Given on the kernel command line when booted; a restored VM keeps its id in /etc/machine-id.
    machine_id: str | None = None
    _ssh: paramiko.SSHClient | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def spec(self) -> str:
        """Host spec for `pytest --hosts=`; pass `--known-hosts=` the fleet's file so the suite's
        transport checks the key (testinfra's own paramiko backend never would)."""
        return f"paramiko://root@127.0.0.1:{self.port}?ssh_identity_file={self.client_key}"

    @property
    def overlay(self) -> Path:
        return self.dir / "disk.qcow2"

    def ssh(self) -> paramiko.SSHClient:
        """A warm connection, strict against the fleet's known_hosts (shared by threads)."""
        with self._lock:
            transport = self._ssh.get_transport() if self._ssh else None
            if not (transport and transport.is_active()):
                if self._ssh:
                    self._ssh.close()
                self._ssh = ssh_client(self.port, self.client_key, known_hosts=self.known_hosts)
            return self._ssh

    def close_ssh(self) -> None:
        if self._ssh:
            self._ssh.close()
            self._ssh = None

    def run(self, cmd: str, timeout: float = 60.0) -> tuple[int, str, str]:
        """Run cmd with /bin/sh as root; stdin is closed (so ausearch and friends do not wait)."""
        return run(self.ssh(), cmd, timeout, self.name)

    def power_off(self, timeout: float = 120.0) -> None:
        """`systemctl poweroff` in the guest and wait for QEMU to exit (-no-reboot: it does not
        come back). The disk then holds what a clean shutdown left; QEMU is killed on timeout."""
        assert self.proc
        # The guest may close the connection before systemctl answers.
        with contextlib.suppress(paramiko.SSHException, OSError, EOFError):
            run(self.ssh(), "systemctl poweroff", 30, self.name)
        self.close_ssh()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            qemu.kill(self.proc)
            msg = f"{self.name}: QEMU still running {timeout:.0f} s after poweroff: {tail(self.dir)}"
            raise qemu.QemuError(msg) from exc
        if self.proc.returncode != 0:
            raise qemu.QemuError(f"{self.name}: QEMU exited {self.proc.returncode} on poweroff: {tail(self.dir)}")


def run(client: paramiko.SSHClient, cmd: str, timeout: float = 60.0, name: str = "vm") -> tuple[int, str, str]:
    transport = client.get_transport()
    assert transport is not None
    chan = transport.open_session(timeout=10)
    try:
        chan.exec_command(cmd)
        chan.shutdown_write()
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        while True:
            done = chan.eof_received and chan.exit_status_ready()  # before the drain: no data lost
            # Drain both streams as they come: a full stderr window would stall the command.
            while chan.recv_ready():
                out += chan.recv(65536)
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            if done:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: {cmd!r} still running after {timeout} s")
            select.select([chan], [], [], 0.2)
        return chan.recv_exit_status(), out.decode(errors="replace"), err.decode(errors="replace")
    finally:
        chan.close()


def new_host_key(path: Path) -> paramiko.PKey:
    """A fresh ed25519 key in OpenSSH format (what the guest's sshd loads); returns its public half."""
    key = Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    )
    path.chmod(0o600)
    return paramiko.Ed25519Key(filename=str(path))
