"""Connections to hosts: testinfra's backends, made safe by default.

testinfra's paramiko backend never loads known_hosts, has no per-command timeout and
deadlocks on large stderr (docs/kernel-behaviour.md); the backends here fix that. The suite opens hosts
through `open_host`, which picks them from its own table, so testinfra's registry keeps its meaning for a
user's own testinfra tests in the same run; only the new name `ssm` is added to it.
"""

from __future__ import annotations

import importlib
import os
import select
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import testinfra
import testinfra.backend
import testinfra.host
from testinfra.backend import base
from testinfra.backend.docker import DockerBackend
from testinfra.backend.local import LocalBackend
from testinfra.backend.ssh import SafeSshBackend, SshBackend

from cisaudit.host.hostspec import TRANSPORTS, SpecError, parse_spec, transport_of

MIB = 1 << 20
DEFAULT_MAX_OUTPUT_BYTES = 32 * MIB


class HostError(RuntimeError):
    """A host could not be reached or used; the message is one line for the report."""


@dataclass(frozen=True)
class ConnectOptions:
    known_hosts: str | None = None  # extra known_hosts file (system and user files always load)
    accept_new_host_keys: bool = False  # throwaway golden-image builds only
    connect_timeout: float = 10
    command_timeout: float = 300
    sudo: bool = False
    sudo_user: str | None = None
    ssh_config: str | None = None
    ssh_identity_file: str | None = None
    ssm_region: str | None = None
    aws_profile: str | None = None
    ssm_s3_bucket: str | None = None
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES  # per command, stdout and stderr together


class OutputLimit:
    """A cap on the bytes one command may send back (stdout and stderr together)."""

    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES

    def check_output_size(self, size: int) -> None:
        if size > self.max_output_bytes:
            raise HostError(f"command output over the limit of {self.max_output_bytes} bytes (--max-output-mb)")


class _TimedLocalRun(OutputLimit):
    """`run_local` with a deadline and an output cap: testinfra's waits forever on a hung
    command and reads all a command prints."""

    command_timeout: float = 300

    def run_local(self, command: str, *args: str) -> base.CommandResult:
        command = self.quote(command, *args)  # type: ignore[attr-defined]
        cmd = self.encode(command)  # type: ignore[attr-defined]
        with subprocess.Popen(
            cmd,
            shell=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        ) as proc:
            try:
                stdout, stderr = self._read_bounded(proc)
            except HostError:
                os.killpg(proc.pid, 9)
                raise
            proc.wait()
        return self.result(proc.returncode, cmd, stdout, stderr)  # type: ignore[attr-defined]

    def _read_bounded(self, proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
        deadline = time.monotonic() + self.command_timeout
        assert proc.stdout is not None and proc.stderr is not None
        streams = {proc.stdout: bytearray(), proc.stderr: bytearray()}
        open_streams = list(streams)
        while open_streams:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HostError(f"command timed out after {self.command_timeout:g} s")
            ready, _, _ = select.select(open_streams, [], [], remaining)
            for stream in ready:
                data = os.read(stream.fileno(), 65536)
                if not data:
                    open_streams.remove(stream)
                streams[stream] += data
            self.check_output_size(sum(map(len, streams.values())))
        return bytes(streams[proc.stdout]), bytes(streams[proc.stderr])


class TimedLocalBackend(_TimedLocalRun, LocalBackend):
    def __init__(
        self, *args: Any, command_timeout: float = 300, max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES, **kwargs: Any
    ):
        self.command_timeout = float(command_timeout)
        self.max_output_bytes = int(max_output_bytes)
        super().__init__(*args, **kwargs)


class TimedDockerBackend(_TimedLocalRun, DockerBackend):
    """`docker exec CONTAINER /bin/sh -c ...` with a deadline and an output cap. What it can see
    (the host kernel's rules, the container's files) is its TRANSPORTS entry in hostspec.py."""

    def __init__(
        self, name: str, command_timeout: float = 300, max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES, **kwargs: Any
    ):
        self.command_timeout = float(command_timeout)
        self.max_output_bytes = int(max_output_bytes)
        super().__init__(name, **kwargs)


def ssh_config_word(path: str) -> str:
    """One word of an ssh_config value: ssh splits a UserKnownHostsFile value on blanks and
    expands %-tokens in it, so `/a b` would be two files; quoted, escaped, %% for %."""
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


class VerifiedSshBackend(_TimedLocalRun, SshBackend):
    """The OpenSSH client in batch mode with strict host key checking (unless told otherwise)."""

    def __init__(
        self,
        hostspec: str,
        known_hosts: str | None = None,
        accept_new_host_keys: bool = False,
        command_timeout: float = 300,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        **kwargs: Any,
    ):
        self.command_timeout = float(command_timeout)
        self.max_output_bytes = int(max_output_bytes)
        checking = "accept-new" if accept_new_host_keys else "yes"
        extra = f"-o BatchMode=yes -o StrictHostKeyChecking={checking}"
        if known_hosts:  # besides the user's file, as for paramiko; testinfra pastes this into a shell line
            extra += " -o " + shlex.quote(f"UserKnownHostsFile={ssh_config_word(known_hosts)} ~/.ssh/known_hosts")
        if kwargs.get("ssh_extra_args"):  # a caller's own: after ours, and ssh takes an option's first value
            extra += " " + kwargs.pop("ssh_extra_args")
        kwargs.pop("ssh_extra_args", None)
        super().__init__(hostspec, ssh_extra_args=extra, **kwargs)

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        try:
            result = super().run(command, *args, **kwargs)
        except RuntimeError as exc:  # ssh exit 255: connection, auth or host key failure
            stderr = getattr(exc.args[0], "stderr", str(exc)) if exc.args else str(exc)
            raise HostError(_ssh_reason(stderr) or "ssh failed (exit 255)") from None
        return result


def _last_line(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _ssh_reason(stderr: str) -> str:
    """ssh's failure in one line: for a refused host key the line saying why, else the last."""
    for line in stderr.splitlines():
        if "has changed and you have requested strict checking" in line:
            return f"host key mismatch: {line.strip()} (refused)"
        if "you have requested strict checking" in line:
            return f"{line.strip()} (refused; pass --known-hosts FILE, or --accept-new-host-keys for throwaway hosts)"
    return _last_line(stderr)


def describe_error(exc: BaseException) -> str:
    """One line saying what went wrong with a host, without secrets."""
    if isinstance(exc, HostError):
        return str(exc)
    # Only a loaded paramiko raises its exceptions: a local:// or ssh:// run never imports it.
    paramiko_error = sys.modules.get("cisaudit.host.paramiko_backend")
    described: str | None = paramiko_error.describe_paramiko_error(exc) if paramiko_error else None
    if described:
        return described
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"connection timed out: {exc}"
    if isinstance(exc, OSError):
        return f"cannot connect: {exc}"
    return f"{type(exc).__name__}: {exc}"


def normalize_spec(spec: str) -> str:
    """The checked, full host spec (cisaudit.host.hostspec), or HostError."""
    try:
        return parse_spec(spec).spec
    except SpecError as exc:
        raise HostError(str(exc)) from None


VERIFIED_BACKENDS: dict[str, str] = {scheme: t.backend for scheme, t in TRANSPORTS.items()}


def _backend_class(scheme: str) -> type[base.BaseBackend]:
    module, name = VERIFIED_BACKENDS[scheme].rsplit(".", 1)
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def open_host(spec: str, options: ConnectOptions) -> testinfra.host.Host:
    """A testinfra Host on the suite's verified backend for spec (its TRANSPORTS entry); it
    connects on the first command."""
    spec = normalize_spec(spec)
    transport = transport_of(spec)
    name, spec_kwargs = testinfra.backend.parse_hostspec(spec)
    kwargs = {**transport.connect(options), **spec_kwargs}  # what the spec says wins, as in testinfra.get_host
    backend = _backend_class(transport.scheme)(name, **kwargs)
    host = testinfra.host.Host(backend)
    backend.set_host(host)
    return host


class _SessionTrust:
    """The trust decision of the pytest session that runs (install_session_trust)."""

    options = ConnectOptions()
    replaced: dict[str, str] = {}  # testinfra name -> its own class, while a session runs


def _session_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The session's host-key trust, timeouts and output cap; what the caller or spec says wins."""
    options = _SessionTrust.options
    defaults = {
        "known_hosts": options.known_hosts,
        "accept_new_host_keys": options.accept_new_host_keys,
        "timeout": int(options.connect_timeout),
        "command_timeout": options.command_timeout,
        "max_output_bytes": options.max_output_bytes,
    }
    return defaults | kwargs


class SessionSshBackend(VerifiedSshBackend):
    """testinfra's `ssh` during a cisaudit session."""

    def __init__(self, hostspec: str, **kwargs: Any):
        super().__init__(hostspec, **_session_kwargs(kwargs))


class SessionSafeSshBackend(SessionSshBackend, SafeSshBackend):
    """testinfra's `safe-ssh` (its framed output) during a cisaudit session."""


SESSION_BACKENDS = {
    "paramiko": "cisaudit.host.paramiko_backend.SessionParamikoBackend",
    "ssh": f"{__name__}.SessionSshBackend",
    "safe-ssh": f"{__name__}.SessionSafeSshBackend",
}


def install_session_trust(options: ConnectOptions) -> None:
    """One trust decision for every connection of the session: testinfra's SSH names resolve to
    verified backends that apply options (known_hosts, accept-new, timeouts, output cap), so a
    user's own tests (the `host` fixture, testinfra.get_host) refuse what the suite refuses.
    remove_session_trust puts testinfra's own classes back."""
    _SessionTrust.options = options
    for name, path in SESSION_BACKENDS.items():
        _SessionTrust.replaced.setdefault(name, testinfra.backend.BACKENDS[name])
        testinfra.backend.BACKENDS[name] = path


def remove_session_trust() -> None:
    testinfra.backend.BACKENDS.update(_SessionTrust.replaced)
    _SessionTrust.replaced.clear()
    _SessionTrust.options = ConnectOptions()


# A new name: testinfra's own `local`, `ssh` and `paramiko` stay as testinfra defines them outside a session.
testinfra.backend.BACKENDS.setdefault("ssm", VERIFIED_BACKENDS["ssm"])
