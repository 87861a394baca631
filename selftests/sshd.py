"""A throwaway, real OpenSSH server on 127.0.0.1 for integration tests.

`throwaway_sshd()` generates an ed25519 host key and a client key, writes its own sshd_config
(key-only root login, no PAM, no password), starts `/usr/sbin/sshd -D -e -f CONFIG` on a free
port, waits for its banner, and on exit kills it (and its per-connection children) and removes
every file. Nothing on the machine's own sshd setup is read or changed, except that sshd's
privilege-separation dir /run/sshd is created if missing. `sshd_server` is the same as a fixture.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from selftests.child import die_with_parent

SSHD = "/usr/sbin/sshd"


def unavailable(reason: str) -> None:
    """Skip, or fail when CI=true: in CI a missing tool must not turn into a green run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: not skipping)", pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True)
class Sshd:
    """A running throwaway sshd and the files a client needs to reach it."""

    host: str
    port: int
    dir: Path
    client_key: Path  # private key of an authorized client (for root)
    host_key_line: str  # "ssh-ed25519 AAAA..." of the server
    known_hosts: Path  # `[127.0.0.1]:PORT ssh-ed25519 ...`: the server's real key
    log: Path  # sshd's stderr (-e)
    pid: int

    @property
    def known_name(self) -> str:
        return f"[{self.host}]:{self.port}"

    def write_known_hosts(self, path: Path, key_line: str | None = None) -> Path:
        """A known_hosts file for this server with key_line (default: its real key)."""
        path.write_text(f"{self.known_name} {key_line or self.host_key_line}\n")
        return path

    def spec(self, scheme: str = "paramiko", user: str = "root", identity: bool = True, **query: str) -> str:
        """A host spec for this server; identity adds `?ssh_identity_file=CLIENT_KEY`."""
        if identity:
            query = {"ssh_identity_file": str(self.client_key), **query}
        return f"{scheme}://{user}@{self.host}:{self.port}" + (
            "?" + urllib.parse.urlencode(query, safe="/") if query else ""
        )

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


def keygen(path: Path, comment: str) -> str:
    """A new ed25519 key pair at path (no passphrase); returns the public key's "TYPE BASE64"."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _banner(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        return s.recv(64).startswith(b"SSH-")
    return False


def _children(pid: int) -> list[int]:
    """Direct children of pid (sshd's per-connection processes), from /proc."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(stat.parent.name))
    return kids


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End the per-connection children first, while the listener still reaps them (PID 1 here
    may not reap orphans), then the listener."""
    deadline = time.monotonic() + 3
    while (kids := _children(proc.pid)) and time.monotonic() < deadline:
        for kid in kids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(kid, signal.SIGTERM)
        time.sleep(0.05)
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@contextlib.contextmanager
def throwaway_sshd(parent: Path | None = None, start_timeout: float = 10) -> Iterator[Sshd]:
    """Start a real sshd on 127.0.0.1:RANDOM; skip (fail with CI=true) if OpenSSH is missing."""
    if not os.access(SSHD, os.X_OK) or not shutil.which("ssh-keygen"):
        unavailable(f"OpenSSH server not installed ({SSHD} or ssh-keygen missing)")
    if os.geteuid() != 0:
        unavailable("a throwaway sshd for root login needs to run as root")
    Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)  # privilege-separation dir
    workdir = Path(tempfile.mkdtemp(prefix="sshd-", dir=parent))
    proc: subprocess.Popen[bytes] | None = None
    try:
        host_key_line = keygen(workdir / "ssh_host_ed25519_key", "throwaway-host")
        client_key = workdir / "client_ed25519"
        keygen(client_key, "throwaway-client")
        log = workdir / "sshd.log"
        for _attempt in range(3):  # the free port may be taken between probe and bind
            port = free_port()
            config = workdir / "sshd_config"
            config.write_text(
                "\n".join(
                    (
                        f"Port {port}",
                        "ListenAddress 127.0.0.1",
                        f"HostKey {workdir / 'ssh_host_ed25519_key'}",
                        f"AuthorizedKeysFile {client_key}.pub",
                        "PermitRootLogin prohibit-password",
                        "PubkeyAuthentication yes",
                        "PasswordAuthentication no",
                        "KbdInteractiveAuthentication no",
                        "UsePAM no",
                        f"PidFile {workdir / 'sshd.pid'}",
                        "StrictModes no",
                        "MaxStartups 50",
                        "LogLevel VERBOSE",
                    )
                )
                + "\n"
            )
            with log.open("ab") as err:
                proc = subprocess.Popen(
                    [SSHD, "-D", "-e", "-f", str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=err,
                    stderr=err,
                    start_new_session=True,
                    preexec_fn=die_with_parent,
                )
            deadline = time.monotonic() + start_timeout
            while proc.poll() is None and not _banner(port) and time.monotonic() < deadline:
                time.sleep(0.05)
            if proc.poll() is None and _banner(port):
                break
            _stop(proc)
            proc = None
        if proc is None:
            raise RuntimeError(f"throwaway sshd did not start: {log.read_text(errors='replace')[-2000:]}")
        server = Sshd("127.0.0.1", port, workdir, client_key, host_key_line, workdir / "known_hosts", log, proc.pid)
        server.write_known_hosts(server.known_hosts)
        yield server
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """A throwaway sshd for the module's tests (see throwaway_sshd)."""
    with throwaway_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server
