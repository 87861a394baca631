"""The paramiko backend, in a module of its own: importing paramiko (and cryptography) costs
about 0.1 s and a few hundred path lookups, which a local:// or ssh:// run never needs
(cisaudit/host/transport.py names it by its dotted path; testinfra imports it on first use)."""

from __future__ import annotations

import os
import select
import threading
import time
from typing import Any

import paramiko
from testinfra.backend import base
from testinfra.backend.paramiko import ParamikoBackend

from cisaudit.host.transport import (
    DEFAULT_MAX_OUTPUT_BYTES,
    HostError,
    OutputLimit,
    _session_kwargs,
)

KEEPALIVE_S = 15


class VerifiedParamikoBackend(OutputLimit, ParamikoBackend):
    """paramiko with known_hosts verification, a connect timeout, a per-command deadline and
    an output cap."""

    def __init__(
        self,
        hostspec: str,
        known_hosts: str | None = None,
        accept_new_host_keys: bool = False,
        command_timeout: float = 300,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        **kwargs: Any,
    ):
        self.known_hosts = known_hosts
        self.accept_new_host_keys = accept_new_host_keys
        self.command_timeout = float(command_timeout)
        self.max_output_bytes = int(max_output_bytes)
        super().__init__(hostspec, **kwargs)

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        """Send the command once. ParamikoBackend.run sends it again over a new connection when
        the first died mid-command: cisaudit/host/scripts/apply.sh would run twice (README, --remediate)."""
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():  # died while idle: nothing was sent yet
            self.reconnect()
        cmd = self.encode(self.get_command(command, *args))
        rc, stdout, stderr = self._exec_command(cmd)
        return self.result(rc, cmd, stdout, stderr)

    def _policy(self) -> paramiko.MissingHostKeyPolicy:
        return paramiko.AutoAddPolicy() if self.accept_new_host_keys else paramiko.RejectPolicy()

    @property
    def client(self) -> paramiko.SSHClient:
        cached: paramiko.SSHClient | None = self.__dict__.get("_client")
        if cached is not None:
            return cached
        client = _ClientWithPolicy(self._policy())
        client.load_system_host_keys()
        if os.path.exists("/etc/ssh/ssh_known_hosts"):  # read-only: AutoAddPolicy saves load_host_keys' file
            client.load_system_host_keys("/etc/ssh/ssh_known_hosts")
        if self.known_hosts:  # a file asked for and missing is an error, never silently less trust
            try:
                client.load_host_keys(self.known_hosts)
            except OSError as exc:
                raise HostError(f"cannot read known_hosts {self.known_hosts}: {exc.strerror}") from None
        self._connect(client)
        self.__dict__["_client"] = client
        return client

    @client.deleter
    def client(self) -> None:
        self.__dict__.pop("_client", None)

    def reconnect(self) -> None:
        """Close the connection (it may be hung); the next command opens a new one."""
        cached = self.__dict__.pop("_client", None)
        if cached is not None:
            cached.close()

    def _connect(self, client: paramiko.SSHClient) -> None:
        cfg: dict[str, Any] = {
            "hostname": self.host.name,
            "port": int(self.host.port or 22),
            "username": self.host.user,
            "password": self.host.password,
            "timeout": self.timeout,
            "banner_timeout": self.timeout,
            "auth_timeout": self.timeout,
        }
        if self.ssh_config:
            with open(self.ssh_config) as f:
                config = paramiko.SSHConfig()
                config.parse(f)
            self._load_ssh_config(client, cfg, config, os.path.dirname(self.ssh_config))
            client.set_missing_host_key_policy(self._policy())  # ssh_config may not weaken it
        if self.ssh_identity_file:
            cfg["key_filename"] = self.ssh_identity_file
        client.connect(**cfg)

    def _exec_command(self, command: bytes) -> tuple[int, bytes, bytes]:
        deadline = time.monotonic() + self.command_timeout
        transport = self.client.get_transport()
        assert transport is not None
        transport.set_keepalive(KEEPALIVE_S)  # an idle, half-dead connection is noticed
        chan = transport.open_session(timeout=self.command_timeout)
        # paramiko waits for the reply to the exec request without a timeout: closing the
        # channel at the deadline wakes that wait (and any other) with an exception.
        alarm = threading.Timer(max(0.0, deadline - time.monotonic()), chan.close)
        alarm.daemon = True
        alarm.start()
        try:
            return self._drain(chan, command, deadline)
        except (paramiko.SSHException, EOFError, OSError):
            if time.monotonic() >= deadline:
                raise HostError(f"command timed out after {self.command_timeout:g} s") from None
            if not transport.is_active():
                raise HostError("connection lost during the command") from None
            raise
        finally:
            alarm.cancel()
            chan.close()

    def _drain(self, chan: paramiko.Channel, command: bytes, deadline: float) -> tuple[int, bytes, bytes]:
        chan.exec_command(command)
        out, err = bytearray(), bytearray()
        # Drain both streams together: reading stdout to EOF first blocks once stderr fills.
        while True:
            if time.monotonic() > deadline:  # checked first: a command that never stops writing
                raise HostError(f"command timed out after {self.command_timeout:g} s")
            if chan.recv_ready():
                out += chan.recv(65536)
                self.check_output_size(len(out) + len(err))
            elif chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
                self.check_output_size(len(out) + len(err))
            elif chan.exit_status_ready() and chan.eof_received:
                break
            elif chan.closed:  # closed without an exit status: the connection or the alarm ended it
                raise paramiko.SSHException("channel closed before the command finished")
            else:
                select.select([chan], [], [], 0.2)
        return chan.recv_exit_status(), bytes(out), bytes(err)


class _ClientWithPolicy(paramiko.SSHClient):
    def __init__(self, policy: paramiko.MissingHostKeyPolicy):
        super().__init__()
        self.set_missing_host_key_policy(policy)


class SessionParamikoBackend(VerifiedParamikoBackend):
    """testinfra's `paramiko` during a cisaudit session: the `host` fixture and testinfra.get_host."""

    def __init__(self, hostspec: str, **kwargs: Any):
        super().__init__(hostspec, **_session_kwargs(kwargs))


def describe_paramiko_error(exc: BaseException) -> str | None:
    """One line for paramiko's own failures (transport.describe_error); None for any other."""
    if isinstance(exc, paramiko.BadHostKeyException):
        return (
            f"host key mismatch for {exc.hostname}: got {exc.key.get_name()} "
            f"{exc.key.fingerprint}, known_hosts has another (refused)"
        )
    if isinstance(exc, paramiko.AuthenticationException):
        return f"authentication failed: {exc}"
    if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
        return f"{exc} (refused; pass --known-hosts FILE, or --accept-new-host-keys for throwaway hosts)"
    if isinstance(exc, paramiko.SSHException) and not isinstance(exc, TimeoutError):  # a timeout says so
        return f"cannot connect: {exc}"
    return None
