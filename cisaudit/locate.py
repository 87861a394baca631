"""Where each control's path really is on a host (pure: reads only the Snapshot)."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field

from cisaudit.catalogue import Control
from cisaudit.probe import PathInfo, Snapshot

DEFAULT_DATA_ROOT = "/var/lib/docker"


@dataclass(frozen=True)
class Target:
    """The path a control audits on one host, and every spelling of it a rule may use."""

    control: Control
    path: str
    how: str  # how the path was found, for the report
    info: PathInfo | None  # None: the probe did not stat it (see unknown_paths)
    aliases: dict[str, str] = field(default_factory=dict)  # path -> how it relates to `path`
    problems: tuple[str, ...] = ()  # config that could not be read

    @property
    def exists(self) -> bool:
        return bool(self.info and self.info.exists)


def _data_root(snap: Snapshot) -> tuple[str, str, tuple[str, ...]]:
    if snap.daemon_json is None:
        return DEFAULT_DATA_ROOT, "default data-root (no /etc/docker/daemon.json)", ()
    try:
        config = json.loads(snap.daemon_json or "{}")
    except (ValueError, RecursionError) as exc:  # also a 5000-digit number or `[` x 100000
        return DEFAULT_DATA_ROOT, "default data-root", (f"/etc/docker/daemon.json is not valid JSON: "
                                                        f"{type(exc).__name__}: {str(exc)[:200]}",)
    root = config.get("data-root") if isinstance(config, dict) else None
    if isinstance(root, str) and root.startswith("/"):
        return root.rstrip("/") or "/", '"data-root" in /etc/docker/daemon.json', ()
    return DEFAULT_DATA_ROOT, "default data-root (not set in /etc/docker/daemon.json)", ()


def _containerd_socket(snap: Snapshot, default: str) -> tuple[str, str, tuple[str, ...]]:
    if snap.containerd_config is None:
        return default, "default address (no /etc/containerd/config.toml)", ()
    try:
        config = tomllib.loads(snap.containerd_config)
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError is a ValueError; deep nesting recurses
        return default, "default address", (f"/etc/containerd/config.toml is not valid TOML: "
                                            f"{type(exc).__name__}: {str(exc)[:200]}",)
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
    return Target(control, path, how, info, aliases, problems)


def unknown_paths(targets: list[Target]) -> list[str]:
    """Paths the probe did not stat (config named something it could not foresee)."""
    return sorted({t.path for t in targets if t.info is None})
