"""Where each control's path really is on a host (pure: reads only the Snapshot)."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from cisaudit.model.snapshot import PathInfo, Snapshot

if TYPE_CHECKING:  # the catalogue checks its controls against KINDS when it loads
    from cisaudit.model.catalogue import Control

DEFAULT_DATA_ROOT = "/var/lib/docker"
# systemd's unit search path, in its order (the probe reads it as UNIT_DIRS when no manager runs).
UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")


@dataclass(frozen=True)
class Target:
    """The path a control audits on one host, and every spelling of it a rule may use."""

    control: Control
    path: str
    how: str  # how the path was found, for the report
    info: PathInfo | None  # None: the probe did not stat it (see unknown_paths)
    aliases: dict[str, str] = field(default_factory=dict)  # path -> how it relates to `path`
    problems: tuple[str, ...] = ()  # config that could not be read
    exclusions: tuple[str, ...] = ()  # directories a `never` rule must exclude first (docs/benchmarks.md)
    unstated: tuple[str, ...] = ()  # exclusions the probe did not stat

    @property
    def exists(self) -> bool:
        return bool(self.info and self.info.exists)


def _daemon_config(snap: Snapshot) -> tuple[dict[str, Any], tuple[str, ...]]:
    if snap.daemon_json is None:
        return {}, ()
    try:
        config = json.loads(snap.daemon_json or "{}")
    except (ValueError, RecursionError) as exc:  # also a 5000-digit number or `[` x 100000
        return {}, (f"/etc/docker/daemon.json is not valid JSON: {type(exc).__name__}: {str(exc)[:200]}",)
    return (config if isinstance(config, dict) else {}), ()


def _flag(args: list[str], name: str) -> str | None:
    """The last value of `--name=V` or `--name V` on dockerd's command line."""
    value = None
    for i, arg in enumerate(args):
        if arg.startswith(name + "="):
            value = arg[len(name) + 1 :]
        elif arg == name and i + 1 < len(args):
            value = args[i + 1]
    return value


def _setting(snap: Snapshot, config: dict[str, Any], key: str) -> tuple[str | None, str]:
    """A dockerd setting from its running command line (`--key`) or daemon.json (dockerd refuses both)."""
    flag = _flag(snap.dockerd_args, "--" + key)
    if flag is not None:
        return flag, f"--{key} of the running dockerd"
    value = config.get(key)
    return (value, f'"{key}" in /etc/docker/daemon.json') if isinstance(value, str) else (None, "")


def _ignored_dockerd(snap: Snapshot) -> str:
    """Evidence: processes named dockerd the probe ignored because they are not root's."""
    if not snap.ignored_dockerd:
        return ""
    who = ", ".join(f"pid {pid} uid {uid or '?'}" for pid, uid in snap.ignored_dockerd)
    return f"; ignored a process named dockerd not run by root ({who})"


def _data_root(snap: Snapshot) -> tuple[str, str, tuple[str, ...]]:
    config, problems = _daemon_config(snap)
    root, how = _setting(snap, config, "data-root")
    ignored = _ignored_dockerd(snap)
    if root and root.startswith("/"):
        return root.rstrip("/") or "/", how + ignored, problems
    if snap.daemon_json is None and not snap.dockerd_args:
        return DEFAULT_DATA_ROOT, "default data-root (no /etc/docker/daemon.json)" + ignored, problems
    return (
        DEFAULT_DATA_ROOT,
        "default data-root (not set in daemon.json or on dockerd's command line)" + ignored,
        problems,
    )


def _first_range(table: str | None, names: set[str]) -> str | None:
    """The start of the first subordinate range of `names` in /etc/subuid or /etc/subgid."""
    for line in (table or "").splitlines():
        fields = line.strip().split(":")
        if len(fields) == 3 and fields[0] in names and fields[1].isascii() and fields[1].isdigit():
            return fields[1]
    return None


def remapped_root(snap: Snapshot, root: str) -> tuple[str, str, tuple[str, ...]]:
    """Where dockerd keeps its data: DATAROOT, or DATAROOT/UID.GID with userns-remap (the first
    subordinate uid and gid of the remap user, "default" being dockremap)."""
    config, _ = _daemon_config(snap)
    remap, how = _setting(snap, config, "userns-remap")
    if not remap:
        return root, "no userns-remap", ()
    user, _, group = remap.partition(":")
    user = "dockremap" if user == "default" else user
    uid = _first_range(snap.subuid, {user})
    gid = _first_range(snap.subgid, {group or user})
    if uid is None or gid is None:
        return root, how, (f"userns-remap {remap!r} ({how}): no range for it in /etc/subuid or /etc/subgid",)
    return f"{root}/{uid}.{gid}", f"userns-remap {remap!r} ({how}): first subordinate uid {uid}, gid {gid}", ()


def _listen_stream(unit_text: str) -> str | None:
    """The last file-system ListenStream= of a socket unit (an empty assignment resets the list)."""
    paths: list[str] = []
    for line in unit_text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name.strip() == "ListenStream":
            value = value.strip()
            paths = [] if not value else [*paths, value] if value.startswith("/") else paths
    return paths[-1] if paths else None


def _containerd_socket(snap: Snapshot, default: str) -> tuple[str, str, tuple[str, ...]]:
    if snap.containerd_config is None:
        return default, "default address (no /etc/containerd/config.toml)", ()
    try:
        config = tomllib.loads(snap.containerd_config)
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError is a ValueError; deep nesting recurses
        return (
            default,
            "default address",
            (f"/etc/containerd/config.toml is not valid TOML: {type(exc).__name__}: {str(exc)[:200]}",),
        )
    grpc = config.get("grpc")
    address = grpc.get("address") if isinstance(grpc, dict) else None
    if isinstance(address, str) and address.startswith("/"):
        return address, "[grpc] address in /etc/containerd/config.toml", ()
    return default, "default address (not set in /etc/containerd/config.toml)", ()


Found = tuple[str, str, tuple[str, ...]]  # (path, how it was found, config that could not be read)


def _file(control: Control, name: str, snap: Snapshot) -> Found:
    return control.path, "the benchmark's path", ()


def _data_root_kind(control: Control, name: str, snap: Snapshot) -> Found:
    return _data_root(snap)


def _containerd_socket_kind(control: Control, name: str, snap: Snapshot) -> Found:
    return _containerd_socket(snap, control.path)


def _socket(control: Control, name: str, snap: Snapshot) -> Found:
    listen = _listen_stream(snap.socket_units.get(name, ""))
    if listen:
        return listen, f"ListenStream= of {name}", ()
    return control.path, f"default (no ListenStream= path in {name})", ()


def _unit(control: Control, name: str, snap: Snapshot) -> Found:
    fragment = snap.units.get(name)
    if fragment:
        how = "systemd's FragmentPath" if snap.systemd else "first unit directory holding it"
        return fragment, how, ()
    return control.path, f"{name} not found by systemd", ()


def _binary(control: Control, name: str, snap: Snapshot) -> Found:
    cis = snap.paths.get(control.path)
    if cis and cis.exists:
        return control.path, "the benchmark's path", ()
    found = snap.binaries.get(name)
    if found:
        return found, f"`command -v {name}` (the benchmark's {control.path} is absent)", ()
    return control.path, "the benchmark's path", ()


class ProbeList(StrEnum):
    """The probe's lists of names (host/scripts/probe.sh reads each as a shell variable)."""

    BINARIES = "BINARIES"  # `command -v NAME` -> Snapshot.binaries
    UNITS = "UNITS"  # the unit file systemd (or the unit directories) has -> Snapshot.units
    SOCKETS = "SOCKETS"  # the socket unit's text, drop-ins included -> Snapshot.socket_units


@dataclass(frozen=True)
class LocateKind:
    """One way a control's path is found on a host: `locate = "NAME"` or `"NAME:ARG"` in a catalogue."""

    name: str
    find: Callable[[Control, str, Snapshot], Found]  # (control, ARG, snapshot) -> Found
    about: str  # for catalogue authors (docs/architecture.md)
    probe_list: ProbeList | None = None  # the kind takes an ARG, which the probe looks up in this list

    @property
    def spelling(self) -> str:
        return f"{self.name}:NAME" if self.probe_list else self.name


# The locate kinds: one entry per kind. The catalogue checks every control's `locate` against this
# table when it loads; the probe's name lists (host/probe.py) and `resolve` read it.
KINDS: dict[str, LocateKind] = {
    kind.name: kind
    for kind in (
        LocateKind(
            "binary", _binary, "the CIS path if it exists, else where `command -v NAME` finds it", ProbeList.BINARIES
        ),
        LocateKind(
            "unit", _unit, "systemd's FragmentPath (unit directories when systemd is not running)", ProbeList.UNITS
        ),
        LocateKind(
            "socket", _socket, "the ListenStream= path of socket unit NAME, default the CIS path", ProbeList.SOCKETS
        ),
        LocateKind(
            "data-root",
            _data_root_kind,
            f'daemon.json "data-root" or dockerd\'s --data-root, default {DEFAULT_DATA_ROOT}',
        ),
        LocateKind(
            "containerd-socket",
            _containerd_socket_kind,
            "/etc/containerd/config.toml [grpc] address, default the CIS path",
        ),
        LocateKind("file", _file, "the CIS path as it is"),
    )
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._+-]{0,254}")  # a command or unit name: one shell word


def parse_locate(text: str) -> tuple[LocateKind, str]:
    """A catalogue's `locate` value as (kind, ARG); anything else is a ValueError naming the valid kinds."""
    name, colon, arg = text.partition(":")
    kind = KINDS.get(name)
    if kind is None or bool(colon) != bool(kind.probe_list) or (colon and not _NAME.fullmatch(arg)):
        valid = ", ".join(k.spelling for k in KINDS.values())
        raise ValueError(f"unknown locate {text!r} (valid: {valid})")
    return kind, arg


def probe_names(catalogue: Iterable[Control], probe_list: ProbeList) -> list[str]:
    """The names the probe looks up in one of its lists, for these controls."""
    found = (parse_locate(c.locate) for c in catalogue)
    return sorted({arg for kind, arg in found if kind.probe_list == probe_list})


def _locate(control: Control, snap: Snapshot) -> Found:
    try:
        kind, arg = parse_locate(control.locate)
    except ValueError as exc:
        raise ValueError(f"{control.id}: {exc}") from None
    return kind.find(control, arg, snap)


def resolve(control: Control, snap: Snapshot) -> Target:
    path, how, problems = _locate(control, snap)
    info = snap.paths.get(path)
    aliases = {path: how}
    real = info.target if info else ""
    if real and real != path:
        aliases[real] = f"what {path} resolves to"
    cis = snap.paths.get(control.path)
    if control.path != path and cis and cis.exists and cis.target and cis.target == real:
        aliases[control.path] = f"the benchmark's path, which resolves to {real}"
    exclusions: tuple[str, ...] = ()
    if control.exclude:
        base, remap_how, remap_problems = remapped_root(snap, path)
        exclusions = tuple(f"{base}/{sub}" for sub in control.exclude)
        problems += remap_problems
        aliases.update({e: f"excluded ({remap_how})" for e in exclusions})
    unstated = tuple(e for e in exclusions if e not in snap.paths)
    return Target(control, path, how, info, aliases, problems, exclusions, unstated)


def unknown_paths(targets: list[Target]) -> list[str]:
    """Paths the probe did not stat (config named something it could not foresee)."""
    return sorted({t.path for t in targets if t.info is None} | {e for t in targets for e in t.unstated})
