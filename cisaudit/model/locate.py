"""Where each control's path really is on a host (pure: reads only the Snapshot)."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from typing import Any

from cisaudit.model.catalogue import Control
from cisaudit.model.snapshot import PathInfo, Snapshot

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


def _locate(control: Control, snap: Snapshot) -> tuple[str, str, tuple[str, ...]]:
    kind, _, name = control.locate.partition(":")
    if kind == "file":
        return control.path, "the benchmark's path", ()
    if kind == "data-root":
        return _data_root(snap)
    if kind == "containerd-socket":
        return _containerd_socket(snap, control.path)
    if kind == "socket":
        listen = _listen_stream(snap.socket_units.get(name, ""))
        if listen:
            return listen, f"ListenStream= of {name}", ()
        return control.path, f"default (no ListenStream= path in {name})", ()
    if kind == "unit":
        fragment = snap.units.get(name)
        if fragment:
            how = "systemd's FragmentPath" if snap.systemd else "first unit directory holding it"
            return fragment, how, ()
        return control.path, f"{name} not found by systemd", ()
    if kind == "binary":
        cis = snap.paths.get(control.path)
        if cis and cis.exists:
            return control.path, "the benchmark's path", ()
        found = snap.binaries.get(name)
        if found:
            return found, f"`command -v {name}` (the benchmark's {control.path} is absent)", ()
        return control.path, "the benchmark's path", ()
    raise ValueError(f"{control.id}: unknown locate {control.locate!r}")


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
