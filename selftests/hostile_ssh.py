"""A real SSH server (paramiko's server side) on 127.0.0.1 that behaves as a hostile host.

OpenSSH cannot be made to misbehave at the protocol level, so this server speaks real SSH with
its own host key and authorizes one client key, then answers each exec request with `reply(command)`:
None never answers the request at all (the host hangs after opening the session), anything else
is (exit code, stdout bytes) sent back as a real command's output would be. The names of the
global requests the client sends (keepalives among them) are kept in `global_requests`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko

Reply = Callable[[str], tuple[int, bytes] | None]


@dataclass(frozen=True)
class HostileServer:
    port: int
    known_hosts: Path
    client_key: Path
    global_requests: list[str]

    def spec(self) -> str:
        return f"paramiko://root@127.0.0.1:{self.port}?ssh_identity_file={self.client_key}"


class _Interface(paramiko.ServerInterface):
    def __init__(self, client_key: paramiko.PKey, reply: Reply, stop: threading.Event, global_requests: list[str]):
        self.client_key, self.reply, self.stop = client_key, reply, stop
        self.global_requests = global_requests

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_SUCCESSFUL if key == self.client_key else paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_global_request(self, kind: str, msg: paramiko.Message) -> bool:
        self.global_requests.append(kind)
        return False  # refused, as OpenSSH refuses a keepalive

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        answer = self.reply(command.decode(errors="replace"))
        if answer is None:
            self.stop.wait()  # hold the request unanswered until the server shuts down
            return False
        threading.Thread(target=_send, args=(channel, *answer), daemon=True).start()
        return True


def _send(channel: paramiko.Channel, rc: int, stdout: bytes) -> None:
    # paramiko sends the exec request's success reply after check_channel_exec_request returns;
    # a close that overtook it would look like a refused request to the client.
    time.sleep(0.2)
    with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
        channel.sendall(stdout)
        channel.send_exit_status(rc)
        channel.close()


@contextlib.contextmanager
def hostile_ssh_server(workdir: Path, reply: Reply) -> Iterator[HostileServer]:
    host_key, client_key = paramiko.ECDSAKey.generate(), paramiko.ECDSAKey.generate()
    client_key.write_private_key_file(str(workdir / "client_key"))
    stop = threading.Event()
    transports: list[paramiko.Transport] = []
    global_requests: list[str] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    known_hosts = workdir / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key.get_name()} {host_key.get_base64()}\n")

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            transport = paramiko.Transport(conn)
            transport.add_server_key(host_key)
            transports.append(transport)
            with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
                transport.start_server(server=_Interface(client_key, reply, stop, global_requests))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield HostileServer(port, known_hosts, workdir / "client_key", global_requests)
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
        listener.close()
        for transport in transports:
            transport.close()
        thread.join(5)
