"""The batched probe: one remote command per host, parsed once into a Snapshot."""

from __future__ import annotations

import secrets
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from cisaudit.catalogue import controls

SCRIPT = Path(__file__).with_name("probe.sh")


class ProbeError(RuntimeError):
    """The probe's output was incomplete or could not be read."""


@dataclass(frozen=True)
class PathInfo:
    path: str
    kind: str  # file, dir, symlink, socket, absent
    target: str  # readlink -f: where it resolves to ("" if its parent is missing)

    @property
    def exists(self) -> bool:
        return self.kind != "absent"


@dataclass
class Snapshot:
    """What one host looked like at probe time. Built only by parse_probe."""

    uid: int | None = None
    arch: str = ""
    auditctl: str | None = None
    status_rc: int | None = None
    status_text: str = ""
    listing_rc: int | None = None
    listing_text: str = ""
    auditd: str | None = None
    awk: str = ""  # which awk augenrules gets (mawk and gawk read its patterns differently)
    auditd_running: bool = False
    systemd: bool = False
    auditd_unit: str = ""
    units: dict[str, str] = field(default_factory=dict)
    rules_d: list[tuple[str, str]] = field(default_factory=list)  # (path, text) in loader order
    unreadable: list[str] = field(default_factory=list)
    audit_rules: str | None = None
    daemon_json: str | None = None
    containerd_config: str | None = None
    binaries: dict[str, str] = field(default_factory=dict)
    paths: dict[str, PathInfo] = field(default_factory=dict)

    @property
    def status(self) -> dict[str, str]:
        """`auditctl -s` as a dict (enabled, failure, pid, ...)."""
        pairs = (line.split(None, 1) for line in self.status_text.splitlines())
        return {p[0]: p[1] if len(p) > 1 else "" for p in pairs if p}


def _unit_names() -> list[str]:
    return sorted({c.locate.split(":", 1)[1] for c in controls() if c.locate.startswith("unit:")})


def _binary_names() -> list[str]:
    return sorted({c.locate.split(":", 1)[1] for c in controls() if c.locate.startswith("binary:")})


def render_script(extra_paths: list[str] | None = None) -> tuple[str, str]:
    """The probe command and the nonce that frames its sections."""
    nonce = "@@cisaudit-" + secrets.token_hex(8)
    paths = sorted({c.path for c in controls()} | set(extra_paths or ()))
    header = "".join(f"{name}={shlex.quote(value)}\n" for name, value in (
        ("M", nonce), ("BINARIES", " ".join(_binary_names())),
        ("UNITS", " ".join(_unit_names())), ("PATHS", " ".join(paths))))
    return header + SCRIPT.read_text(), nonce


def render_stat_script(paths: list[str]) -> str:
    """A follow-up for paths the probe could not know in advance (rare: odd config quoting)."""
    body = SCRIPT.read_text()
    stat_fn = body[body.index("stat_paths() {"):body.index("\nsec uid")]
    return stat_fn + "\nstat_paths " + " ".join(shlex.quote(p) for p in paths) + "\n"


def parse_stat_lines(text: str) -> dict[str, PathInfo]:
    infos = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            infos[parts[0]] = PathInfo(*parts)
    return infos


def _sections(output: str, nonce: str) -> list[tuple[str, str, str]]:
    sections: list[tuple[str, str, str]] = []
    name = arg = None
    body: list[str] = []
    for line in output.split("\n"):
        if line.startswith(nonce + " "):
            if name is not None:
                sections.append((name, arg or "", "\n".join(body)))
            name, _, arg = line[len(nonce) + 1:].partition(" ")
            body = []
        elif name is not None:
            body.append(line)
    if name is not None:
        sections.append((name, arg or "", "\n".join(body)))
    # Splitting on "\n" already drops the one newline `end` printed after each body.
    return sections


def parse_probe(output: str, nonce: str) -> Snapshot:
    sections = _sections(output, nonce)
    if not sections or sections[-1][0] != "done":
        raise ProbeError("probe output is incomplete (connection lost or output truncated)")
    snap = Snapshot()
    unit_parts: list[str] = []
    order: list[str] = []
    files: dict[str, str] = {}
    for name, arg, body in sections:
        text = body.strip()
        if name == "uid":
            snap.uid = int(text) if text.isdigit() else None
        elif name == "arch":
            snap.arch = text
        elif name == "auditctl":
            snap.auditctl = text or None
        elif name == "auditctl-s":
            snap.status_rc, snap.status_text = int(arg), body
        elif name == "auditctl-l":
            snap.listing_rc, snap.listing_text = int(arg), body
        elif name == "auditd":
            snap.auditd = text or None
        elif name == "awk":
            snap.awk = text
        elif name == "auditd-pid":
            snap.auditd_running = bool(text)
        elif name == "systemd":
            snap.systemd = text == "running"
        elif name == "auditd-unit":
            unit_parts.append(body if arg == "0" else "")
        elif name == "auditd-unit-file":
            unit_parts.append(body)
        elif name == "unit":
            if text:
                snap.units[arg] = text.splitlines()[0]
        elif name == "units":  # systemctl show: one FragmentPath line per unit, in UNITS order
            snap.units.update((u, f) for u, f in zip(_unit_names(), body.split("\n"), strict=False) if f)
        elif name == "rules-d-order":
            order = text.splitlines()
        elif name == "rules-file":
            files[arg] = body
        elif name.endswith("-error"):
            snap.unreadable.append(arg)
        elif name == "audit-rules":
            snap.audit_rules = body
        elif name == "daemon-json":
            snap.daemon_json = body
        elif name == "containerd-config":
            snap.containerd_config = body
        elif name == "binary":
            if text:
                snap.binaries[arg] = text.splitlines()[0]
        elif name == "paths":
            snap.paths.update(parse_stat_lines(body))
    snap.auditd_unit = "\n".join(unit_parts)
    by_name = {Path(p).name: p for p in files}
    ordered = [by_name[n] for n in order if n in by_name]
    ordered += sorted(set(files) - set(ordered))
    snap.rules_d = [(p, files[p]) for p in ordered]
    return snap
