"""Remediation plan: which rule to add for each failing control, decided from the Snapshot.

Pure code, on the same kernel and boot model as the verdicts (cisaudit/model/kernel.py, loader.py,
boot.py). A rule goes on the control's real object (symlinks resolved) and is planned only when
a simulation shows that, with it written where the tool writes, the control passes live and
after the next boot, every rule that loaded at boot before still loads, and no rule the tool did
not write loses an access to it. Where the rule's parent exists only after boot (a socket under
/run/containerd), a tmpfiles.d entry makes it exist before auditd loads the rules. Otherwise the
control is left alone with the reason and, where one exists, the edit a person could make.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from cisaudit.model.boot import VOLATILE_FS, bound_location, real_path
from cisaudit.model.catalogue import Benchmark, Control, benchmark, exclusion_rule
from cisaudit.model.evaluate import Assessment
from cisaudit.model.kernel import AuditObject, KernelRule, WatchKind, exit_reach
from cisaudit.model.loader import boot_state
from cisaudit.model.locate import Target
from cisaudit.model.rules import AuditRule, parse_rule
from cisaudit.model.snapshot import Snapshot
from cisaudit.model.verdict import Check, Status

MANAGED_FILE = "/etc/audit/rules.d/50-cisaudit-docker.rules"
AUDIT_RULES = "/etc/audit/audit.rules"
TMPFILES_CONF = "/etc/tmpfiles.d/cisaudit-docker.conf"
_UNSAFE_PATH = re.compile(r"[\s#\x00-\x1f\x7f]")  # auditctl splits on blanks; a `#` ends the line for us


@dataclass(frozen=True)
class Plan:
    mode: str
    target: str  # the managed rules.d file, or audit.rules in auditctl mode
    rules: tuple[tuple[str, str], ...]  # (control id, rule line) to add
    left_alone: tuple[tuple[str, str], ...]  # (control id, why the tool does not touch it)
    tmpfiles: tuple[str, ...] = ()  # tmpfiles.d lines for TMPFILES_CONF
    benchmark: Benchmark | None = None  # the benchmark version the rules implement

    @property
    def rule_lines(self) -> list[str]:
        return [rule for _, rule in self.rules]

    def describe(self) -> str:
        parts = []
        if self.rules:
            parts.append(
                f"add to {self.target} ({self.mode}) and load: "
                + "; ".join(f"{cid}: {rule}" for cid, rule in self.rules)
            )
        if self.tmpfiles:
            parts.append(f"write {TMPFILES_CONF} (so the rules load at boot): " + "; ".join(self.tmpfiles))
        named = f"{self.benchmark.title} v{self.benchmark.version}: " if self.benchmark else ""
        return named + ("; ".join(parts) or "nothing to add")


def _version_key(name: str) -> list[int | str]:
    """Close to `ls -v`, the order augenrules reads rules.d in."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def with_rules(snap: Snapshot, mode: str, target: str, rules: list[str], tmpfiles: Sequence[str] = ()) -> Snapshot:
    """The snapshot as it would be with `rules` (and tmpfiles.d lines) written where the tool writes them."""
    text = "".join(rule + "\n" for rule in rules)
    if tmpfiles:
        files = dict(snap.tmpfiles)
        files[TMPFILES_CONF] = files.get(TMPFILES_CONF, "") + "".join(t + "\n" for t in tmpfiles)
        snap = replace(snap, tmpfiles=list(files.items()))
    if mode == "augenrules":
        rules_d = dict(snap.rules_d)
        old = rules_d.get(target, "")
        rules_d[target] = old + ("\n" if old and not old.endswith("\n") else "") + text
        ordered = sorted(rules_d.items(), key=lambda item: _version_key(item[0].rsplit("/", 1)[-1]))
        return replace(snap, rules_d=ordered)
    lines = (snap.audit_rules or "").splitlines(keepends=True)
    at = next((i for i, line in enumerate(lines) if line.lstrip().startswith("-e")), len(lines))
    return replace(snap, audit_rules="".join(lines[:at]) + text + "".join(lines[at:]))


def _tmpfiles_for(assessment: Assessment, rule_path: str) -> tuple[list[str], str | None]:
    """tmpfiles.d lines that make the rule's parent exist at boot, or why that cannot be done."""
    snap, boot = assessment.snap, assessment.boot
    location = bound_location(rule_path, snap)
    parent = location.rpartition("/")[0] or "/"
    if boot.at_boot(parent, snap.paths.get(parent)).exists:
        return [], None
    mount = boot.mount_of(parent)
    info = snap.paths.get(parent)
    if mount is None or mount.fstype not in VOLATILE_FS or not boot.tmpfiles_first:
        return [], (
            f"at boot {parent} does not exist when the rules load and no tmpfiles.d entry can "
            "make it exist first"
            + ("" if boot.tmpfiles_first else " (the rule loader does not run after systemd-tmpfiles-setup)")
        )
    if not (info and info.kind == "dir" and len(info.owner.split()) == 3):
        return [], f"{parent} is not a directory now: its mode and owner for a tmpfiles.d entry are unknown"
    mode, uid, gid = info.owner.split()
    return [f"d {parent} {int(mode, 8):04o} {uid} {gid} -"], None


def _boot_fixes(assessment: Assessment, selected: list[Control]) -> tuple[Assessment, list[str]]:
    """tmpfiles.d entries that make persisted rules on the controls' objects load at boot, where
    the load now stops at them because their parent is not there yet (containerd.sock), and the
    assessment of the host as it would be with them. Each round fixes the line the load stops at."""
    objects = {assessment.audit_object(assessment.target(c)).path for c in selected}
    fixes: list[str] = []
    for _ in range(len(selected) + 1):
        stop = assessment.persisted.stopped_at
        item = stop[0].item if stop else None
        if not isinstance(item, AuditRule) or not item.path:
            break
        if bound_location(item.path, assessment.snap) not in objects:
            break
        lines, why = _tmpfiles_for(assessment, bound_location(item.path, assessment.snap))
        if why or not lines or set(lines) <= set(fixes):
            break
        fixes += lines
        snap = with_rules(assessment.snap, assessment.mode.mode, MANAGED_FILE, [], lines)
        assessment = Assessment(snap, assessment.key, assessment.require_all)
    return assessment, fixes


def _control_rules(assessment: Assessment, control: Control, located: Target, real: str) -> tuple[list[str], bool]:
    """The benchmark's rules a failing control lacks, in the order to write and load them: its
    exclusions first (the first matching exit rule takes an access, docs/kernel-behaviour.md),
    then its own rule where its object is not recorded; and whether that rule is persisted already."""
    persisted = {l.item.identity for l in assessment.persisted_lines if isinstance(l.item, AuditRule)}
    rules = [
        exclusion_rule(real_path(path, assessment.snap))
        for path in located.exclusions
        if (info := assessment.snap.paths.get(path)) and info.exists
    ]
    states = [replace(s, silenced=[]) for s in (assessment.live_state, assessment.boot_state)]
    own = control.rule_text(_spelling(assessment, real), assessment.key)
    needed = any(assessment.object_problems(control, located, state)[1] for state in states)
    rules += [own] if needed else []
    return [rule for rule in rules if _identity(rule) not in persisted], needed and _identity(own) in persisted


def make_plan(assessment: Assessment, selected: list[Control], version: Benchmark | None = None) -> Plan:
    plan = _make_plan(assessment, selected)
    return replace(plan, benchmark=version or benchmark())


def _make_plan(assessment: Assessment, selected: list[Control]) -> Plan:
    mode = assessment.mode.mode
    target = MANAGED_FILE if mode == "augenrules" else AUDIT_RULES
    planned: list[tuple[str, str]] = []
    left: list[tuple[str, str]] = []
    if mode == "none":  # nowhere the boot reads: a rule written anywhere would be lost
        return Plan(mode, target, (), tuple((c.id, assessment.mode.reason) for c in selected))
    original = assessment
    assessment, tmpfiles = _boot_fixes(assessment, selected)
    for control in selected:
        live = assessment.control_verdict(control, Check.LIVE)
        persisted = assessment.control_verdict(control, Check.PERSISTED)
        statuses = {live.status, persisted.status}
        if statuses == {Status.PASS} or Status.NOT_APPLICABLE in statuses:
            continue
        if Status.ERROR in statuses:
            left.append((control.id, (live if live.status == Status.ERROR else persisted).summary))
            continue
        located = assessment.target(control)
        real = assessment.audit_object(located).path
        if _UNSAFE_PATH.search(real):
            left.append(
                (
                    control.id,
                    f"{real!r} contains whitespace, '#' or control characters: auditctl splits "
                    "rule lines on blanks, so no rule can name it exactly",
                )
            )
            continue
        stopped = assessment.persisted.stopped_at
        unreached = [
            l for l in assessment.persisted.never_loaded if getattr(l.item, "path", None) in {*located.aliases, real}
        ]
        if stopped and unreached:  # adding a copy would duplicate it; the broken line is the fault
            left.append(
                (
                    control.id,
                    f"persisted at {unreached[0].where} but never loads at boot: loading stops "
                    f"at {stopped[0].where} ({stopped[1]}); fix that line",
                )
            )
            continue
        if live.status == Status.FAIL and persisted.status == Status.PASS:
            left.append(
                (
                    control.id,
                    "; ".join(assessment.live_state.silenced)
                    or "persisted but not in the kernel: reload the rules (augenrules --load) or reboot",
                )
            )
            continue
        rules, own_persisted = _control_rules(assessment, control, located, real)
        if own_persisted or not rules:
            # Persisted already: a second copy would stop the boot-time load ("Rule exists").
            left.append(
                (
                    control.id,
                    "its rule is persisted already; what keeps it failing: "
                    + (persisted.summary if persisted.status == Status.FAIL else live.summary),
                )
            )
            continue
        extra, why = _tmpfiles_for(assessment, real)
        if why:
            left.append((control.id, why))
            continue
        planned += [(control.id, rule) for rule in rules]
        tmpfiles += [t for t in extra if t not in tmpfiles]
    return _verified(original, mode, target, planned, tmpfiles, left, selected)


def _overlaps(ours: KernelRule, theirs: KernelRule, assessment: Assessment) -> bool:
    """Whether our rule, placed before theirs, could take an access their rule would record."""
    if theirs.rule.filter != "exit" or theirs.rule.action != "always" or set(theirs.keys) <= set(ours.keys):
        return False
    region = AuditObject(ours.location or "/", WatchKind.TREE in ours.kinds)
    return any(
        exit_reach(theirs, region, perm, abi, assessment.snap.arch, assessment.facts)[1]
        for perm in ours.rule.perms & theirs.rule.perms
        for abi in assessment.abis
    )


def _verified(
    assessment: Assessment,
    mode: str,
    target: str,
    planned: list[tuple[str, str]],
    tmpfiles: list[str],
    left: list[tuple[str, str]],
    selected: list[Control],
) -> Plan:
    """Keep only rules that make their control pass now and after the boot, and cost nothing."""
    snap = assessment.snap
    after = with_rules(snap, mode, target, [rule for _, rule in planned], tmpfiles)
    live_now = {kr.rule.identity for kr in assessment.live_state.exit}
    appended = [r for _, r in planned if (item := parse_rule(r)) and getattr(item, "identity", None) not in live_now]
    # auditctl -a appends to the live exit list; a rule already live stays where it is ("Rule exists").
    after = replace(
        after,
        listing_text=after.listing_text.replace("No rules", "").rstrip("\n")
        + "\n"
        + "".join(r + "\n" for r in appended),
    )
    simulated = Assessment(after, assessment.key, assessment.require_all)
    after_boot = simulated.persisted
    dropped = [
        l for l in assessment.persisted.rules if l.rule.identity not in {x.rule.identity for x in after_boot.rules}
    ]
    by_id = {c.id: c for c in selected}
    # Host-wide silence (auditd stopped, -e 0) is reported by the checks; rules still belong in place.
    live = replace(simulated.live_state, silenced=[])
    boot = replace(simulated.boot_state, silenced=[])
    boot_rules = boot_state(after, after_boot).exit
    ours = {r for _, r in planned}
    keep = []
    for cid, rule in planned:
        control = by_id[cid]
        located = simulated.target(control)
        _, live_problems = simulated.judge(control, located, live)
        _, boot_problems = simulated.judge(control, located, boot)
        position = next((i for i, kr in enumerate(boot_rules) if kr.line.text == rule), None)
        robbed = [
            kr
            for kr in boot_rules[(position or 0) + 1 :]
            if position is not None and kr.line.text not in ours and _overlaps(boot_rules[position], kr, assessment)
        ]
        if dropped:
            left.append(
                (
                    cid,
                    f"adding the rules would stop `{dropped[0].line.text}` ({dropped[0].line.where}) "
                    "from loading at boot",
                )
            )
        elif position is None:
            stop = after_boot.stopped_at
            left.append(
                (cid, "would never load at boot" + (f": loading stops at {stop[0].where} ({stop[1]})" if stop else ""))
            )
        elif robbed and boot_rules[position].actions == {"never"}:
            left.append(
                (
                    cid,
                    f"{rule} at {target} would stop {robbed[0].cite()}, a rule the tool did not write, "
                    "from recording accesses below it (the kernel gives an access to the first matching "
                    "rule)",
                )
            )
        elif robbed:
            kr = robbed[0]
            left.append(
                (
                    cid,
                    f"{rule} at {target} would take accesses that {kr.cite()}, a rule the tool did not "
                    "write, records now (the kernel gives an access to the first matching rule); the edit "
                    "that costs nothing: add "
                    f"`-k {assessment.key}` to that rule (a rule with two keys is found by either)",
                )
            )
        elif live_problems or boot_problems:
            left.append(
                (
                    cid,
                    "an existing rule the tool did not write keeps it failing: "
                    + "; ".join(live_problems or boot_problems),
                )
            )
        else:
            keep.append((cid, rule))
    failed = {cid for cid, _ in left}  # a control's rules are kept together or not at all
    keep = [(cid, rule) for cid, rule in keep if cid not in failed]
    parents = {bound_location(_rule_path(r), snap).rpartition("/")[0] or "/" for _, r in keep}
    fixed_lines = {bound_location(l.rule.path, snap).rpartition("/")[0] for l in after_boot.rules if l.rule.path}
    used = [t for t in tmpfiles if t.split()[1] in parents or t.split()[1] in fixed_lines]
    if len(keep) < len(planned) and keep:  # what is left must pass the same simulation on its own
        again = _verified(assessment, mode, target, keep, used, [], selected)
        return replace(again, left_alone=tuple(left) + again.left_alone)
    return Plan(mode, target, tuple(keep), tuple(left), tuple(used))


def _spelling(assessment: Assessment, real: str) -> str:
    """The path to write the rule on: as a live rule with the key already spells it, where one binds
    to the object (`/lib/...` for `/usr/lib/...`), so the persisted copy is its twin: the listing's
    `-w` line is then known to be an `always` rule, and loading it now is "Rule exists"."""
    for kr in assessment.live_state.exit:
        if kr.location == real and assessment.key in kr.keys and kr.rule.path and not _UNSAFE_PATH.search(kr.rule.path):
            return kr.rule.path
    return real


def _identity(rule: str) -> tuple[object, ...]:
    item = parse_rule(rule)
    return item.identity if isinstance(item, AuditRule) else ()


def _rule_path(rule: str) -> str:
    item = parse_rule(rule)
    return item.path or "/" if isinstance(item, AuditRule) else "/"
