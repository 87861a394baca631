"""The batched probe: one remote command per host, parsed once into a Snapshot."""

from __future__ import annotations

import re
import secrets
import shlex
from pathlib import Path

from cisaudit.host.shell import compose
from cisaudit.model.catalogue import Control, controls
from cisaudit.model.kernel import CLASS_SYSCALLS
from cisaudit.model.locate import UNIT_DIRS
from cisaudit.model.snapshot import PathInfo, Snapshot

KERNEL_RULES = Path(__file__).with_name("kernel_rules.py")
_SECRET = re.compile(r"[0-9a-f]{32}")


class ProbeError(RuntimeError):
    """The probe's output was incomplete or could not be read."""


def _names(catalogue: tuple[Control, ...], kind: str) -> list[str]:
    return sorted({c.locate.split(":", 1)[1] for c in catalogue if c.locate.startswith(kind + ":")})


def _unit_names(catalogue: tuple[Control, ...]) -> list[str]:
    return _names(catalogue, "unit")


def _nonce() -> str:
    """The public half of the section marker; the host adds a secret half (probe-lib.sh)."""
    return "@@cisaudit-" + secrets.token_hex(8)


def render_script(
    extra_paths: list[str] | None = None, catalogue: tuple[Control, ...] | None = None
) -> tuple[str, str]:
    """The probe command for a benchmark version's controls, and the nonce that frames its sections."""
    nonce = _nonce()
    values = {"M": nonce, **probe_values(catalogue or controls(), extra_paths)}
    return compose(values, "probe-lib.sh", "probe.sh"), nonce


def probe_values(catalogue: tuple[Control, ...], extra_paths: list[str] | None = None) -> dict[str, str]:
    """The probe's values but its nonce M (the SSM document sets M itself: host/ssm/document.py)."""
    paths = sorted({c.path for c in catalogue} | set(extra_paths or ()))
    excludes = sorted({sub for c in catalogue for sub in c.exclude})
    return {
        "BINARIES": " ".join(_names(catalogue, "binary")),
        "UNITS": " ".join(_unit_names(catalogue)),
        "SOCKETS": " ".join(_names(catalogue, "socket")),
        "EXCLUDES": " ".join(excludes),
        "PATHS": " ".join(paths),
        "KERNEL_RULES_PY": KERNEL_RULES.read_text(),
        "UNIT_DIRS": " ".join(UNIT_DIRS),
        "CLASS_SYSCALLS": " ".join(sorted(CLASS_SYSCALLS)),
    }


def render_stat_script(paths: list[str]) -> tuple[str, str]:
    """A follow-up for paths the probe could not know in advance (a config naming an odd path):
    every path is one quoted argument, so any byte but NUL survives."""
    nonce = _nonce()
    return compose({"M": nonce, "STAT_ARGS": shlex.join(paths)}, "probe-lib.sh", "stat.sh"), nonce


def _records(body: str) -> list[str]:
    """NUL-terminated records (the section's own trailing newline is not part of them)."""
    parts = body.split("\0")
    return parts[:-1]


def parse_stat_sections(paths: str, targets: str, modes: str) -> dict[str, PathInfo]:
    """Pair kinds, readlink -m targets and modes with their paths; a count that does not add
    up (readlink failed on a path: a symlink loop) leaves every target unknown, never shifted."""
    kinds = _records(paths)
    pairs = list(zip(kinds[0::2], kinds[1::2], strict=False))
    resolved = targets.split("\0")
    rc = resolved.pop().strip() if resolved else "1"
    if rc != "0" or len(resolved) != len(pairs):
        resolved = [""] * len(pairs)
    owners: dict[str, str] = {}
    for record in _records(modes):
        fields = record.split(" ", 3)
        if len(fields) == 4:
            owners[fields[3]] = " ".join(fields[:3])
    return {
        path: PathInfo(path, kind, target, owners.get(path, ""))
        for (kind, path), target in zip(pairs, resolved, strict=True)
    }


def parse_stat_output(output: str, nonce: str) -> dict[str, PathInfo]:
    """The follow-up stat command's output."""
    sections = {name: body for name, _, body in _sections(output, nonce)}
    if "done" not in sections:
        raise ProbeError("stat output is incomplete (connection lost or output truncated)")
    return parse_stat_sections(sections.get("paths", ""), sections.get("targets", ""), sections.get("modes", ""))


def _kernel_rules(body: str) -> list[tuple[str, str, str, str]] | None:
    lines = body.split("\n")
    if "done" not in lines:
        return None  # incomplete: believe nothing of it
    rules = []
    for line in lines[: lines.index("done")]:
        fields = line.split(" ")
        if len(fields) != 4:
            return None
        name, action, kind, path = fields
        try:
            rules.append((name, action, kind, "" if path == "-" else bytes.fromhex(path).decode(errors="replace")))
        except ValueError:
            return None
    return rules


def _int(text: str) -> int | None:
    """A decimal the host printed; anything else (a crafted `²`, a 5000-digit number) is None."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 20 else None


def _marker(output: str, nonce: str) -> str:
    """The whole marker: the public nonce and the secret half the host made (probe-lib.sh)."""
    head = output[: len(nonce) + 34]
    secret = head[len(nonce) + 1 : -1]
    if not (head.startswith(nonce + ".") and head.endswith(" ") and _SECRET.fullmatch(secret)):
        raise ProbeError("probe output does not start with its marker (not our probe, or cut short)")
    return head[:-1]


def _unescape(framed: str) -> str:
    """A section's body: every line of it came with a leading "|" (probe-lib.sh `end`)."""
    if not framed:
        return ""
    lines = framed.split("\n")
    trailing = lines[-1] == ""
    if trailing:
        lines.pop()
    if not all(line.startswith("|") for line in lines):
        raise ProbeError("unframed text in probe output (not our probe's framing)")
    return "\n".join(line[1:] for line in lines) + ("\n" if trailing else "")


def _sections(output: str, nonce: str) -> list[tuple[str, str, str]]:
    """(name, arg, body) per section. Only the probe's own marker lines open a section (host text
    is escaped); a section seen twice is forged or corrupt, never an override."""
    marker = _marker(output, nonce)
    sections: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    text = output[len(marker) + 1 :]
    if not text.endswith("\n"):
        raise ProbeError("probe output is incomplete (connection lost or output truncated)")
    # Each section: "NAME ARG\n" + escaped body; `end`'s newline is part of the separator.
    for chunk in text[:-1].split(f"\n{marker} "):
        head, newline, framed = chunk.partition("\n")
        if not newline:
            raise ProbeError("probe output is incomplete (connection lost or output truncated)")
        name, _, arg = head.partition(" ")
        if (name, arg) in seen:
            raise ProbeError(f"probe output repeats section {name!r} {arg[:80]!r} (forged or corrupt)")
        seen.add((name, arg))
        sections.append((name, arg, _unescape(framed)))
    return sections


# -- the kernel filter model's facts (probe.sh's "kernel filter model" section) --
_KERNEL_FACTS = ("syscalls", "lsm", "lsm-label", "selinux")


def _kernel_fact(snap: Snapshot, name: str, arg: str, text: str) -> None:
    if name == "syscalls":
        snap.syscall_tables[arg] = text
    elif name == "lsm":
        snap.lsm_list = text
    elif name == "lsm-label":
        snap.lsm_labelled = {"yes": True, "no": False}.get(text)
    elif name == "selinux":
        snap.selinux = {"yes": True, "no": False}.get(text)


def parse_probe(output: str, nonce: str, catalogue: tuple[Control, ...] | None = None) -> Snapshot:
    """The host's Snapshot; any output it cannot read is a ProbeError (that host's error), never a crash."""
    try:
        return _parse_probe(output, nonce, catalogue or controls())
    except ProbeError:
        raise
    except Exception as exc:  # noqa: BLE001 - hostile output must stay this host's problem
        raise ProbeError(f"unreadable probe output ({type(exc).__name__}: {str(exc)[:200]})") from None


def _parse_probe(output: str, nonce: str, catalogue: tuple[Control, ...]) -> Snapshot:
    sections = _sections(output, nonce)
    if not sections or sections[-1][0] != "done":
        raise ProbeError("probe output is incomplete (connection lost or output truncated)")
    snap = Snapshot()
    unit_parts: list[str] = []
    order: list[str] = []
    files: dict[str, str] = {}
    stat_bodies: dict[str, str] = {}
    auditd_pid = ""
    dockerd: tuple[str, list[str]] = ("", [])
    for name, arg, body in sections:
        text = body.strip()
        if name == "uid":
            snap.uid = _int(text)
        elif name == "arch":
            snap.arch = text
        elif name == "auditctl":
            snap.auditctl = text or None
        elif name == "auditctl-s":
            snap.status_rc, snap.status_text = _int(arg), body
        elif name == "auditctl-l":
            snap.listing_rc, snap.listing_text = _int(arg), body
        elif name == "auditd":
            snap.auditd = text or None
        elif name == "awk":
            snap.awk = text
        elif name == "auditd-pid":  # the kernel's auditd pid (auditctl -s), alive and root's
            auditd_pid = text
        elif name == "systemd":
            snap.systemd = text == "running"
        elif name == "auditd-unit":
            unit_parts.append(body if arg == "0" else "")
        elif name == "auditd-unit-file":
            unit_parts.append(body)
        elif name == "audit-rules-unit":
            snap.audit_rules_unit = body if arg == "0" else ""
        elif name == "auditd-enabled":
            snap.auditd_enabled = text
        elif name == "cmdline":
            snap.cmdline = body
        elif name == "mounts":
            snap.mounts = body
        elif name == "tmpfiles-file":
            snap.tmpfiles.append((arg, body))
        elif name == "kernel-rules":
            snap.kernel_rules = _kernel_rules(body)
        elif name == "tmpfiles-masked":
            snap.tmpfiles.append((arg, ""))
        elif name == "unit":
            if text:
                snap.units[arg] = text.splitlines()[0]
        elif name == "units":  # systemctl show: one FragmentPath line per unit, in UNITS order
            snap.units.update((u, f) for u, f in zip(_unit_names(catalogue), body.split("\n"), strict=False) if f)
        elif name == "rules-d-order":
            order = [n for n in body.split("\n") if n]
        elif name == "rules-file":
            files[arg] = body
        elif name == "rules-d-special":
            snap.rules_d_special.append(arg)
        elif name == "rules-d-word":
            snap.rules_d_words[arg] = body
        elif name == "audit-version":
            snap.audit_version = text
        elif name == "augenrules":
            snap.augenrules_script = body
        elif name == "audit-rules-stat":
            snap.audit_rules_stat = text
        elif name.endswith("-error"):
            snap.unreadable.append(arg)
        elif name == "audit-rules":
            snap.audit_rules = body
        elif name == "daemon-json":
            snap.daemon_json = body
        elif name == "dockerd-cmdline":
            dockerd = (arg, body.split("\0")[:-1] if "\0" in body else body.split())
        elif name == "dockerd-ignored":  # a process named dockerd that is not root's
            snap.ignored_dockerd.append((arg, text))
        elif name == "subuid":
            snap.subuid = body
        elif name == "subgid":
            snap.subgid = body
        elif name == "socket-unit":
            snap.socket_units[arg] = body
        elif name == "containerd-config":
            snap.containerd_config = body
        elif name == "binary":
            if text:
                snap.binaries[arg] = text.splitlines()[0]
        elif name in ("paths", "targets", "modes"):
            stat_bodies[name] = body
        elif name in _KERNEL_FACTS:
            _kernel_fact(snap, name, arg, text)
    snap.auditd_running = bool(auditd_pid) and auditd_pid == snap.status.get("pid", "").strip()
    if dockerd[0] not in {f"/proc/{pid}/cmdline" for pid, _ in snap.ignored_dockerd}:
        snap.dockerd_args = dockerd[1]
    snap.paths = parse_stat_sections(
        stat_bodies.get("paths", ""), stat_bodies.get("targets", ""), stat_bodies.get("modes", "")
    )
    snap.auditd_unit = "\n".join(unit_parts)
    by_name = {Path(p).name: p for p in files}
    ordered = [by_name[n] for n in order if n in by_name]
    ordered += sorted(set(files) - set(ordered))
    snap.rules_d = [(p, files[p]) for p in ordered]
    return snap
