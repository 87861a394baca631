"""How a host loads its persisted rules, and what its kernel holds: now, and after the next boot.

Pure code. Emulates augenrules' merge (it concatenates the files with `cat`, then sorts control
lines with awk) and `auditctl -R`'s stop-at-first-error, measured on auditd 3.0.9, against the
paths as they are when the loader runs at boot (cisaudit/model/boot.py). docs/kernel-behaviour.md.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from cisaudit.model.boot import BootModel, BootPath, bound_location
from cisaudit.model.kernel import FilterState, KernelRule, WatchKind
from cisaudit.model.rules import (
    AuditRule,
    Deletion,
    Directive,
    RuleLine,
    RuleSyntaxError,
    abi_of,
    parse_line,
    parse_rules,
)
from cisaudit.model.snapshot import Snapshot
from cisaudit.model.userspace import Behaviour, Userspace, userspace

AUDIT_RULES = "/etc/audit/audit.rules"
RULES_D = "/etc/audit/rules.d"
_IFS = re.compile(r"[ \t\n]+")
LOSS_SETTINGS = ("-r", "-b", "--backlog_wait_time")  # directives whose values can lose events
_EXEC_RE = re.compile(r"^\s*(ExecStartPost|ExecStart)\s*=\s*(.*)$")
_BOTH = frozenset({WatchKind.INODE, WatchKind.TREE})


class Loader(StrEnum):
    """What loads the persisted rules at boot."""

    AUGENRULES = "augenrules"  # merges /etc/audit/rules.d into audit.rules, then auditctl -R
    AUDITCTL = "auditctl"  # auditctl -R /etc/audit/audit.rules
    NONE = "none"  # nothing: no rule written anywhere loads at boot


@dataclass(frozen=True)
class LoaderMode:
    loader: Loader
    reason: str
    unit: str = ""  # the unit text that runs the loader (its After= decides what exists then)


def _commands(unit: str, option: str) -> list[str]:
    commands: list[str] = []
    for line in unit.splitlines():
        m = _EXEC_RE.match(line)
        if m and m.group(1) == option:
            # An empty assignment in a drop-in resets the list, as systemd does.
            commands = [] if not m.group(2).strip() else commands + [m.group(2)]
    return commands


def loader_mode(snap: Snapshot) -> LoaderMode:
    """Decide as systemd would run it: auditd's ExecStartPost lines (drop-ins applied in order),
    or audit 4's audit-rules.service."""
    candidates = [(snap.auditd_unit, c) for c in _commands(snap.auditd_unit, "ExecStartPost")]
    candidates += [
        (snap.audit_rules_unit, c)
        for option in ("ExecStart", "ExecStartPost")
        for c in _commands(snap.audit_rules_unit, option)
    ]
    for unit, command in candidates:
        if "augenrules" in command and "--load" in command:
            return LoaderMode(Loader.AUGENRULES, f"the audit unit runs `{command.strip()}`", unit)
        if "auditctl" in command and "-R" in command:
            return LoaderMode(Loader.AUDITCTL, f"the audit unit runs `{command.strip()}`", unit)
    if not (snap.auditd_unit + snap.audit_rules_unit).strip():
        if snap.rules_d:
            return LoaderMode(Loader.AUGENRULES, "no auditd unit found; /etc/audit/rules.d has rules files")
        return LoaderMode(Loader.AUDITCTL, "no auditd unit found and no /etc/audit/rules.d files")
    return LoaderMode(
        Loader.NONE, "the audit units run neither `augenrules --load` nor `auditctl -R`: no rules load at boot"
    )


def _awk_patterns(mawk: bool) -> dict[str, re.Pattern[str]]:
    """augenrules' awk patterns, `^\\s*-D\\s*$` and friends: gawk reads `\\s` as a blank, mawk
    (Debian's default awk) as the letter s, so there only column-0 control lines are moved."""
    blank = "s" if mawk else r"\s"
    return {
        name: re.compile(f"^{blank}*{body}")
        for name, body in (("#", "#"), ("-e", "-e"), ("-D", f"-D{blank}*$"), ("-f", "-f"), ("-b", "-b"))
    }


def _concatenated(files: Iterable[tuple[str, str]]) -> list[tuple[str, int, str]]:
    """`cat` of the files, as lines each naming the file:line it starts at: a file without a final
    newline joins its last line with the next file's first."""
    lines: list[tuple[str, int, str]] = []
    pending: tuple[str, int, str] | None = None
    for source, text in files:
        parts = text.split("\n")
        for lineno, part in enumerate(parts, 1):
            if pending is not None:
                src, no, head = pending
                entry, pending = (src, no, head + part), None
            else:
                entry = (source, lineno, part)
            if lineno == len(parts):
                pending = entry if part or entry[2] else None
            else:
                lines.append(entry)
    if pending is not None:
        lines.append(pending)
    return lines


Entry = tuple[str, int, str]


@dataclass(frozen=True)
class Merge:
    """augenrules' awk pass over the concatenated rules.d files: the last -D, -b and -f, the other
    lines in order, and the last -e (comments and empty lines dropped)."""

    first: dict[str, Entry]
    body: list[Entry]
    minus_e: Entry | None

    @property
    def lines(self) -> list[Entry]:
        """The lines in the order augenrules writes them: -D, -b, -f first, -e last."""
        head = [self.first[k] for k in ("-D", "-b", "-f") if k in self.first]
        return head + self.body + ([self.minus_e] if self.minus_e else [])

    @property
    def output(self) -> str:
        """The audit.rules augenrules writes (it rewrites the file only when this differs)."""
        lines = [self.first[k][2] if k in self.first else "" for k in ("-D", "-b", "-f")]
        lines += [entry[2] for entry in self.body] + [self.minus_e[2] if self.minus_e else ""]
        return f"## This file is automatically generated from {RULES_D}\n" + "".join(f"{line}\n" for line in lines)


def augenrules_awk(files: Iterable[tuple[str, str]], mawk: bool = False, strip_cr: bool = False) -> Merge:
    """augenrules' awk over the files' lines (mawk's patterns, or gawk's; 3.1.1+ strips a CR)."""
    patterns = _awk_patterns(mawk)
    first: dict[str, Entry] = {}
    minus_e: Entry | None = None
    body: list[Entry] = []
    for entry in _concatenated(files):
        if strip_cr and entry[2].endswith("\r"):  # 3.1.1+: `sub(/\r$/, "")`
            entry = (entry[0], entry[1], entry[2][:-1])
        line = entry[2]
        if not line or patterns["#"].match(line):
            continue
        if patterns["-e"].match(line):
            minus_e = entry
        elif patterns["-D"].match(line):
            first["-D"] = entry
        elif patterns["-f"].match(line):
            first["-f"] = entry
        elif patterns["-b"].match(line):
            first["-b"] = entry
        else:
            body.append(entry)
    return Merge(first, body, minus_e)


def augenrules_files(snap: Snapshot, us: Userspace) -> tuple[list[tuple[str, str]], list[str]]:
    """The files augenrules cats, in its order, and what it skips on the way (notes)."""
    notes = [
        f"{p} is not a regular file: augenrules' cat fails on it and the merge goes on" for p in snap.rules_d_special
    ]
    if not us.does(Behaviour.WORD_SPLITS_NAMES):
        return list(snap.rules_d), notes
    known = dict(snap.rules_d) | snap.rules_d_words
    chosen: list[tuple[str, str]] = []
    for path, text in snap.rules_d:
        name = path.rpartition("/")[2]
        words = _IFS.split(name.strip(" \t"))
        if len(words) == 1:
            chosen.append((path, text))
            continue
        notes.append(f"augenrules word-splits the file name `{name}` into {', '.join(words)} (the shell's for loop)")
        for word in words:
            if (split := f"{path.rpartition('/')[0]}/{word}") in known:
                chosen.append((split, known[split]))
            else:
                notes.append(f"augenrules: cat {split} fails (no such regular file): nothing of `{name}` loads from it")
    return chosen, notes


def _file_refusal(snap: Snapshot, mode: LoaderMode, us: Userspace, merged: str | None) -> str | None:
    """Why `auditctl -R /etc/audit/audit.rules` refuses the file at boot (None: it reads it).
    augenrules rewrites it when the merge differs: `cp` keeps an existing file's owner, then chmod 0640."""
    fields = snap.audit_rules_stat.split()
    if len(fields) != 2 or not all(f.isdigit() for f in fields):
        return None  # not probed (or absent): the file checks cannot be judged
    bits, uid = int(fields[0], 8), int(fields[1])
    if mode.loader == Loader.AUGENRULES and merged is not None and merged != snap.audit_rules:
        bits = 0o640
    if us.does(Behaviour.OWNER_CHECK) and uid != 0:
        return f"Error - {AUDIT_RULES} isn't owned by root (uid {uid}): auditctl -R loads nothing"
    if us.does(Behaviour.WORLD_WRITABLE_REFUSED) and bits & 0o002:
        return f"Error - {AUDIT_RULES} is world writable (mode {bits:o}): auditctl -R loads nothing"
    return None


def persisted_lines(snap: Snapshot, mode: LoaderMode, us: Userspace | None = None) -> list[RuleLine]:
    """The lines the loader feeds to `auditctl -R`, in order, each naming its own file:line; a
    file `auditctl -R` refuses is one failing line before all of them."""
    us = us or userspace(snap.audit_version, snap.augenrules_script)
    if mode.loader == Loader.NONE:
        return []
    merged = None
    if mode.loader == Loader.AUGENRULES:
        files, _ = augenrules_files(snap, us)
        mawk, strip_cr = "mawk" in snap.awk, us.does(Behaviour.STRIPS_CR)
        merge = augenrules_awk(files, mawk, strip_cr)
        merged = merge.output
        merged_lines = (parse_line(text, source, lineno) for source, lineno, text in merge.lines)
        lines = [line for line in merged_lines if line is not None]
    else:
        lines = parse_rules(snap.audit_rules or "", AUDIT_RULES)
    refusal = _file_refusal(snap, mode, us, merged)
    return [RuleLine(AUDIT_RULES, 0, f"auditctl -R {AUDIT_RULES}", None, refusal), *lines] if refusal else lines


@dataclass(frozen=True)
class Loaded:
    """A rule in a rule list, the line that put it there, and what the kernel made of it."""

    rule: AuditRule
    line: RuleLine
    kind: WatchKind = WatchKind.INODE

    @property
    def held(self) -> tuple[object, ...]:
        """The identity the kernel compares for "Rule exists" and deletions (AuditRule.held)."""
        return self.rule.held(self.kind == WatchKind.TREE)


@dataclass
class Replay:
    rules: list[Loaded] = field(default_factory=list)
    failures: list[tuple[RuleLine, str]] = field(default_factory=list)
    stopped_at: tuple[RuleLine, str] | None = None  # the line that ended the load
    never_loaded: list[RuleLine] = field(default_factory=list)  # rule lines after the stop
    enabled: str | None = None  # the last -e the load set
    settings: dict[str, RuleLine] = field(default_factory=dict)  # LOSS_SETTINGS: the line that set each last


# How one rule is added: the error auditctl reports, or None and how the kernel binds it.
AddRule = Callable[[AuditRule], tuple[str | None, WatchKind]]


def replay(lines: list[RuleLine], add: AddRule) -> Replay:
    """What `auditctl -R` leaves in the kernel after loading `lines` into an empty list."""
    result = Replay()
    keep_going = immutable = False
    present: Counter[tuple[object, ...]] = Counter()
    for index, line in enumerate(lines):
        error = line.error
        item = line.item
        if error is None and immutable and not isinstance(item, Directive):
            error = "audit is immutable after -e 2 (Operation not permitted)"
        elif isinstance(item, Directive):
            keep_going |= item.option in ("-c", "-i")
            if item.option == "-D":  # with a key (-D -k KEY): only the rules carrying it
                gone = [r for r in result.rules if item.value is None or item.value in r.rule.keys]
                result.rules = [r for r in result.rules if r not in gone]
                present.subtract(r.held for r in gone)
            if item.option in LOSS_SETTINGS:
                result.settings[item.option] = line
            if item.option == "-e":
                result.enabled = item.value
                immutable |= item.value == "2"
        elif isinstance(item, Deletion):
            held = item.rule.held(add(item.rule)[1] == WatchKind.TREE)  # `-W DIR` deletes the dir= rule
            match = next((r for r in result.rules if r.held == held), None) if present[held] else None
            if match is None:
                error = "no such rule to delete (No such file or directory)"
            else:
                result.rules.remove(match)
                present[held] -= 1
        elif isinstance(item, AuditRule):
            error, kind = add(item)
            held = item.held(kind == WatchKind.TREE)
            if present[held]:
                error = "Rule exists"
            elif error is None:
                loaded = Loaded(item, line, kind)
                result.rules.insert(0, loaded) if item.prepend else result.rules.append(loaded)
                present[held] += 1
        if error is not None:
            result.failures.append((line, error))
            if not keep_going:
                result.stopped_at = (line, error)
                result.never_loaded = [x for x in lines[index + 1 :] if isinstance(x.item, AuditRule)]
                break
    return result


def boot_adder(snap: Snapshot, boot: BootModel) -> AddRule:
    """auditctl adding a rule at boot: `-w` becomes a tree watch on a directory and an inode watch
    otherwise; `dir=` needs the path, an inode watch its parent; an arch must be the host's. Each
    distinct parent is judged once (thousands of rules share a few: /etc, /usr/bin)."""
    parents: dict[tuple[str, str], BootPath] = {}  # (bound parent, parent as named): at boot

    def add(rule: AuditRule) -> tuple[str | None, WatchKind]:
        if rule.arch is not None:
            try:
                abi_of(rule.arch, snap.arch)
            except RuleSyntaxError as exc:
                return str(exc), WatchKind.INODE
        if not rule.path:
            return None, WatchKind.INODE
        location = bound_location(rule.path, snap)
        if rule.path_field != "path":  # a path= rule binds to its parent whatever it names
            here = boot.at_boot(location, snap.paths.get(rule.path))
            if rule.path_field == "dir" or here.is_dir:
                if not here.exists:
                    return f"{here.reason or rule.path + ' does not exist'} (No such file or directory)", WatchKind.TREE
                return None, WatchKind.TREE
        parent = location.rpartition("/")[0] or "/"
        named = rule.path.rpartition("/")[0] or "/"
        above = parents.get((parent, named))
        if above is None:
            above = parents[parent, named] = boot.at_boot(parent, snap.paths.get(named))
        if not above.exists:
            return (
                f"{above.reason or 'parent ' + parent + ' does not exist'} (No such file or directory)",
                WatchKind.INODE,
            )
        return None, WatchKind.INODE

    return add


def _by_filter(rules: Iterable[KernelRule]) -> FilterState:
    state = FilterState()
    lists = {"exit": state.exit, "task": state.task, "exclude": state.exclude, "filesystem": state.filesystem}
    for kr in rules:
        if kr.rule.filter in lists:
            lists[kr.rule.filter].append(kr)
    return state


def boot_state(snap: Snapshot, result: Replay) -> FilterState:
    """The kernel's lists after the boot-time load."""
    return _by_filter(
        KernelRule(
            l.rule,
            l.line,
            bound_location(l.rule.path, snap) if l.rule.path else None,
            frozenset({l.kind}),
            frozenset({l.rule.action}),
        )
        for l in result.rules
    )


def _kernel_view(
    listed: list[RuleLine], kernel: list[tuple[str, str, str, str]] | None
) -> dict[int, tuple[str, WatchKind]]:
    """Action and watch kind per listing line from the kernel's own list, where the two lists
    pair up rule by rule (same count, list, path); otherwise nothing is taken from it."""
    rules = [line for line in listed if isinstance(line.item, AuditRule)]
    if kernel is None or len(kernel) != len(rules):
        return {}
    view = {}
    for line, (name, action, kind, path) in zip(rules, kernel, strict=True):
        rule = line.item
        assert isinstance(rule, AuditRule)
        if name != rule.filter or (rule.path or "") != path.rstrip("/") or action not in ("always", "never"):
            return {}
        view[id(line)] = (action, WatchKind.TREE if kind == "dir" else WatchKind.INODE)
    return view


def listing_shortfall(snap: Snapshot) -> str | None:
    """Why `auditctl -l` is not the whole of the kernel's rules, or None when nothing says so.

    auditctl ignores a receive that fails (ENOBUFS when its socket overflows, measured with 5,000
    rules on a test VM) and exits 0 with the rules it got (audit-userspace src/auditctl.c,
    get_reply), so a listing can lack a rule, a `never` one too, silently. The probe asks again when
    auditctl said so, twice at most (probe.sh). The kernel's own list, read whole (its reader
    printed `done`), counts them; auditctl prints one `-a`/`-w` line a rule."""
    if snap.kernel_rules is None:
        return None
    listed = sum(1 for line in snap.listing_text.split("\n") if line.lstrip().startswith(("-a ", "-w ")))
    if listed == len(snap.kernel_rules):
        return None
    return (
        f"auditctl -l listed {listed} rules, the kernel's own list {len(snap.kernel_rules)}: the listing is "
        "incomplete (auditctl drops what its socket could not hold, ENOBUFS, on hosts with thousands of "
        "rules) or rules changed while the probe read them; run the audit again"
    )


UNKNOWN_WATCH = (
    "`{line}` is a tree watch only if {path} was a directory when the rule was added, which neither "
    "the listing nor the directory's birth time (after this boot, or unknown) says, and the kernel's "
    "own list could not be read: install python3 or perl on the host (the probe then reads it), or "
    "reboot if {path} is on a disk filesystem (then it was born before the boot)"
)


def added_on_a_directory(snap: Snapshot, path: str) -> bool | None:
    """Whether a `-w PATH` in the listing was added while PATH was a directory (a tree watch; an
    inode watch otherwise, docs/kernel-behaviour.md). A directory born before this boot was one
    whenever any rule was loaded; born later (or birth unknown: busybox stat), it is not known
    (None). Without the probe's births (a snapshot built by hand) the directory as it is now says."""
    info = snap.paths.get(path)
    if not (info and info.kind == "dir"):
        return False
    births = snap.watch_births if snap.watch_births is not None else {} if snap.kernel_rules is not None else None
    if births is None:
        return True
    born, boot = births.get(path, 0), snap.boot_time
    return True if born and boot and born < boot else None


def _twin_kinds(rule: AuditRule, tree: bool | None) -> frozenset[WatchKind]:
    if rule.path_field == "dir" or (rule.path_field == "watch" and tree):
        return frozenset({WatchKind.TREE})
    return _BOTH if rule.path_field == "watch" and tree is None else frozenset({WatchKind.INODE})


def _listing_identity(rule: AuditRule) -> tuple[object, ...]:
    return rule.identity[:1] + rule.identity[2:]  # everything but the action


class _Twins:
    """The persisted rules a `-w` listing line could be, built on first need: where the kernel's own
    list was read, no line needs them (a host with thousands of rules skips two passes)."""

    def __init__(self, persisted: list[RuleLine], listed: list[RuleLine]) -> None:
        self._persisted, self._listed = persisted, listed

    @cached_property
    def _by_identity(self) -> dict[tuple[object, ...], list[AuditRule]]:
        twins: dict[tuple[object, ...], list[AuditRule]] = {}
        for line in self._persisted:
            if isinstance(line.item, AuditRule):
                twins.setdefault(_listing_identity(line.item), []).append(line.item)
        return twins

    @cached_property
    def _alike(self) -> Counter[tuple[object, ...]]:
        return Counter(_listing_identity(line.item) for line in self._listed if isinstance(line.item, AuditRule))

    def settling(self, rule: AuditRule) -> list[AuditRule]:
        """The persisted twins of a listing line, if they settle it: only as many twins as lines
        that print alike do (a runtime `never` and a persisted `always` list alike; one twin must
        not settle both). Empty otherwise."""
        identity = _listing_identity(rule)
        found = self._by_identity.get(identity, [])
        return found if found and len(found) >= self._alike[identity] else []


def live_state(snap: Snapshot, persisted: list[RuleLine]) -> tuple[FilterState, list[RuleLine]]:
    """The kernel's lists from `auditctl -l` (an exit rule with the file:line of its persisted twin),
    and listing lines that could not be read.

    The listing prints `-a never,exit -F path=X -F perm=rwxa` and `-F dir=X` alike as `-w X -p rwxa`:
    for such a line, the persisted lines with the same rule say which it is; without them both
    readings stay possible, and a verdict never takes the kind that would pass."""
    origins: dict[tuple[object, ...], RuleLine] = {}  # an exit rule's first persisted twin: where it comes from
    for line in persisted:
        if isinstance(line.item, AuditRule):
            origins.setdefault(line.item.identity, line)
    rules, unreadable = [], []
    listed = parse_rules(snap.listing_text, snap.listing_source)
    kernel = _kernel_view(listed, snap.kernel_rules)
    twins = _Twins(persisted, listed)
    for line in listed:
        rule = line.item
        if not isinstance(rule, AuditRule):
            unreadable += [line] if line.error else []
            continue
        location = bound_location(rule.path, snap) if rule.path else None
        kinds = frozenset({WatchKind.TREE if rule.path_field == "dir" else WatchKind.INODE})
        actions, note, unsettled = frozenset({rule.action}), "", False
        if rule.path_field == "watch" and id(line) in kernel:
            action, kind = kernel[id(line)]
            kinds, actions = frozenset({kind}), frozenset({action})
            note = f"the kernel's rule list (netlink) says `{line.text}` is a {action} {kind.value} watch"
        elif rule.path_field == "watch":
            found = twins.settling(rule)
            if found:
                tree = added_on_a_directory(snap, rule.path or "")
                kinds = frozenset(k for r in found for k in _twin_kinds(r, tree))
                actions = frozenset(r.action for r in found)
                note = (
                    "the listing cannot tell path=/dir= or always/never apart; persisted "
                    + ", ".join(f"`{r.text}`" for r in found)
                    + " says which"
                )
                if tree is None and any(r.path_field == "watch" for r in found):
                    note, unsettled = UNKNOWN_WATCH.format(line=line.text, path=rule.path), True
            else:
                kinds, actions = _BOTH, frozenset({"always", "never"})
                note = "the listing cannot tell path=/dir= or always/never apart and no persisted rule says which"
        twin = origins.get(rule.identity) if rule.filter == "exit" else None
        rules.append(KernelRule(rule, line, location, kinds, actions, note, twin.where if twin else "", unsettled))
    return _by_filter(rules), unreadable
