"""Host specs, checked against a strict grammar before any backend sees them, and the transports
(TRANSPORTS: one entry per scheme, the one place a scheme is named).

    local://[?OPTS] | ssm://i-HEX | ssh://[USER@]HOST[:PORT][?OPTS] | paramiko://... | bare HOST
    | docker://[USER@]CONTAINER

HOST is a DNS name, an IPv4 literal or a [IPv6] literal; USER is [A-Za-z0-9._-] and does not
start with '-'. Anything else is refused: a name or user starting with '-' reaches OpenSSH as an
option (`-oProxyCommand=...`), and the spec becomes the test id, which pytest-html writes into
the page unescaped. Passwords (`user:pw@host`) are refused: they would show in `ps`, on the
runner's command line and in every report; use keys. The spec's `display` form is what test
ids, reports and messages show: the identity file's path is replaced by ***. CONTAINER is a Docker
name or id ([A-Za-z0-9][A-Za-z0-9_.-]*): one starting with '-' would reach the docker client as an
option (`--privileged`), and markup would reach the HTML report as the test id does.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # transport.py opens hosts through TRANSPORTS
    from cisaudit.host.transport import ConnectOptions

INSTANCE_ID = re.compile(r"m?i-(?:[0-9a-f]{8}|[0-9a-f]{17})")
_USER = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]{0,63}")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_DOTTED_NUMBERS = re.compile(r"[0-9.]+")
_PATH = re.compile(r"[^\x00-\x1f\x7f]{1,4096}")
_CONTAINER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_IDENTITY_VALUE = re.compile(r"(ssh_identity_file=)[^&,]*")
IDENTITY_OPTION = "--ssh-identity-file"
# Query options, per scheme; any other (testinfra's timeout, controlpersist, ...) is refused.
_SUDO = {"sudo": re.compile("true|false"), "sudo_user": _USER}
_SSH_OPTIONS = {**_SUDO, "ssh_config": _PATH, "ssh_identity_file": _PATH}


class SpecError(ValueError):
    """A host spec outside the grammar; the message names the spec redacted."""


@dataclass(frozen=True)
class HostSpec:
    spec: str  # what the backend connects with
    display: str  # what test ids, reports and messages show


def redact(text: str) -> str:
    """text with any password and identity-file path replaced by ***, for messages about bad specs."""
    head, sep, query = text.partition("?")
    scheme, sep_s, rest = head.rpartition("://")
    userinfo, at, hostport = rest.rpartition("@")
    if ":" in userinfo:
        rest = userinfo.split(":", 1)[0] + ":***" + at + hostport
    return scheme + sep_s + rest + sep + _IDENTITY_VALUE.sub(r"\1***", query)


def redact_args(args: Sequence[str]) -> list[str]:
    """A command line as reports show it: the identity file's path, given to `--ssh-identity-file`
    or in a spec's `?ssh_identity_file=`, replaced by ***."""
    shown: list[str] = []
    for arg in args:
        option, eq, _ = arg.partition("=")
        if shown and shown[-1] == IDENTITY_OPTION:
            shown.append("***")
        elif option == IDENTITY_OPTION and eq:
            shown.append(f"{IDENTITY_OPTION}=***")
        else:
            shown.append(_IDENTITY_VALUE.sub(r"\1***", arg))
    return shown


def scrub(message: str, spec: str, identity_file: str | None = None) -> str:
    """message with the spec's identity-file path (and identity_file) replaced by ***."""
    query = urllib.parse.parse_qs(spec.partition("?")[2])
    for path in [*query.get("ssh_identity_file", []), identity_file]:
        if path:
            message = message.replace(path, "***")
    return message


def parse_spec(text: str) -> HostSpec:
    """The checked spec (a bare host means paramiko://host, as in testinfra), or SpecError."""
    spec = text.strip()
    if "://" not in spec:
        spec = "paramiko://" + spec
    scheme, _, rest = spec.partition("://")
    transport = TRANSPORTS.get(scheme)
    if transport is None:
        raise _error(text, f"unsupported scheme (use {', '.join(TRANSPORTS)}, e.g. paramiko://root@host:22)")
    where, _, query = rest.partition("?") if transport.options else (rest, "", "")
    why = transport.check(where)
    if why:
        raise _error(text, why)
    _check_options(text, query, transport.options)
    return HostSpec(spec, redact(spec))


def _check_instance(where: str) -> str:
    return "" if INSTANCE_ID.fullmatch(where) else "ssm:// needs a managed instance id like i-0123456789abcdef0"


def _check_local(where: str) -> str:
    return "local:// takes no host" if where else ""


def _check_container(where: str) -> str:
    user, at, container = where.rpartition("@")
    if at and not _USER.fullmatch(user):
        return "user must be [A-Za-z0-9._-] and must not start with '-'"
    if not _CONTAINER.fullmatch(container):
        return "container must be a Docker name or id: [A-Za-z0-9][A-Za-z0-9_.-]*"
    return ""


def _check_remote(where: str) -> str:
    user, at, hostport = where.rpartition("@")
    if at and ":" in user:
        return (
            "passwords in host specs are refused (ps, reports and logs would show them); "
            "use an SSH key: ?ssh_identity_file=FILE, --ssh-identity-file or an agent"
        )
    if at and not _USER.fullmatch(user):
        return "user must be [A-Za-z0-9._-] and must not start with '-'"
    if hostport.startswith("["):
        host, bracket, after = hostport[1:].partition("]")
        if not bracket or not _is_ip(host, ipaddress.IPv6Address) or (after and not after.startswith(":")):
            return "not an [IPv6] literal"
        colon, port = after[:1], after[1:]
    else:
        host, colon, port = hostport.partition(":")
        if not _is_host_name(host):
            return "host must be a DNS name, an IPv4 literal or an [IPv6] literal"
    if colon and not port:
        return "empty port"
    if port and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        return "port must be 1-65535"
    return ""


def _is_host_name(host: str) -> bool:
    if _DOTTED_NUMBERS.fullmatch(host):  # looks numeric: must be a real IPv4 address
        return _is_ip(host, ipaddress.IPv4Address)
    labels = host.removesuffix(".").split(".")
    return len(host) <= 253 and all(_LABEL.fullmatch(label) for label in labels)


def _is_ip(text: str, kind: type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address]) -> bool:
    try:
        kind(text)
    except ValueError:
        return False
    return True


def _check_options(text: str, query: str, known: Mapping[str, re.Pattern[str]]) -> None:
    if not query:
        return
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise _error(text, "malformed ?options") from None
    keys = [key for key, _ in pairs]
    for key, value in pairs:
        if key not in known:
            raise _error(text, f"unknown option {key!r} (known: {', '.join(sorted(known)) or 'none'})")
        if keys.count(key) > 1 or not known[key].fullmatch(value):
            raise _error(text, f"bad value for option {key}")


class Capability(StrEnum):
    """What a transport can do, beyond running one command on the host."""

    FLEET_API = "fleet-api"  # one API call probes many hosts (plugin/fleet_audit.py, host/ssm/fleet.py)
    HOST_FILES = "host-files"  # its file reads are the host's own (persisted rules, the loader, auditd's logs)
    REMEDIATE = "remediate"  # --remediate and --backout may change the host through it


class RebootHow(StrEnum):
    """How --reboot-proof reboots a host of the transport (host/reboot.py, scripts/reboot.sh)."""

    SYSTEMCTL = "systemctl"  # `systemctl reboot` through the connection
    EXIT_194 = "exit194"  # SSM: the command exits 194 and the agent reboots the instance


_EVERYTHING = frozenset({Capability.HOST_FILES, Capability.REMEDIATE})


def _common(options: ConnectOptions) -> dict[str, Any]:
    return {
        "sudo": options.sudo,
        "sudo_user": options.sudo_user,
        "command_timeout": options.command_timeout,
        "max_output_bytes": options.max_output_bytes,
    }


def _ssh(options: ConnectOptions) -> dict[str, Any]:
    return _common(options) | {
        "known_hosts": options.known_hosts,
        "timeout": int(options.connect_timeout),
        "accept_new_host_keys": options.accept_new_host_keys,
        "ssh_config": options.ssh_config,
        "ssh_identity_file": options.ssh_identity_file,
    }


def _ssm(options: ConnectOptions) -> dict[str, Any]:
    return {
        "sudo": False,
        "region": options.ssm_region,
        "profile": options.aws_profile,
        "s3_bucket": options.ssm_s3_bucket,
        "execution_timeout": options.command_timeout,
        "max_output_bytes": options.max_output_bytes,
    }


@dataclass(frozen=True)
class Transport:
    """One scheme: its grammar, its ?options, its backend and what it can do. transport.open_host
    builds the backend from this entry alone; nothing else names a scheme."""

    scheme: str
    form: str  # the grammar, for --help and messages
    check: Callable[[str], str]  # the part after `scheme://` -> why it is refused ("" when it is not)
    options: Mapping[str, re.Pattern[str]]  # the ?options it takes (none: the query is part of the check)
    backend: str  # module.Class of its testinfra backend (host/transport.py); built as Class(ADDRESS, **connect)
    connect: Callable[[ConnectOptions], dict[str, Any]]  # the run's options as the backend's keyword arguments
    capabilities: frozenset[Capability] = _EVERYTHING
    blind: str = ""  # without HOST_FILES: why checks that read the host's files are not judged
    reboot: RebootHow | None = None  # --reboot-proof: how to reboot its hosts; None: it cannot

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities


_BACKENDS = "cisaudit.host.transport"
TRANSPORTS: dict[str, Transport] = {
    t.scheme: t
    for t in (
        Transport("local", "local://", _check_local, _SUDO, f"{_BACKENDS}.TimedLocalBackend", _common),
        Transport(
            "ssh",
            "ssh://[USER@]HOST[:PORT]",
            _check_remote,
            _SSH_OPTIONS,
            f"{_BACKENDS}.VerifiedSshBackend",
            _ssh,
            reboot=RebootHow.SYSTEMCTL,
        ),
        Transport(
            "paramiko",
            "paramiko://[USER@]HOST[:PORT]",
            _check_remote,
            _SSH_OPTIONS,
            "cisaudit.host.paramiko_backend.VerifiedParamikoBackend",
            _ssh,
            reboot=RebootHow.SYSTEMCTL,
        ),
        Transport(
            "ssm",
            "ssm://i-0123456789abcdef0",
            _check_instance,
            {},
            "cisaudit.host.ssm.backend.SsmBackend",
            _ssm,
            _EVERYTHING | {Capability.FLEET_API},
            reboot=RebootHow.EXIT_194,
        ),
        Transport(
            "docker",
            "docker://[USER@]CONTAINER",
            _check_container,
            {},
            f"{_BACKENDS}.TimedDockerBackend",
            _common,
            frozenset(),
            "docker:// runs in a container: auditctl shows the host kernel's rules, but the files "
            "it reads (rules files, the boot-time loader, auditd's logs) are the container's",
        ),
    )
}


def transport_of(spec: str) -> Transport:
    """The transport of a checked spec (parse_spec)."""
    return TRANSPORTS[spec.partition("://")[0]]


def address(spec: str) -> str:
    """What follows `scheme://` in a checked spec (an ssm:// host's instance id)."""
    return spec.partition("://")[2]


def _error(text: str, why: str) -> SpecError:
    shown = redact(text.strip())
    if len(shown) > 120:
        shown = shown[:120] + "..."
    return SpecError(f"bad host spec {shown!r}: {why}")
