"""How a host loads its persisted rules, and what its kernel would hold after that load.

Pure code. Emulates augenrules' merge and `auditctl -R`'s stop-at-first-error, measured on
auditd 3.0.9 (see NOTES.md), so a rule after a broken line is known not to load.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from cisaudit.probe import PathInfo, Snapshot
from cisaudit.rules import AuditRule, Deletion, Directive, RuleLine, lines_of, parse_rules

AUDIT_RULES = "/etc/audit/audit.rules"
_EXEC_RE = re.compile(r"^\s*ExecStartPost\s*=\s*(.*)$")
_LEADING_WS = re.compile(r"^[ \t]*")


@dataclass(frozen=True)
class LoaderMode:
    mode: str  # "augenrules", "auditctl" or "none"
    reason: str


def loader_mode(snap: Snapshot) -> LoaderMode:
    """Decide as the auditd unit does: its ExecStartPost lines, drop-ins applied in order."""
    commands: list[str] = []
    for line in snap.auditd_unit.splitlines():
        m = _EXEC_RE.match(line)
        if m:
            # An empty assignment in a drop-in resets the list, as systemd does.
            commands = [] if not m.group(1).strip() else commands + [m.group(1)]
    for command in commands:
        if "augenrules" in command and "--load" in command:
            return LoaderMode("augenrules", f"auditd unit runs `{command.strip()}`")
        if "auditctl" in command and "-R" in command:
            return LoaderMode("auditctl", f"auditd unit runs `{command.strip()}`")
    if not snap.auditd_unit.strip():
        if snap.rules_d:
            return LoaderMode("augenrules", "no auditd unit found; /etc/audit/rules.d has rules files")
        return LoaderMode("auditctl", "no auditd unit found and no /etc/audit/rules.d files")
    return LoaderMode("none", "the auditd unit runs neither `augenrules --load` nor `auditctl -R`: "
                              "no rules load at boot")


def augenrules_merge(files: Iterable[tuple[str, str]], mawk: bool = False) -> list[tuple[str, int, str]]:
    """augenrules' awk pass over rules.d: the last -D/-b/-f go first, the last -e goes last.

    Its patterns start with `^\\s*`, which gawk reads as "leading blanks" but mawk (Debian's
    default awk) does not: there only column-0 `#`, `-e`, `-D`, ... are recognised.
    """
    first: dict[str, tuple[str, int, str]] = {}
    minus_e: tuple[str, int, str] | None = None
    body: list[tuple[str, int, str]] = []
    for source, text in files:
        for lineno, line in enumerate(lines_of(text), 1):
            stripped = line if mawk else _LEADING_WS.sub("", line)
            entry = (source, lineno, line)
            if not line or stripped.startswith("#"):
                continue
            if stripped.startswith("-e"):
                minus_e = entry
            elif stripped.rstrip(" \t") == "-D":
                first["-D"] = entry
            elif stripped.startswith(("-f", "-b")):
                first[stripped[:2]] = entry
            else:
                body.append(entry)
    head = [first[k] for k in ("-D", "-b", "-f") if k in first]
    return head + body + ([minus_e] if minus_e else [])


def persisted_lines(snap: Snapshot, mode: LoaderMode) -> list[RuleLine]:
    """The lines the loader feeds to `auditctl -R`, in order, each naming its own file:line."""
    if mode.mode == "augenrules":
        merged = augenrules_merge(snap.rules_d, mawk="mawk" in snap.awk)
        lines: list[RuleLine] = []
        for source, lineno, text in merged:
            parsed = parse_rules(text, source)
            lines.extend(RuleLine(p.source, lineno, p.text, p.item, p.error) for p in parsed)
        return lines
    if mode.mode == "none":
        return []
    return parse_rules(snap.audit_rules or "", AUDIT_RULES)


@dataclass(frozen=True)
class Loaded:
    """A rule in a rule list and the line that put it there."""

    rule: AuditRule
    line: RuleLine


@dataclass
class Replay:
    rules: list[Loaded] = field(default_factory=list)
    failures: list[tuple[RuleLine, str]] = field(default_factory=list)
    stopped_at: tuple[RuleLine, str] | None = None  # the line that ended the load
    never_loaded: list[RuleLine] = field(default_factory=list)  # rule lines after the stop


def _add_error(rule: AuditRule, stat: Callable[[str], PathInfo | None]) -> str | None:
    if not rule.path:
        return None
    info = stat(rule.path)
    if info is not None and info.exists:
        return None
    if rule.path_field == "dir" and info is not None:
        return f"{rule.path} does not exist (No such file or directory)"
    parent = rule.path.rsplit("/", 1)[0] or "/"
    parent_info = stat(parent)
    if parent_info is not None and not parent_info.exists:
        return f"parent {parent} does not exist (No such file or directory)"
    return None


def replay(lines: list[RuleLine], stat: Callable[[str], PathInfo | None]) -> Replay:
    """What `auditctl -R` leaves in the kernel after loading `lines` into an empty list."""
    result = Replay()
    keep_going = immutable = False
    for index, line in enumerate(lines):
        error = line.error
        item = line.item
        if error is None and immutable and not isinstance(item, Directive):
            error = "audit is immutable after -e 2 (Operation not permitted)"
        elif isinstance(item, Directive):
            keep_going |= item.option in ("-c", "-i")
            if item.option == "-D":
                result.rules.clear()
            immutable |= item.option == "-e" and item.value == "2"
        elif isinstance(item, Deletion):
            match = next((r for r in result.rules if r.rule.identity == item.rule.identity), None)
            if match is None:
                error = "no such rule to delete (No such file or directory)"
            else:
                result.rules.remove(match)
        elif isinstance(item, AuditRule):
            if any(r.rule.identity == item.identity for r in result.rules):
                error = "Rule exists"
            else:
                error = _add_error(item, stat)
            if error is None:
                loaded = Loaded(item, line)
                if item.prepend:
                    result.rules.insert(0, loaded)
                else:
                    result.rules.append(loaded)
        if error is not None:
            result.failures.append((line, error))
            if not keep_going:
                result.stopped_at = (line, error)
                result.never_loaded = [x for x in lines[index + 1:] if isinstance(x.item, AuditRule)]
                break
    return result


def live_rules(snap: Snapshot, persisted: list[Loaded]) -> tuple[list[Loaded], list[RuleLine]]:
    """The kernel's list from `auditctl -l`, and listing lines that could not be read.

    The listing prints a `never` watch exactly like an `always` one; where the persisted rules
    hold a `never` rule with that identity and no `always` twin, believe the persisted one.
    """
    persisted_never = {l.rule.identity for l in persisted if l.rule.action == "never"}
    persisted_always = {l.rule.identity for l in persisted if l.rule.action == "always"}
    loaded, unreadable = [], []
    for line in parse_rules(snap.listing_text, "auditctl -l"):
        rule = line.item
        if not isinstance(rule, AuditRule):
            unreadable += [line] if line.error else []
            continue
        if rule.action == "always" and rule.text.startswith("-w "):
            never = replace(rule, action="never")
            if never.identity in persisted_never and rule.identity not in persisted_always:
                rule = never
        loaded.append(Loaded(rule, line))
    return loaded, unreadable
