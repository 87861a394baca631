"""Host specs, checked against a strict grammar before any backend sees them.

    local://[?OPTS] | ssm://i-HEX | ssh://[USER@]HOST[:PORT][?OPTS] | paramiko://... | bare HOST

HOST is a DNS name, an IPv4 literal or a [IPv6] literal; USER is [A-Za-z0-9._-] and does not
start with '-'. Anything else is refused: a name or user starting with '-' reaches OpenSSH as an
option (`-oProxyCommand=...`), and the spec becomes the test id, which pytest-html writes into
the page unescaped. Passwords (`user:pw@host`) are refused: they would show in `ps`, on the
runner's command line and in every report; use keys. The spec's `display` form is what test
ids, reports and messages show: the identity file's path is replaced by ***.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass

INSTANCE_ID = re.compile(r"m?i-(?:[0-9a-f]{8}|[0-9a-f]{17})")
_USER = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]{0,63}")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_DOTTED_NUMBERS = re.compile(r"[0-9.]+")
_PATH = re.compile(r"[^\x00-\x1f\x7f]{1,4096}")
_IDENTITY_VALUE = re.compile(r"(ssh_identity_file=)[^&,]*")
IDENTITY_OPTION = "--ssh-identity-file"
# Query options testinfra would otherwise take from a spec (timeout, controlpersist, ...) are refused.
_OPTIONS = {"sudo": re.compile("true|false"), "sudo_user": _USER, "ssh_config": _PATH, "ssh_identity_file": _PATH}
_REMOTE_SCHEMES = ("ssh", "paramiko")


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
    where, _, query = rest.partition("?")
    if scheme == "ssm":
        if not INSTANCE_ID.fullmatch(rest):
            raise _error(text, "ssm:// needs a managed instance id like i-0123456789abcdef0")
    elif scheme == "local":
        if where:
            raise _error(text, "local:// takes no host")
        _check_options(text, query)
    elif scheme in _REMOTE_SCHEMES:
        _check_remote(text, where)
        _check_options(text, query)
    else:
        raise _error(text, "unsupported scheme (use local, ssh, paramiko, ssm, e.g. paramiko://root@host:22)")
    return HostSpec(spec, redact(spec))


def _check_remote(text: str, where: str) -> None:
    user, at, hostport = where.rpartition("@")
    if at and ":" in user:
        raise _error(
            text,
            "passwords in host specs are refused (ps, reports and logs would show them); "
            "use an SSH key: ?ssh_identity_file=FILE, --ssh-identity-file or an agent",
        )
    if at and not _USER.fullmatch(user):
        raise _error(text, "user must be [A-Za-z0-9._-] and must not start with '-'")
    if hostport.startswith("["):
        host, bracket, after = hostport[1:].partition("]")
        if not bracket or not _is_ip(host, ipaddress.IPv6Address) or (after and not after.startswith(":")):
            raise _error(text, "not an [IPv6] literal")
        colon, port = after[:1], after[1:]
    else:
        host, colon, port = hostport.partition(":")
        if not _is_host_name(host):
            raise _error(text, "host must be a DNS name, an IPv4 literal or an [IPv6] literal")
    if colon and not port:
        raise _error(text, "empty port")
    if port and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise _error(text, "port must be 1-65535")


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


def _check_options(text: str, query: str) -> None:
    if not query:
        return
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise _error(text, "malformed ?options") from None
    keys = [key for key, _ in pairs]
    for key, value in pairs:
        if key not in _OPTIONS:
            raise _error(text, f"unknown option {key!r} (known: {', '.join(sorted(_OPTIONS))})")
        if keys.count(key) > 1 or not _OPTIONS[key].fullmatch(value):
            raise _error(text, f"bad value for option {key}")


def _error(text: str, why: str) -> SpecError:
    shown = redact(text.strip())
    if len(shown) > 120:
        shown = shown[:120] + "..."
    return SpecError(f"bad host spec {shown!r}: {why}")
