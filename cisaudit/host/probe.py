"""The batched probe: one remote command per host, parsed once into a Snapshot."""

from __future__ import annotations

import re
import secrets
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cisaudit.host.shell import compose
from cisaudit.model.boot import TMPFILES_DIRS
from cisaudit.model.catalogue import Control
from cisaudit.model.heap import uncollected
from cisaudit.model.kernel import CLASS_SYSCALLS
from cisaudit.model.kernel_list import KERNEL_LIST, KernelList, parse_kernel_list
from cisaudit.model.loader import AUDIT_RULES
from cisaudit.model.locate import DEFAULT_DATA_ROOT, UNIT_DIRS, ProbeList, probe_names
from cisaudit.model.snapshot import PathInfo, Snapshot

KERNEL_RULES = Path(__file__).with_name("kernel_rules.py")
_SECRET = re.compile(r"[0-9a-f]{32}")


class ProbeError(RuntimeError):
    """The probe's output was incomplete or could not be read."""


def _unit_names(catalogue: tuple[Control, ...]) -> list[str]:
    return probe_names(catalogue, ProbeList.UNITS)


PROBE_PIECES = ("probe-lib.sh", "probe-guess.sh", "probe.sh")  # scripts/ the probe is composed of, in order


def _nonce() -> str:
    """The public half of the section marker; the host adds a secret half (probe-lib.sh)."""
    return "@@cisaudit-" + secrets.token_hex(8)


def render_probe(catalogue: tuple[Control, ...], extra_paths: list[str] | None = None) -> tuple[str, str]:
    """The probe command for a benchmark version's controls (`catalogue`), and the nonce that frames
    its sections."""
    nonce = _nonce()
    return compose({"M": nonce, **probe_values(catalogue, extra_paths)}, *PROBE_PIECES), nonce


def probe_values(catalogue: tuple[Control, ...], extra_paths: list[str] | None = None) -> dict[str, str]:
    """The probe's values but its nonce M (the SSM document sets M itself: host/ssm/document.py)."""
    paths = sorted({c.path for c in catalogue} | set(extra_paths or ()))
    excludes = sorted({sub for c in catalogue for sub in c.exclude})
    # What every benchmark version shares comes first: the SSM document holds it once (document.py).
    return {
        "KERNEL_RULES_PY": kernel_rules_py(),
        "KERNEL_RULES_PL": kernel_rules_pl(),
        "UNIT_DIRS": " ".join(UNIT_DIRS),
        "TMPFILES_DIRS": " ".join(TMPFILES_DIRS),
        "DEFAULT_DATA_ROOT": DEFAULT_DATA_ROOT,
        "AUDIT_RULES": AUDIT_RULES,
        "CLASS_SYSCALLS": " ".join(sorted(CLASS_SYSCALLS)),
        **{name.value: " ".join(probe_names(catalogue, name)) for name in ProbeList},  # BINARIES, UNITS, SOCKETS
        "EXCLUDES": " ".join(excludes),
        "PATHS": " ".join(paths),
    }


def kernel_rules_pl() -> str:
    """The perl reader as the probe sends it: no comments, no indentation (an SSM document holds at
    most 64 KB, and the probe is in it). Its only `#` characters are comments."""
    lines = (
        re.sub(r"\s+#\s.*$", "", line).strip() for line in KERNEL_RULES.with_suffix(".pl").read_text().splitlines()
    )
    return re.sub(r"\s*([-=,;{}()<>?:|&+!~/])\s*", r"\1", "".join(line for line in lines if not line.startswith("#")))


def kernel_rules_py() -> str:
    """The python3 reader as the probe sends it: without its docstring and comments (see above)."""
    text = KERNEL_RULES.read_text()
    text = text[text.index('"""', 3) + 3 :]  # the module docstring
    lines = (re.sub(r"\s+#\s.*$", "", line).rstrip() for line in text.splitlines())
    return "\n".join(line for line in lines if line.strip() and not line.lstrip().startswith("#")) + "\n"


def render_stat_script(paths: list[str]) -> tuple[str, str]:
    """A follow-up for paths the probe could not know in advance (a config naming an odd path):
    every path is one quoted argument, so any byte but NUL survives."""
    nonce = _nonce()
    return compose({"M": nonce, "STAT_ARGS": shlex.join(paths)}, "probe-lib.sh", "stat.sh"), nonce


def _records(body: str) -> list[str]:
    """NUL-terminated records (the section's own trailing newline is not part of them)."""
    parts = body.split("\0")
    return parts[:-1]


def _paired_targets(targets: str, count: int) -> list[str]:
    """readlink -m's NUL-terminated targets and its exit code; a count that does not add up
    (readlink failed on a path: a symlink loop) leaves every target unknown, never shifted."""
    resolved = targets.split("\0")
    rc = resolved.pop().strip() if resolved else "1"
    if rc != "0" or len(resolved) != count:
        return [""] * count
    return resolved


def parse_stat_sections(paths: str, targets: str, modes: str) -> dict[str, PathInfo]:
    """Pair kinds, readlink -m targets and modes with their paths (the test-builtin form)."""
    kinds = _records(paths)
    pairs = list(zip(kinds[0::2], kinds[1::2], strict=False))
    resolved = _paired_targets(targets, len(pairs))
    owners: dict[str, str] = {}
    for record in _records(modes):
        fields = record.split(" ", 3)
        if len(fields) == 4:
            owners[fields[3]] = " ".join(fields[:3])
    return {
        path: PathInfo(path, kind, target, owners.get(path, ""))
        for (kind, path), target in zip(pairs, resolved, strict=True)
    }


# stat's %F (LC_ALL=C) as the test builtins name kinds; every other type is a file.
_STAT_KINDS = {"directory": "dir", "symbolic link": "symlink", "socket": "socket"}


def lexical_target(path: str) -> str:
    """What `readlink -m` prints for a path none of whose components is a symlink: `.` and empty
    components dropped, `..` taking the one before it (the root's parent is the root)."""
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/" + "/".join(parts)


def parse_lstat_sections(args: str, lstat: str, targets: str, links: str | None = None) -> dict[str, PathInfo]:
    """The one-stat form: every argument, and `KIND MODE UID GID`, PATH records for those that
    exist (a path stat did not print is absent). Targets pair with every argument, or, with
    `links` (stat_lines), with the symlinks among them only."""
    paths = _records(args)
    records = _records(lstat)
    found: dict[str, tuple[str, str]] = {}
    for head, path in zip(records[0::2], records[1::2], strict=False):
        fields = head.rsplit(" ", 3)
        if len(fields) == 4:
            found[path] = (_STAT_KINDS.get(fields[0], "file"), " ".join(fields[1:]))
    if links is None:
        resolved = dict(zip(paths, _paired_targets(targets, len(paths)), strict=True))
    else:
        linked = _records(links)
        resolved = _below_links(paths, dict(zip(linked, _paired_targets(targets, len(linked)), strict=True)))
    return {
        path: PathInfo(path, kind, resolved[path], owner)
        for path in paths
        for kind, owner in (found.get(path, ("absent", "")),)
    }


def _below_links(paths: list[str], links: dict[str, str]) -> dict[str, str]:
    """readlink -m of each path, from the targets of the symlinks alone (stat_lines: every
    ancestor of a path is among the paths, so no component below its nearest symlink ancestor,
    or in it when it has none, is a symlink). A link whose target is unknown leaves those below
    it unknown."""
    resolved = {}
    for path in paths:
        head, below = path, []
        while head and head not in links:
            head, _, name = head.rpartition("/")
            below.append(name)
        base = links[head] if head else ""
        below.reverse()
        resolved[path] = lexical_target("/".join([base, *below])) if base or not head else ""
    return resolved


def _stat_paths(bodies: dict[str, str]) -> dict[str, PathInfo]:
    """stat_paths' or stat_lines' sections (probe-lib.sh), in whichever form the host could give."""
    if "args" in bodies:
        return parse_lstat_sections(
            bodies["args"], bodies.get("lstat", ""), bodies.get("targets", ""), bodies.get("links")
        )
    return parse_stat_sections(bodies.get("paths", ""), bodies.get("targets", ""), bodies.get("modes", ""))


def parse_stat_output(output: str, nonce: str) -> dict[str, PathInfo]:
    """The follow-up stat command's output."""
    sections = {name: body for name, _, body in _sections(output, nonce)}
    if "done" not in sections:
        raise ProbeError("stat output is incomplete (connection lost or output truncated)")
    return _stat_paths(sections)


def _kernel_rules_section(p: _Parsing, arg: str, body: str) -> None:
    p.kernel_list = parse_kernel_list(body)
    if p.kernel_list is None:
        p.snap.watch_births = {}  # the reader failed: no watch's kind is known (model/loader.py)
        return
    p.snap.kernel_rules = p.kernel_list.watches()


def _births(body: str) -> dict[str, int]:
    """`stat -c '%W %n'` lines: path -> birth time in seconds (0: unknown, as stat prints `-`, `?`)."""
    births = {}
    for line in body.split("\n"):
        born, _, path = line.partition(" ")
        if path:
            births[path] = _int(born) or 0
    return births


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


# -- sections, each read by one handler (probe.sh's sections, by name) -------------------------


@dataclass
class _Parsing:
    """The snapshot being filled, and what only the whole output decides (read at the end)."""

    snap: Snapshot
    catalogue: tuple[Control, ...]
    unit_parts: list[str] = field(default_factory=list)  # auditd's unit: its text or its files, in order
    order: list[str] = field(default_factory=list)  # rules.d names in augenrules' order
    files: dict[str, str] = field(default_factory=dict)  # rules.d path -> text
    stat_bodies: dict[str, str] = field(default_factory=dict)  # paths, targets, modes
    auditd_pid: str = ""  # the kernel's auditd pid (auditctl -s), alive and root's
    kernel_list: KernelList | None = None  # the reader's rules, read whole
    listed: bool = False  # auditctl -l ran (the reader could not read the list whole, or is missing)
    dockerd: tuple[str, list[str]] = ("", [])  # root's dockerd: its cmdline file and argv
    unit_show: str | None = None  # systemctl show's blocks (systemd running), parsed at the end
    unit_files: dict[str, str] = field(default_factory=dict)  # unit file path -> text (unit-show's)


_Handler = Callable[[_Parsing, str, str], None]  # (parsing, arg, body)
# Sections whose stripped text is a Snapshot field as is, or None when empty; and whose body is.
_TEXT = {
    "arch": "arch",
    "awk": "awk",
    "auditd-enabled": "auditd_enabled",
    "audit-version": "audit_version",
    "audit-rules-stat": "audit_rules_stat",
}
_TEXT_OR_NONE = {"auditctl": "auditctl", "auditd": "auditd"}
_BODY = {
    "cmdline": "cmdline",
    "mounts": "mounts",
    "augenrules": "augenrules_script",
    "audit-rules": "audit_rules",
    "daemon-json": "daemon_json",
    "subuid": "subuid",
    "subgid": "subgid",
    "containerd-config": "containerd_config",
}
_YES_NO = {"yes": True, "no": False}


def _first_line(text: str) -> str:
    return text.splitlines()[0]


def _audit_sections() -> dict[str, _Handler]:
    """auditctl, auditd and its unit: how the host records and loads."""

    def status(p: _Parsing, arg: str, body: str) -> None:
        p.snap.status_rc, p.snap.status_text = _int(arg), body

    def listing(p: _Parsing, arg: str, body: str) -> None:
        p.snap.listing_rc, p.snap.listing_text, p.listed = _int(arg), body, True

    return {
        "uid": lambda p, arg, body: setattr(p.snap, "uid", _int(body.strip())),
        "auditctl-s": status,
        "auditctl-l": listing,
        "kernel-rules": _kernel_rules_section,
        "boot-time": lambda p, arg, body: setattr(p.snap, "boot_time", _int(body)),
        "watch-births": lambda p, arg, body: setattr(p.snap, "watch_births", _births(body)),
        "auditd-pid": lambda p, arg, body: setattr(p, "auditd_pid", body.strip()),
        "systemd": lambda p, arg, body: setattr(p.snap, "systemd", body.strip() == "running"),
        "auditd-unit-file": lambda p, arg, body: p.unit_parts.append(body),
        "unit-show": lambda p, arg, body: setattr(p, "unit_show", body),
        "unit-file": lambda p, arg, body: p.unit_files.__setitem__(arg, body),
    }


def _file_sections() -> dict[str, _Handler]:
    """Files and where things are: rules files, tmpfiles.d, units, sockets, binaries, stat."""

    def unit(p: _Parsing, arg: str, body: str) -> None:
        if body.strip():
            p.snap.units[arg] = _first_line(body.strip())

    def binary(p: _Parsing, arg: str, body: str) -> None:
        if body.strip():
            p.snap.binaries[arg] = _first_line(body.strip())

    def dockerd(p: _Parsing, arg: str, body: str) -> None:
        p.dockerd = (arg, body.split("\0")[:-1] if "\0" in body else body.split())

    def stat(name: str) -> _Handler:
        return lambda p, arg, body: p.stat_bodies.__setitem__(name, body)

    return {
        "tmpfiles-file": lambda p, arg, body: p.snap.tmpfiles.append((arg, body)),
        "tmpfiles-masked": lambda p, arg, body: p.snap.tmpfiles.append((arg, "")),
        "unit": unit,
        "rules-d-order": lambda p, arg, body: setattr(p, "order", [n for n in body.split("\n") if n]),
        "rules-file": lambda p, arg, body: p.files.__setitem__(arg, body),
        "rules-d-special": lambda p, arg, body: p.snap.rules_d_special.append(arg),
        "rules-d-word": lambda p, arg, body: p.snap.rules_d_words.__setitem__(arg, body),
        "dockerd-cmdline": dockerd,
        "dockerd-ignored": lambda p, arg, body: p.snap.ignored_dockerd.append((arg, body.strip())),
        "socket-unit": lambda p, arg, body: p.snap.socket_units.__setitem__(arg, body),
        "binary": binary,
        **{name: stat(name) for name in ("paths", "targets", "modes", "args", "lstat", "links")},
    }


def _process_starts(p: _Parsing, arg: str, body: str) -> None:
    """`NAME PID START` lines (probe.sh, cisaudit/model/unaudited.py); a line that is not one is left out."""
    for line in body.split("\n"):
        name, _, rest = line.partition(" ")
        pid, _, start = rest.partition(" ")
        pid_number, start_number = _int(pid), _int(start)
        if name and pid_number is not None and start_number is not None:
            p.snap.process_starts.append((name, pid_number, start_number))


def _kernel_fact_sections() -> dict[str, _Handler]:
    """The kernel filter model's facts (probe.sh's "kernel filter model" section)."""
    return {
        "syscalls": lambda p, arg, body: p.snap.syscall_tables.__setitem__(arg, body.strip()),
        "lsm": lambda p, arg, body: setattr(p.snap, "lsm_list", body.strip()),
        "lsm-label": lambda p, arg, body: setattr(p.snap, "lsm_labelled", _YES_NO.get(body.strip())),
        "selinux": lambda p, arg, body: setattr(p.snap, "selinux", _YES_NO.get(body.strip())),
        "process-starts": _process_starts,
        "boot-id": _boot_id,
    }


BOOT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _boot_id(p: _Parsing, arg: str, body: str) -> None:
    """Anything but the kernel's UUID is no boot id (--reboot-proof fails closed)."""
    text = body.strip()
    p.snap.boot_id = text if BOOT_ID.fullmatch(text) else ""


def _field_sections() -> dict[str, _Handler]:
    """Sections that are one Snapshot field each (_TEXT, _TEXT_OR_NONE, _BODY)."""

    def text(attr: str) -> _Handler:
        return lambda p, arg, body: setattr(p.snap, attr, body.strip())

    def text_or_none(attr: str) -> _Handler:
        return lambda p, arg, body: setattr(p.snap, attr, body.strip() or None)

    def whole(attr: str) -> _Handler:
        return lambda p, arg, body: setattr(p.snap, attr, body)

    return {
        **{name: text(attr) for name, attr in _TEXT.items()},
        **{name: text_or_none(attr) for name, attr in _TEXT_OR_NONE.items()},
        **{name: whole(attr) for name, attr in _BODY.items()},
    }


_SECTIONS: dict[str, _Handler] = {
    **_field_sections(),
    **_audit_sections(),
    **_file_sections(),
    **_kernel_fact_sections(),
}


def parse_probe(output: str, nonce: str, catalogue: tuple[Control, ...]) -> Snapshot:
    """The host's Snapshot; any output it cannot read is a ProbeError (that host's error), never a crash."""
    try:
        with uncollected():  # all of it lives as long as the host's assessment (model/heap.py)
            return _parse_probe(output, nonce, catalogue)
    except ProbeError:
        raise
    except Exception as exc:  # noqa: BLE001 - hostile output must stay this host's problem
        raise ProbeError(f"unreadable probe output ({type(exc).__name__}: {str(exc)[:200]})") from None


def _read_section(parsing: _Parsing, name: str, arg: str, body: str) -> None:
    """One section into the snapshot; `NAME-error` is a file the probe could not read, and a
    name no handler knows is ignored (an older or newer probe)."""
    handler = _SECTIONS.get(name)
    if handler is not None:
        handler(parsing, arg, body)
    elif name.endswith("-error"):
        parsing.snap.unreadable.append(arg)


def _finish(parsing: _Parsing) -> Snapshot:
    """What only the whole output decides: auditd's pid against the kernel's, root's dockerd,
    the stat sections paired, auditd's unit, rules.d in augenrules' order."""
    snap = parsing.snap
    snap.auditd_running = bool(parsing.auditd_pid) and parsing.auditd_pid == snap.status.get("pid", "").strip()
    cmdline_file, argv = parsing.dockerd
    if cmdline_file not in {f"/proc/{pid}/cmdline" for pid, _ in snap.ignored_dockerd}:
        snap.dockerd_args = argv
    snap.paths = _stat_paths(parsing.stat_bodies)
    if parsing.kernel_list is not None and not parsing.listed:  # the probe ran no auditctl -l
        snap.listing_rc, snap.listing_source = 0, KERNEL_LIST
        snap.listing_text = parsing.kernel_list.listing(snap.syscall_tables, snap.arch)
    snap.auditd_unit = "\n".join(parsing.unit_parts)
    if parsing.unit_show is not None:
        _unit_show(parsing, parsing.unit_show)
    files = parsing.files
    by_name = {Path(p).name: p for p in files}
    ordered = [by_name[n] for n in parsing.order if n in by_name]
    ordered += sorted(set(files) - set(ordered))
    snap.rules_d = [(p, files[p]) for p in ordered]
    return snap


def _unit_show(parsing: _Parsing, show: str) -> None:
    """systemctl show's blocks (probe.sh: auditd.service, audit-rules.service, SOCKETS, UNITS, in
    that order): each unit's file as systemd has it, auditd's UnitFileState (what `systemctl
    is-enabled` prints), and the text `systemctl cat` would print of the first three kinds, from
    the files the probe dumped. A block not of its unit (its Names) or a file systemd names that
    the probe did not send leaves the persisted verdicts unreadable, not guessed."""
    snap, sockets = parsing.snap, probe_names(parsing.catalogue, ProbeList.SOCKETS)
    names = ["auditd.service", "audit-rules.service", *sockets, *_unit_names(parsing.catalogue)]
    blocks = [_properties(block) for block in show.split("\n\n") if block.strip()]
    if len(blocks) != len(names) or any(
        n not in b.get("Names", "").split() for n, b in zip(names, blocks, strict=False)
    ):
        snap.unreadable.append("systemctl show (a block per unit)")
        return
    shown = dict(zip(names, blocks, strict=True))
    snap.units.update((n, shown[n]["FragmentPath"]) for n in names[2 + len(sockets) :] if shown[n].get("FragmentPath"))
    snap.auditd_enabled = shown["auditd.service"].get("UnitFileState", "")
    snap.auditd_unit, snap.audit_rules_unit = (_unit_text(parsing, n, shown[n]) for n in names[:2])
    snap.socket_units.update((n, _unit_text(parsing, n, shown[n])) for n in sockets)


def _properties(block: str) -> dict[str, str]:
    """`NAME=value` lines (systemctl show's block of one unit)."""
    pairs = (line.partition("=") for line in block.split("\n") if line)
    return {name: value for name, _, value in pairs}


def _unit_text(parsing: _Parsing, name: str, props: dict[str, str]) -> str:
    """What `systemctl cat NAME` prints, but the "# PATH" lines: its files' text, drop-ins last."""
    if props.get("LoadState") == "masked":
        return f"# Unit {name} is masked."
    try:  # DropInPaths quotes a path with a blank or a quote, as a shell would (probe.sh unit_files)
        files = ([props["FragmentPath"]] if props.get("FragmentPath") else []) + shlex.split(
            props.get("DropInPaths", "")
        )
    except ValueError:
        parsing.snap.unreadable.append(f"{name}'s DropInPaths")
        return ""
    missing = [f for f in files if f not in parsing.unit_files and f not in parsing.snap.unreadable]
    parsing.snap.unreadable.extend(missing)  # one a "-error" section named already is not named twice
    return "\n".join(parsing.unit_files[f] for f in files if f in parsing.unit_files)


def _parse_probe(output: str, nonce: str, catalogue: tuple[Control, ...]) -> Snapshot:
    sections = _sections(output, nonce)
    if not sections or sections[-1][0] != "done":
        raise ProbeError("probe output is incomplete (connection lost or output truncated)")
    parsing = _Parsing(Snapshot(), catalogue)
    for name, arg, body in sections:
        _read_section(parsing, name, arg, body)
    return _finish(parsing)
