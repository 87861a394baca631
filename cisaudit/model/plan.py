"""Remediation plan: which rule to add for each failing control, decided from the Snapshot.

Pure code, on the same kernel and boot model as the verdicts (cisaudit/model/kernel.py, loader.py,
boot.py). A rule goes on the control's real object (symlinks resolved). The rules go FIRST, where
the kernel sees them before every rule the tool did not write (the first matching exit rule gives
an access its key): in a rules.d file that sorts before every other one (augenrules) or before the
first rule of audit.rules (auditctl -R), and live at the head of the exit list (apply.sh loads them
with `auditctl -A`). A hardened host's own rules (CIS: `-S chmod,... -k perm_mod`, `-S open,...
-F exit=-EACCES -k access`) then no longer take accesses to Docker's files: those accesses carry
the key instead of theirs, and the plan names each such rule and its keys (Plan.retagged). A rule
is planned only when a simulation shows that, written and loaded there, the control passes live
and after the next boot, every rule that loaded at boot before still loads, and no `never` rule
the tool did not write loses an access to it (that would undo a site's exclusion). Where the
rule's parent exists only after boot (a socket under /run/containerd), a tmpfiles.d entry makes it
exist before auditd loads the rules. Otherwise the control is left alone with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from cisaudit.model.boot import VOLATILE_FS, bound_location, real_path
from cisaudit.model.catalogue import Benchmark, Control, exclusion_rule
from cisaudit.model.evaluate import Assessment
from cisaudit.model.kernel import PERM_NAMES, AuditObject, FilterState, KernelRule, WatchKind, exit_reach
from cisaudit.model.loader import AUDIT_RULES, Loaded, boot_state
from cisaudit.model.locate import Target
from cisaudit.model.rules import AuditRule, parse_rule
from cisaudit.model.snapshot import Snapshot
from cisaudit.model.verdict import Check, Status

# Sorts before every rules.d file a distribution or hardening role writes (augenrules reads them in
# `ls -v` order); augenrules moves -D/-b/-f to the head and the last -e to the end whatever the file.
MANAGED_FILE = "/etc/audit/rules.d/00-cisaudit-docker.rules"
MANAGED_END = "## END cisaudit managed block"  # common.sh CA_END: apply.sh adds rules just before it
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
    # Rules the tool did not write whose accesses to Docker's files the rules, placed first, take:
    # those accesses carry the key instead of theirs. One line per rule: the rule, its keys, what.
    retagged: tuple[str, ...] = ()

    @property
    def rule_lines(self) -> list[str]:
        return [rule for _, rule in self.rules]

    @property
    def key(self) -> str:
        keys = [k for _, rule in self.rules for k in _keys(rule)]
        return keys[0] if keys else "docker"

    def describe(self) -> str:
        parts = []
        if self.rules:
            parts.append(
                f"add to {self.target} ({self.mode}) and load: "
                + "; ".join(f"{cid}: {rule}" for cid, rule in self.rules)
                + f"; placed first: {_FIRST[self.mode]} and loaded live at the head of the kernel's exit "
                "list (auditctl -A), before every rule the tool did not write"
            )
        if self.retagged:
            parts.append(
                f"your own rules' accesses to Docker's files now carry the key {self.key!r} instead of "
                "theirs (the kernel gives an access to the first matching rule; no rule of yours is "
                "changed, and every other access they record keeps their key): " + "; ".join(self.retagged)
            )
        if self.tmpfiles:
            parts.append(f"write {TMPFILES_CONF} (so the rules load at boot): " + "; ".join(self.tmpfiles))
        named = f"{self.benchmark.title} v{self.benchmark.version}: " if self.benchmark else ""
        return named + ("; ".join(parts) or "nothing to add")


_FIRST = {
    "augenrules": "the file sorts before every other /etc/audit/rules.d file",
    "auditctl": "the managed block goes before the first rule of audit.rules",
}


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
    at = _block_at(lines)
    return replace(snap, audit_rules="".join(lines[:at]) + text + "".join(lines[at:]))


def _block_at(lines: list[str]) -> int:
    """Where apply.sh adds rules to audit.rules: at the end of its managed block; without one, a new
    block before the first rule line (after -D, -b, -f: a -D after them would delete them), else
    before the first -e line (after -e 2 nothing loads), else at the end."""
    stripped = [line.strip() for line in lines]
    if MANAGED_END in stripped:
        return stripped.index(MANAGED_END)
    for pattern in (r"-[waA](\s|$)", r"-e(\s|$)"):
        at = next((i for i, line in enumerate(stripped) if re.match(pattern, line)), None)
        if at is not None:
            return at
    return len(lines)


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
        snap = with_rules(assessment.snap, assessment.mode.loader, MANAGED_FILE, [], lines)
        assessment = Assessment(snap, assessment.key, assessment.require_all)
    return assessment, fixes


def _control_rules(assessment: Assessment, control: Control, located: Target, real: str) -> tuple[list[str], bool]:
    """The benchmark's rules a failing control lacks, in the order to write and load them: its
    exclusions first (the first matching exit rule takes an access, docs/kernel-behaviour.md),
    then its own rule where its object is not recorded; and whether that rule is persisted already."""
    snap = assessment.snap
    persisted = {_held_now(snap, l.item) for l in assessment.persisted_lines if isinstance(l.item, AuditRule)}
    rules = [
        exclusion_rule(real_path(path, assessment.snap))
        for path in located.exclusions
        if (info := assessment.snap.paths.get(path)) and info.exists
    ]
    states = [replace(s, silenced=[]) for s in (assessment.live_state, assessment.boot_state)]
    own = _own_rule(assessment, control, located, real)
    needed = any(assessment.object_problems(control, located, state)[1] for state in states)
    rules += [own] if needed else []
    return [r for r in rules if _held_rule(snap, r) not in persisted], needed and _held_rule(snap, own) in persisted


def make_plan(assessment: Assessment, selected: list[Control], version: Benchmark) -> Plan:
    """The plan for the selected controls of benchmark `version`, which the plan names."""
    return replace(_make_plan(assessment, selected), benchmark=version)


@dataclass(frozen=True)
class _Decision:
    """One failing control's part of the plan: its rules and tmpfiles.d lines, or why it is left alone."""

    rules: tuple[str, ...] = ()
    tmpfiles: tuple[str, ...] = ()
    left_alone: str | None = None


def _make_plan(assessment: Assessment, selected: list[Control]) -> Plan:
    """Decide each control on the host as the tmpfiles.d fixes would leave it, then keep what the
    simulation verifies (_verified)."""
    mode = assessment.mode.loader
    target = MANAGED_FILE if mode == "augenrules" else AUDIT_RULES
    if mode == "none":  # nowhere the boot reads: a rule written anywhere would be lost
        return Plan(mode, target, (), tuple((c.id, assessment.mode.reason) for c in selected))
    fixed, tmpfiles = _boot_fixes(assessment, selected)
    planned: list[tuple[str, str]] = []
    left: list[tuple[str, str]] = []
    for control in selected:
        decision = _decide(fixed, control)
        if decision is None:
            continue
        if decision.left_alone is not None:
            left.append((control.id, decision.left_alone))
            continue
        planned += [(control.id, rule) for rule in decision.rules]
        tmpfiles += [t for t in decision.tmpfiles if t not in tmpfiles]
    return _verified(assessment, mode, target, planned, tmpfiles, left, selected)


def _decide(assessment: Assessment, control: Control) -> _Decision | None:
    """The control's rules, or why the tool leaves it alone; None when it needs nothing."""
    live = assessment.control_verdict(control, Check.LIVE)
    persisted = assessment.control_verdict(control, Check.PERSISTED)
    statuses = {live.status, persisted.status}
    if statuses == {Status.PASS} or Status.NOT_APPLICABLE in statuses:
        return None
    if Status.ERROR in statuses:
        return _Decision(left_alone=(live if live.status == Status.ERROR else persisted).summary)
    located = assessment.target(control)
    real = assessment.audit_object(located).path
    why = _unwritable(real) or _not_for_a_new_rule(assessment, located, real, live.status, persisted.status)
    if why:
        return _Decision(left_alone=why)
    rules, own_persisted = _control_rules(assessment, control, located, real)
    if own_persisted or not rules:
        # Persisted already: a second copy would stop the boot-time load ("Rule exists").
        keeps_failing = persisted.summary if persisted.status == Status.FAIL else live.summary
        return _Decision(
            left_alone=f"its rule is persisted already{_earlier_run(assessment, control, real)}; what keeps it "
            "failing: " + keeps_failing
        )
    extra, why = _tmpfiles_for(assessment, real)
    return _Decision(left_alone=why) if why else _Decision(tuple(rules), tuple(extra))


def _unwritable(real: str) -> str | None:
    """Why no rule can name the path, if none can."""
    if not _UNSAFE_PATH.search(real):
        return None
    return (
        f"{real!r} contains whitespace, '#' or control characters: auditctl splits "
        "rule lines on blanks, so no rule can name it exactly"
    )


def _not_for_a_new_rule(
    assessment: Assessment, located: Target, real: str, live: Status, persisted: Status
) -> str | None:
    """Why a new rule would not fix the control (a broken line, rules not loaded), if so."""
    stopped = assessment.persisted.stopped_at
    unreached = [
        l for l in assessment.persisted.never_loaded if getattr(l.item, "path", None) in {*located.aliases, real}
    ]
    if stopped and unreached:  # adding a copy would duplicate it; the broken line is the fault
        return (
            f"persisted at {unreached[0].where} but never loads at boot: loading stops "
            f"at {stopped[0].where} ({stopped[1]}); fix that line"
        )
    if live == Status.FAIL and persisted == Status.PASS:
        return (
            "; ".join(assessment.live_state.silenced)
            or "persisted but not in the kernel: reload the rules (augenrules --load) or reboot"
        )
    return None


def _overlaps(ours: KernelRule, theirs: KernelRule, assessment: Assessment) -> bool:
    """Whether our rule, placed before theirs, could take an access their rule would act on: record
    under another key, or (a `never` rule) leave unrecorded."""
    if theirs.rule.filter != "exit" or (theirs.actions == {"always"} and set(theirs.keys) <= set(ours.keys)):
        return False
    region = AuditObject(ours.location or "/", WatchKind.TREE in ours.kinds)
    return any(
        exit_reach(theirs, region, perm, abi, assessment.snap.arch, assessment.facts)[1]
        for perm in ours.rule.perms & theirs.rule.perms
        for abi in assessment.abis
    )


def _simulated(assessment: Assessment, mode: str, target: str, rules: list[str], tmpfiles: list[str]) -> Snapshot:
    """The host after apply.sh: the rules written where the plan writes them, and loaded live at
    the head of the exit list, in the plan's order (apply.sh prepends them last-first with
    auditctl -A); a rule already live stays where it is (apply.sh finds it with "Rule exists")."""
    after = with_rules(assessment.snap, mode, target, rules, tmpfiles)
    live_now = {kr.rule.held(kind == WatchKind.TREE) for kr in assessment.live_state.exit for kind in kr.kinds}
    loaded = [r for r in rules if _held_rule(after, r) not in live_now]
    listing = after.listing_text.replace("No rules", "").lstrip("\n")
    kernel, births = after.kernel_rules, after.watch_births
    if kernel is not None:  # the kernel's own list (netlink) gains the same rules, at its head
        kernel = [_kernel_entry(after, r) for r in loaded] + kernel
    if births is not None and after.boot_time:  # no reader: apply.sh loads them with their directories there
        births = {**births, **{_rule_path(r): after.boot_time - 1 for r in loaded}}
    text = "".join(r + "\n" for r in loaded) + listing
    return replace(after, listing_text=text, kernel_rules=kernel, watch_births=births)


def after_apply(assessment: Assessment, plan: Plan) -> Snapshot:
    """The host as the plan predicts it after apply.sh: what the plan was verified on."""
    return _simulated(assessment, plan.mode, plan.target, plan.rule_lines, list(plan.tmpfiles))


@dataclass(frozen=True)
class _Retag:
    """A rule the tool did not write, placed after ours: the accesses of it that now carry our key."""

    rule: KernelRule
    perms: tuple[str, ...]  # the permission classes ours takes from it
    what: str  # the object


def _retag(kr: KernelRule, ours: KernelRule, assessment: Assessment) -> _Retag:
    """The accesses to our rule's object (and permission classes) that kr may match."""
    region = AuditObject(ours.location or "/", WatchKind.TREE in ours.kinds)
    perms = tuple(
        perm
        for perm in "rwxa"
        if perm in ours.rule.perms & kr.rule.perms
        and any(exit_reach(kr, region, perm, abi, assessment.snap.arch)[1] for abi in assessment.abis)
    )
    return _Retag(kr, perms, f"{region.path} and below" if region.subtree else region.path)


def _judged(
    simulated: Assessment, rule: str, boot_rules: list[KernelRule], ours: set[str], target: str
) -> tuple[str | None, list[_Retag]]:
    """(why the rule cannot be kept, or None; what it retags) for one planned rule."""
    after_boot = simulated.persisted
    position = next((i for i, kr in enumerate(boot_rules) if kr.line.text == rule), None)
    if position is None:
        stop = after_boot.stopped_at
        return "would never load at boot" + (f": loading stops at {stop[0].where} ({stop[1]})" if stop else ""), []
    mine = boot_rules[position]
    taken = [kr for kr in boot_rules[position + 1 :] if kr.line.text not in ours and _overlaps(mine, kr, simulated)]
    if taken and mine.actions == {"never"}:
        return (
            f"{rule} at {target} would stop {taken[0].cite()}, a rule the tool did not write, from recording "
            "accesses below it (the kernel gives an access to the first matching rule)"
        ), []
    excluded = [kr for kr in taken if "never" in kr.actions]
    if excluded:
        return (
            f"{excluded[0].cite()}, a `never` rule the tool did not write, excludes accesses that {rule} at "
            f"{target} would record (the first matching rule decides): the site chose not to audit them; "
            "remove or narrow that rule if the benchmark should win"
        ), []
    return None, [_retag(kr, mine, simulated) for kr in taken]


@dataclass(frozen=True)
class _Simulation:
    """The host as the planned rules would leave it: judged live and after the next boot, host-wide
    silence (auditd stopped, -e 0) set aside, since the checks report it and rules still belong."""

    assessment: Assessment
    live: FilterState
    boot: FilterState
    boot_rules: list[KernelRule]  # the exit list after the boot-time load
    dropped: list[Loaded]  # rules that loaded at boot before and no longer would


def _simulate(
    assessment: Assessment, mode: str, target: str, planned: list[tuple[str, str]], tmpfiles: list[str]
) -> _Simulation:
    after = _simulated(assessment, mode, target, [rule for _, rule in planned], tmpfiles)
    simulated = Assessment(after, assessment.key, assessment.require_all)
    after_boot = simulated.persisted
    # Once, not per rule: per rule made the plan quadratic. A `-w` that boots as the other kind of
    # watch (its path absent or present at boot, unlike now) is loaded, not lost; what it covers
    # is the after-boot verdict's to judge.
    booted = {
        x.rule.held(tree) if x.rule.path_field == "watch" else x.held
        for x in after_boot.rules
        for tree in (True, False)
    }
    return _Simulation(
        simulated,
        replace(simulated.live_state, silenced=[]),
        replace(simulated.boot_state, silenced=[]),
        boot_state(after, after_boot).exit,
        [l for l in assessment.persisted.rules if l.held not in booted],
    )


def _rule_problem(
    sim: _Simulation, control: Control, rule: str, ours: set[str], target: str
) -> tuple[str | None, list[_Retag]]:
    """(why the planned rule cannot be kept, or None; what it retags) on the simulated host."""
    located = sim.assessment.target(control)
    _, live_problems = sim.assessment.judge(control, located, sim.live)
    _, boot_problems = sim.assessment.judge(control, located, sim.boot)
    why, taken = _judged(sim.assessment, rule, sim.boot_rules, ours, target)
    if sim.dropped:
        first = sim.dropped[0]
        return f"adding the rules would stop `{first.line.text}` ({first.line.where}) from loading at boot", taken
    if why is None and (live_problems or boot_problems):
        why = "an existing rule the tool did not write keeps it failing: " + "; ".join(live_problems or boot_problems)
    return why, taken


def _used_tmpfiles(snap: Snapshot, sim: _Simulation, keep: list[tuple[str, str]], tmpfiles: list[str]) -> list[str]:
    """The tmpfiles.d lines a kept rule's parent, or a persisted rule's, still needs."""
    parents = {bound_location(_rule_path(r), snap).rpartition("/")[0] or "/" for _, r in keep}
    rules = sim.assessment.persisted.rules
    fixed_lines = {bound_location(l.rule.path, snap).rpartition("/")[0] for l in rules if l.rule.path}
    return [t for t in tmpfiles if t.split()[1] in parents or t.split()[1] in fixed_lines]


def _verified(
    assessment: Assessment,
    mode: str,
    target: str,
    planned: list[tuple[str, str]],
    tmpfiles: list[str],
    left: list[tuple[str, str]],
    selected: list[Control],
) -> Plan:
    """Keep only rules that make their control pass now and after the boot, placed first; what is
    left after dropping some must pass the same simulation again, on its own."""
    sim = _simulate(assessment, mode, target, planned, tmpfiles)
    by_id = {c.id: c for c in selected}
    ours = {r for _, r in planned}
    keep, retagged = [], []
    for cid, rule in planned:
        why, taken = _rule_problem(sim, by_id[cid], rule, ours, target)
        if why:
            left.append((cid, why))
        else:
            keep.append((cid, rule))
            retagged += [(cid, t) for t in taken]
    failed = {cid for cid, _ in left}  # a control's rules are kept together or not at all
    keep = [(cid, rule) for cid, rule in keep if cid not in failed]
    used = _used_tmpfiles(assessment.snap, sim, keep, tmpfiles)
    if len(keep) < len(planned) and keep:
        again = _verified(assessment, mode, target, keep, used, [], selected)
        return replace(again, left_alone=tuple(left) + again.left_alone)
    kept = {cid for cid, _ in keep}
    return Plan(mode, target, tuple(keep), tuple(left), tuple(used), retagged=_grouped(retagged, kept))


def _grouped(retagged: list[tuple[str, _Retag]], kept: set[str]) -> tuple[str, ...]:
    """One line per key of the site's rules: the rules, and the accesses to each object (and
    control) that carried that key and now carry ours."""
    rules: dict[str, list[str]] = {}
    objects: dict[str, dict[str, tuple[set[str], list[str]]]] = {}
    for cid, r in retagged:
        if cid not in kept:
            continue
        key = ", ".join(r.rule.keys) or "none"
        rules.setdefault(key, [])
        rules[key] += [] if r.rule.cite() in rules[key] else [r.rule.cite()]
        perms, cids = objects.setdefault(key, {}).setdefault(r.what, (set(), []))
        perms.update(r.perms)
        cids += [] if cid in cids else [cid]
    return tuple(
        f"key {key}, from {', '.join(cites)}: "
        + "; ".join(
            f"{', '.join(PERM_NAMES[p] for p in 'rwxa' if p in perms)} of {what} ({', '.join(cids)})"
            for what, (perms, cids) in objects[key].items()
        )
        for key, cites in rules.items()
    )


def _own_rule(assessment: Assessment, control: Control, located: Target, real: str) -> str:
    """The control's rule as the benchmark spells it, except on a mount point (a data-root on its own
    filesystem), where the benchmark's `-F path=` binds the hidden directory and never records
    (kernel.binds_hidden): there a tree watch with the same permissions, which records once loaded
    after the mount, as the boot loads it after the local filesystems."""
    spelled = _spelling(assessment, real)
    if control.style == "syscall" and assessment.audit_object(located).mount_point:
        return f"-w {spelled} -p {control.required_perms} -k {assessment.key}"
    return control.rule_text(spelled, assessment.key)


def _spelling(assessment: Assessment, real: str) -> str:
    """The path to write the rule on: as a live rule with the key already spells it, where one binds
    to the object (`/lib/...` for `/usr/lib/...`), so the persisted copy is its twin: the listing's
    `-w` line is then known to be an `always` rule, and loading it now is "Rule exists"."""
    for kr in assessment.live_state.exit:
        if kr.location == real and assessment.key in kr.keys and kr.rule.path and not _UNSAFE_PATH.search(kr.rule.path):
            return kr.rule.path
    return real


def _held_now(snap: Snapshot, rule: AuditRule) -> tuple[object, ...]:
    """The rule's kernel identity (AuditRule.held) if added now: `-w` on a directory is a tree watch."""
    info = snap.paths.get(rule.path) if rule.path else None
    return rule.held(rule.path_field == "dir" or (rule.path_field == "watch" and bool(info and info.kind == "dir")))


def _held_rule(snap: Snapshot, rule: str) -> tuple[object, ...]:
    item = parse_rule(rule)
    return _held_now(snap, item) if isinstance(item, AuditRule) else ()


def _kernel_entry(snap: Snapshot, rule: str) -> tuple[str, str, str, str]:
    """A planned rule as the probe's kernel-rules section shows it once apply.sh loaded it."""
    item = parse_rule(rule)
    assert isinstance(item, AuditRule)
    tree = _held_now(snap, item)[-1] == "dir"
    return item.filter, item.action, "dir" if tree else "path" if item.path else "none", item.path or ""


def _identity(rule: str) -> tuple[object, ...]:
    item = parse_rule(rule)
    return item.identity if isinstance(item, AuditRule) else ()


def _earlier_run(assessment: Assessment, control: Control, real: str) -> str:
    """Where an earlier version of the tool wrote the rule after other rules, how to move it."""
    own = _identity(control.rule_text(_spelling(assessment, real), assessment.key))
    sources = {
        line.source
        for line in assessment.persisted_lines
        if isinstance(line.item, AuditRule) and line.item.identity == own
    }
    for source in sorted(sources):
        if source.endswith("-cisaudit-docker.rules") and source != MANAGED_FILE:
            return (
                f", in {source} by an earlier cisaudit run: back that run out (--backout) and "
                f"remediate again to place it first, in {MANAGED_FILE}"
            )
    return ""


def _keys(rule: str) -> tuple[str, ...]:
    item = parse_rule(rule)
    return item.keys if isinstance(item, AuditRule) else ()


def _rule_path(rule: str) -> str:
    item = parse_rule(rule)
    return item.path or "/" if isinstance(item, AuditRule) else "/"
