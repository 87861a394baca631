"""Verdicts per (host, control, check): pure functions of one Snapshot.

A control passes `live` when, with the kernel's current rule lists, every access of every
required permission class (and ABI) to the control's real object would produce an event with
the key (cisaudit/model/kernel.py); it passes `persisted` when the same holds for the lists the
host's loader builds at the next boot (cisaudit/model/loader.py, cisaudit/model/boot.py). The evidence
names the rule that records each class, or the rule that takes the accesses, and why.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from itertools import accumulate

from cisaudit.model.boot import BootModel, real_path
from cisaudit.model.catalogue import Control
from cisaudit.model.heap import built_uncollected
from cisaudit.model.kernel import (
    PERM_NAMES,
    AuditKeys,
    AuditObject,
    Cell,
    FilterState,
    KernelFacts,
    WatchKind,
    binds_hidden,
    exclusion_cells,
    host_losses,
    judge,
    kernel_facts,
    mount_point_note,
)
from cisaudit.model.loader import (
    AUDIT_RULES,
    Loaded,
    Loader,
    LoaderMode,
    Replay,
    augenrules_files,
    boot_adder,
    boot_state,
    listing_shortfall,
    live_state,
    loader_mode,
    persisted_lines,
    replay,
)
from cisaudit.model.locate import Target, resolve
from cisaudit.model.loss import BACKLOG_FLOOR, KERNEL_DEFAULT, STATUS_FIELD, Setting, c_ulong, problems
from cisaudit.model.rules import RuleLine, lines_of, machine_abis
from cisaudit.model.snapshot import Snapshot
from cisaudit.model.unaudited import unaudited_daemons
from cisaudit.model.userspace import Userspace, userspace
from cisaudit.model.verdict import Check, Status, Verdict, dispatch

# Checks judged from the host's files (rules files, the boot-time loader, auditd's logs, the
# installed userspace), refused where a transport sees other files (a container's). `live`,
# `audit-enabled` and `auditd-running` read only the kernel (auditctl -l, auditctl -s).
READS_HOST_FILES = frozenset(
    {
        Check.PERSISTED,
        Check.EVENTS,
        Check.LOAD_HEALTH,
        Check.EVENT_LOSS,
        Check.AUDITD_INSTALLED,
        Check.REMEDIATION,
        Check.BACKOUT,
    }
)


def _describe(cells: list[Cell], abis: tuple[str, ...]) -> str:
    """`read, write` or `read on b32`: permissions grouped by the ABIs they concern."""
    by_perm: dict[str, list[str]] = {}
    for cell in cells:
        by_perm.setdefault(cell.perm, []).append(cell.abi)
    groups: dict[tuple[str, ...], list[str]] = {}
    for perm, perm_abis in by_perm.items():
        groups.setdefault(tuple(perm_abis), []).append(PERM_NAMES[perm])
    return "; ".join(
        ", ".join(names) + ("" if set(group) == set(abis) else f" on {'/'.join(group)}")
        for group, names in groups.items()
    )


def explain(cells: list[Cell], abis: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(what records each group of cells, what happens to the accesses that are not recorded with
    the key: which rule takes them first, which of them, and the key they get or that they are lost)."""
    recorded: dict[str, list[Cell]] = {}
    problems: dict[tuple[str, str], list[Cell]] = {}
    for cell in cells:
        if cell.ok and cell.recorded_by:
            recorded.setdefault(cell.recorded_by.cite(), []).append(cell)
            continue
        for take in cell.lost:
            problems.setdefault((take.whom, take.text()), []).append(cell)
        if not cell.lost:
            partial = f"; only partly by {', '.join(k.cite() for k in cell.partial)}" if cell.partial else ""
            problems.setdefault(("", f"not recorded: no rule records with the key{partial}"), []).append(cell)
    return (
        [f"{cite} records {_describe(c, abis)}" for cite, c in recorded.items()],
        [f"{_describe(c, abis)}{f' ({whom})' if whom else ''}: {what}" for (whom, what), c in problems.items()],
    )


def _mentions(texts: list[tuple[str, str]], paths: set[str]) -> list[str]:
    """Every line that names one of the paths, even commented or a longer neighbour."""
    seen = []
    for source, text in texts:
        lines = lines_of(text)
        seen += [f"{source}:{i + 1}: {lines[i].strip()}" for i in sorted(_lines_naming(text, lines, paths))]
    return seen


@lru_cache(maxsize=8)
def _line_starts(text: str) -> tuple[int, ...]:
    """Where each line of `text` starts: once per text, not once per control (issue 26.1)."""
    return (0, *accumulate(len(line) + 1 for line in lines_of(text)))


def _lines_naming(text: str, lines: list[str], paths: set[str]) -> set[int]:
    """The indexes of the lines holding one of the paths: each path found in the whole text (a
    host with thousands of rules has thousands of lines, and a control a few paths)."""
    if "" in paths:
        return set(range(len(lines)))
    starts = _line_starts(text)
    found = set()
    for path in paths - {p for p in paths if "\n" in p}:  # a line holds no newline
        at = text.find(path)
        while at != -1:
            found.add(bisect_right(starts, at) - 1)
            at = text.find(path, at + 1)
    return found


@dataclass
class Assessment:
    """Everything the checks of one host need, computed once from its Snapshot."""

    snap: Snapshot
    key: str  # the key rules are written with (remediation)
    require_all: bool = False
    accept: AuditKeys | None = None  # the keys that count as recorded (--audit-key); None: `key` alone
    blind: str = ""  # why the snapshot's files are not the host's (a container); "" when they are

    def refused(self, check: Check | str) -> Verdict | None:
        """ERROR for a check that reads the host's files when the transport cannot see them
        (hostspec.Capability.HOST_FILES); None when the check can be judged."""
        if self.blind and check in READS_HOST_FILES:
            return Verdict(Status.ERROR, f"not checked: {self.blind}")
        return None

    @property
    def keys(self) -> AuditKeys:
        return self.accept or AuditKeys.of(self.key)

    @cached_property
    def facts(self) -> KernelFacts:
        """How this host's auditctl numbers syscalls and which LSMs it runs (one probe)."""
        snap = self.snap
        return kernel_facts(snap.arch, snap.syscall_tables, snap.lsm_list, snap.lsm_labelled, snap.selinux)

    @cached_property
    def mode(self) -> LoaderMode:
        return loader_mode(self.snap)

    @cached_property
    def boot(self) -> BootModel:
        return BootModel(self.snap, self.mode.unit)

    @cached_property
    def userspace(self) -> Userspace:
        return userspace(self.snap.audit_version, self.snap.augenrules_script)

    @cached_property
    @built_uncollected
    def persisted_lines(self) -> list[RuleLine]:
        return persisted_lines(self.snap, self.mode, self.userspace)

    @cached_property
    @built_uncollected
    def persisted(self) -> Replay:
        """The boot-time load: paths as the loader finds them at boot."""
        return replay(self.persisted_lines, boot_adder(self.snap, self.boot))

    @cached_property
    @built_uncollected
    def _live(self) -> tuple[FilterState, list[RuleLine]]:
        state, unreadable = live_state(self.snap, self.persisted_lines)
        state.silenced += self._silenced_now()
        state.unaudited = unaudited_daemons(self.snap.cmdline, self.snap.process_starts)
        state.facts = self.facts
        return state, unreadable

    @property
    def live_state(self) -> FilterState:
        return self._live[0]

    @property
    def unreadable_listing(self) -> list[RuleLine]:
        return self._live[1]

    @cached_property
    @built_uncollected
    def boot_state(self) -> FilterState:
        state = boot_state(self.snap, self.persisted)
        state.silenced += self._silenced_at_boot()
        state.facts = self.facts
        return state

    @cached_property
    def abis(self) -> tuple[str, ...]:
        return machine_abis(self.snap.arch)

    def _silenced_now(self) -> list[str]:
        reasons = []
        if self.snap.status.get("enabled") == "0":
            reasons.append("audit is disabled (auditctl -s: enabled 0): the kernel records nothing")
        if not self.snap.auditd_running:
            reasons.append("auditd is not running: no event reaches the audit log (ausearch finds nothing)")
        return reasons

    def _silenced_at_boot(self) -> list[str]:
        reasons = []
        if "audit=0" in self.snap.cmdline.split() or "audit=off" in self.snap.cmdline.split():
            reasons.append("the kernel command line has audit=0: audit is off after boot and auditd does not start")
        if self.snap.auditd_enabled in ("disabled", "masked"):
            reasons.append(f"auditd.service is {self.snap.auditd_enabled}: it does not start at boot")
        if self.persisted.enabled == "0":
            reasons.append("the persisted rules end with -e 0: audit is disabled after boot")
        return reasons

    @cached_property
    def load_evidence(self) -> tuple[str, ...]:
        """How the host loads its persisted rules at boot, and every line that fails to load then."""
        skipped = augenrules_files(self.snap, self.userspace)[1] if self.mode.loader == Loader.AUGENRULES else []
        return (
            f"loader: {self.mode.loader} ({self.mode.reason})",
            *self.userspace.evidence(),
            *skipped,
            *(f"at boot {l.where}: {l.text}: {err}" for l, err in self.persisted.failures),
        )

    def target(self, control: Control) -> Target:
        return resolve(control, self.snap)

    def audit_object(self, target: Target) -> AuditObject:
        real = real_path(target.path, self.snap)
        info = self.snap.paths.get(real) if real != target.path else target.info
        is_dir = bool(info and info.kind == "dir")
        mount_point = is_dir and any(m.point == real for m in self.boot.mounts)
        return AuditObject(real, target.control.style == "watch" and is_dir, self.boot.fstype(real), mount_point)

    @property
    def persisted_sources(self) -> list[tuple[str, str]]:
        if self.mode.loader == Loader.AUGENRULES:
            return self.snap.rules_d
        return [(AUDIT_RULES, self.snap.audit_rules or "")]

    @property
    def wanted(self) -> str:
        """`-k docker`, `-k docker or -k other`, or `recorded with any key`: what a PASS requires."""
        keys = self.keys
        return "recorded with any key" if keys.any else " or ".join(f"-k {n}" for n in keys.names)

    # -- preconditions --------------------------------------------------------------------
    def _access_error(self) -> Verdict | None:
        if self.snap.uid != 0:
            return Verdict(Status.ERROR, f"not root (uid {self.snap.uid}): use sudo=true in the host spec or --sudo")
        if not self.snap.auditctl:
            return Verdict(Status.ERROR, "auditctl not found: the audit userspace (auditd) is not installed")
        if self.snap.unreadable:
            return Verdict(Status.ERROR, "cannot read " + ", ".join(self.snap.unreadable))
        return None

    # -- control checks -------------------------------------------------------------------
    def control_verdict(self, control: Control, check: Check | str) -> Verdict:
        judge = dispatch({Check.LIVE: self._live_verdict, Check.PERSISTED: self._persisted_verdict}, check, "control")
        error = self.refused(check) or self._access_error()
        if error:
            return error
        target = self.target(control)
        if target.info is None:
            return Verdict(Status.ERROR, f"{target.path} was not examined on the host")
        notes = tuple(target.problems)
        if not target.exists:
            where = f"{target.path} does not exist on this host ({target.how})"
            if self.require_all:
                return Verdict(Status.FAIL, f"{where}; --require-all demands every audited path", notes)
            return Verdict(Status.NOT_APPLICABLE, f"not applicable: {where}", notes)
        return judge(control, target, notes)

    def judge(self, control: Control, target: Target, state: FilterState) -> tuple[list[str], list[str]]:
        """(what records the object's accesses, why some are not recorded with the key), and for
        each exclusion (docs/benchmarks.md) whether accesses below it escape the key."""
        records, problems = self.object_problems(control, target, state)
        for path in target.exclusions:
            found, why = self.excluded(path, state)
            (records if found else problems).append(why)
        return records, problems

    def object_problems(self, control: Control, target: Target, state: FilterState) -> tuple[list[str], list[str]]:
        """judge() for the control's object alone, without its exclusions."""
        obj = self.audit_object(target)
        losses = host_losses(state, obj)
        records, problems = explain(
            judge(state, obj, control.required_perms, self.abis, self.keys, self.snap.arch), self.abis
        )
        return records, losses + problems

    def excluded(self, path: str, state: FilterState) -> tuple[bool, str]:
        """Whether no access below an excluded directory is recorded with the key: a `never` rule
        must match it first wherever a rule with the key would (docs/benchmarks.md)."""
        info = self.snap.paths.get(path)
        if not (info and info.exists):
            return True, f"{path} does not exist: nothing to exclude"
        real = real_path(path, self.snap)
        obj = AuditObject(real, True, self.boot.fstype(real))
        cells = exclusion_cells(state, obj, self.abis, self.keys, self.snap.arch)
        keyed = dict.fromkeys(kr.cite() for _, before in cells for kr in before)
        nevers = dict.fromkeys(kr.cite() for kr, _ in cells if kr)
        if keyed:
            return False, (
                f"accesses below {real}, which the benchmark excludes, are recorded with the key by "
                f"{', '.join(keyed)}"
                + (f", before {', '.join(nevers)}" if nevers else "")
                + f": place `-a exit,never -F dir={real}` before it (the first matching rule decides)"
            )
        if nevers:
            return True, f"{', '.join(nevers)} excludes {real} and everything below it"
        return True, f"no rule records accesses below {real} with the key (excluded)"

    def _verdict(
        self, control: Control, target: Target, state: FilterState, looked_at: list[str], extra: tuple[str, ...]
    ) -> Verdict:
        records, problems = self.judge(control, target, state)
        obj = self.audit_object(target)
        what = f"{obj.path} and everything below it" if obj.subtree else obj.path
        aliases = tuple(f"{p}: {how}" for p, how in target.aliases.items())
        near = state.exit_near(obj.path)  # on the object, an ancestor or a descendant: not a scan of all
        notes = tuple(dict.fromkeys(kr.note for kr in near if kr.note and kr.location)) + tuple(
            dict.fromkeys(mount_point_note(obj) for kr in near if binds_hidden(kr, obj))
        )
        if not problems:
            return Verdict(Status.PASS, "; ".join(records), (f"object: {what}", *aliases, *notes, *extra))
        summary = f"{what} needs -p {control.required_perms} {self.wanted}: " + "; ".join(problems)
        unsettled = [kr.note for kr in near if kr.unsettled and kr.note in notes]
        summary = f"{unsettled[0]}; {summary}" if unsettled else summary  # the one thing that settles it
        lines = looked_at or ["no line names the path"]
        facts = (f"syscall numbers: {self.facts.numbers_from}", f"LSMs matching audit fields: {self._lsms()}")
        return Verdict(
            Status.FAIL,
            summary,
            (f"object: {what}", *records, *aliases, *notes, *(f"looked at: {x}" for x in lines), *facts, *extra),
        )

    def _lsms(self) -> str:
        lsms = self.facts.lsms
        named = "unknown" if lsms is None else ", ".join(sorted(lsms)) or "none"
        return f"{named} ({self.facts.lsms_from})"

    def _listing_error(self, limit: int | None) -> Verdict | None:
        """An ERROR when `auditctl -l` failed or is not the whole of the kernel's rules."""
        if self.snap.listing_rc != 0:
            return Verdict(Status.ERROR, f"auditctl -l failed: {self.snap.listing_text.strip()[:limit]}")
        if self._listing_shortfall:
            return Verdict(Status.ERROR, self._listing_shortfall)
        return None

    @cached_property
    def _listing_shortfall(self) -> str | None:
        """Once per host: every control's live verdict asks (a listing of thousands of rules)."""
        return listing_shortfall(self.snap)

    def _live_verdict(self, control: Control, target: Target, notes: tuple[str, ...]) -> Verdict:
        if error := self._listing_error(300):
            return error
        looked_at = _mentions([(self.snap.listing_source, self.snap.listing_text)], set(target.aliases))
        extra = tuple(f"unreadable listing line {l.where}: {l.text} ({l.error})" for l in self.unreadable_listing)
        return self._verdict(control, target, self.live_state, looked_at, extra + notes)

    def _persisted_verdict(self, control: Control, target: Target, notes: tuple[str, ...]) -> Verdict:
        result = self.persisted
        looked_at = _mentions(self.persisted_sources, set(target.aliases))
        verdict = self._verdict(control, target, self.boot_state, looked_at, self.load_evidence + notes)
        if verdict.status != Status.FAIL:
            return verdict
        names = set(target.aliases) | {self.audit_object(target).path}
        own = [(l, err) for l, err in result.failures if getattr(l.item, "path", None) in names]
        if own:
            line, err = own[0]
            return Verdict(Status.FAIL, f"persisted at {line.where} but fails to load at boot: {err}", verdict.evidence)
        if result.stopped_at:
            line, err = result.stopped_at
            after = [l for l in result.never_loaded if getattr(l.item, "path", None) in names]
            if after:
                return Verdict(
                    Status.FAIL,
                    f"persisted at {after[0].where} but never loads at boot: loading stops at {line.where} ({err})",
                    verdict.evidence,
                )
        return verdict

    # -- host checks ----------------------------------------------------------------------
    def host_verdict(self, check: Check | str) -> Verdict:
        judges = {
            Check.AUDITD_INSTALLED: self._installed_verdict,
            Check.AUDITD_RUNNING: self._running_verdict,
            Check.AUDIT_ENABLED: self._enabled_verdict,
            Check.LOAD_HEALTH: self._load_health_verdict,
            Check.EVENT_LOSS: self._event_loss_verdict,
        }
        return self.refused(check) or dispatch(judges, check, "host")()

    def _installed_verdict(self) -> Verdict:
        if self.snap.auditd and self.snap.auditctl:
            return Verdict(Status.PASS, f"auditd at {self.snap.auditd}, auditctl at {self.snap.auditctl}")
        return Verdict(Status.FAIL, "auditd is not installed (no auditd or auditctl in PATH)")

    def _running_verdict(self) -> Verdict:
        """The kernel names the process it sends records to (auditctl -s: pid); a process's name
        proves nothing, any user can call one auditd. Only root may ask the kernel."""
        if self.snap.auditd_running:
            return Verdict(Status.PASS, f"auditd is running (pid {self.snap.status.get('pid', '?')}, root's)")
        if self.snap.uid != 0:
            return Verdict(Status.ERROR, f"not root (uid {self.snap.uid}): use sudo=true in the host spec or --sudo")
        if self.snap.auditctl and self.snap.status_rc != 0:
            return Verdict(Status.ERROR, f"cannot ask the kernel for auditd's pid: {self.snap.status_text.strip()}")
        return Verdict(Status.FAIL, "auditd is not running: the kernel's events are not recorded")

    @property
    def immutable(self) -> bool:
        return self.snap.status.get("enabled") == "2"

    def _enabled_verdict(self) -> Verdict:
        if error := self._access_error():
            return error
        if self.snap.status_rc != 0:
            return Verdict(Status.ERROR, f"auditctl -s failed: {self.snap.status_text.strip()}")
        enabled = self.snap.status.get("enabled")
        if enabled == "2":
            return Verdict(
                Status.PASS, "enabled 2: immutable; rules cannot change until reboot", (self.snap.status_text,)
            )
        if enabled == "1":
            return Verdict(Status.PASS, "enabled 1 (not immutable)", (self.snap.status_text,))
        return Verdict(Status.FAIL, f"audit is disabled (enabled {enabled})", (self.snap.status_text,))

    @cached_property
    @built_uncollected
    def _not_live(self) -> list[Loaded]:
        """The boot-time load's rules the kernel does not hold now (AuditRule.held: each rule's
        identity once it is added, thousands on some hosts)."""
        state = self.live_state
        live = {
            (kr.rule if action == kr.rule.action else replace(kr.rule, action=action)).held(kind == WatchKind.TREE)
            for kr in (*state.exit, *state.task, *state.exclude, *state.filesystem)
            for action in kr.actions
            for kind in kr.kinds
        }
        return [loaded for loaded in self.persisted.rules if loaded.held not in live]

    def _load_health_verdict(self) -> Verdict:
        if error := self._access_error():
            return error
        if error := self._listing_error(None):
            return error
        result = self.persisted
        missing = self._not_live
        evidence = list(self.load_evidence)
        if result.stopped_at:
            line, err = result.stopped_at
            evidence.append(f"{len(result.never_loaded)} rule line(s) after it never load")
            return Verdict(
                Status.FAIL,
                f"at boot, loading stops at {line.where} `{line.text}`: {err}",
                tuple(evidence + [f"never loads: {l.where}: {l.text}" for l in result.never_loaded]),
            )
        if missing:
            return Verdict(
                Status.FAIL,
                f"{len(missing)} persisted rule(s) are not in the kernel; first: "
                f"`{missing[0].line.text}` ({missing[0].line.where})",
                tuple(evidence + [f"not loaded: `{m.line.text}` ({m.line.where})" for m in missing]),
            )
        return Verdict(Status.PASS, f"all {len(result.rules)} persisted rules are in the kernel", tuple(evidence))

    # -- event loss -----------------------------------------------------------------------
    def _live_settings(self) -> dict[str, Setting] | None:
        status = self.snap.status
        values = {name: c_ulong(status.get(name, "")) for name in STATUS_FIELD.values()}
        if any(v is None for v in values.values()):
            return None
        return {name: Setting(name, v, "auditctl -s") for name, v in values.items() if v is not None}

    def _boot_settings(self) -> dict[str, Setting]:
        """What the boot-time load leaves set: the last line that set each, or the kernel's default."""
        cmdline = dict(w.partition("=")[::2] for w in self.snap.cmdline.split())
        settings = {name: Setting(name, v, "kernel default, no rule sets it") for name, v in KERNEL_DEFAULT.items()}
        if (limit := c_ulong(cmdline.get("audit_backlog_limit", ""))) is not None:
            settings["backlog_limit"] = Setting("backlog_limit", limit, "kernel command line audit_backlog_limit")
        for option, line in self.persisted.settings.items():
            value = c_ulong(getattr(line.item, "value", None) or "")
            name = STATUS_FIELD[option]
            # auditctl refuses a value that does not start with a digit: the line fails and sets nothing.
            if value is not None:
                settings[name] = Setting(name, value, f"`{line.text}` at {line.where}")
        return settings

    def _event_loss_verdict(self) -> Verdict:
        if error := self._access_error():
            return error
        live = self._live_settings() if self.snap.status_rc == 0 else None
        if live is None:
            return Verdict(
                Status.ERROR, f"auditctl -s shows no rate/backlog settings: {self.snap.status_text.strip()[:300]}"
            )
        boot = self._boot_settings()
        found = [f"live: {p}" for p in problems(live)] + [f"after boot: {p}" for p in problems(boot)]
        evidence = (
            *(f"live {s.name} {s.value} ({s.where})" for s in live.values()),
            *(f"after boot {s.name} {s.value} ({s.where})" for s in boot.values()),
            f"lost {self.snap.status.get('lost', '?')}: records the kernel dropped since boot or the last "
            "--reset-lost (shown, not judged)",
        )
        if found:
            return Verdict(Status.FAIL, "; ".join(found), evidence)
        return Verdict(
            Status.PASS, f"no rate limit, a backlog of at least {BACKLOG_FLOOR} records and a backlog wait", evidence
        )
