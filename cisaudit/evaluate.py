"""Verdicts per (host, control, check): pure functions of one Snapshot.

A control is met when, for every ABI the host runs and every required permission, the FIRST
rule the kernel would match for the path (the exit filter stops at the first match) is an
unconditional `always` rule carrying the key. That one rule decides each (ABI, permission)
cell, so `never` rules that come first, other keys, narrower perms, arch-only rules and
substring neighbours all give the verdict the kernel's behaviour gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from cisaudit.catalogue import Control
from cisaudit.loader import (
    AUDIT_RULES,
    Loaded,
    LoaderMode,
    Replay,
    live_rules,
    loader_mode,
    persisted_lines,
    replay,
)
from cisaudit.locate import Target, resolve
from cisaudit.probe import Snapshot
from cisaudit.rules import ARCH_ABI, RuleLine, lines_of

PASS, FAIL, NOT_APPLICABLE, ERROR = "pass", "fail", "not-applicable", "error"
CONTROL_CHECKS = ("live", "persisted")
HOST_CHECKS = ("auditd-installed", "auditd-running", "audit-enabled", "load-health")
PERM_NAMES = {"r": "read", "w": "write", "x": "execute", "a": "attribute change"}


@dataclass(frozen=True)
class Verdict:
    status: str
    summary: str
    evidence: tuple[str, ...] = ()


def required_abis(arch: str) -> tuple[str, ...]:
    """64-bit kernels also run 32-bit syscalls, so both ABIs must be covered there."""
    return ("b32",) if ARCH_ABI.get(arch) == "b32" else ("b64", "b32")


def _cite(loaded: Loaded) -> str:
    return f"`{loaded.line.text}` ({loaded.line.where})"


def _describe(cells: list[tuple[str, str]], abis: tuple[str, ...]) -> str:
    """`read, write` or `read on b32`: permissions grouped by the ABIs they fail on."""
    by_perm: dict[str, list[str]] = {}
    for perm, abi in cells:
        by_perm.setdefault(perm, []).append(abi)
    groups: dict[tuple[str, ...], list[str]] = {}
    for perm, perm_abis in by_perm.items():
        groups.setdefault(tuple(perm_abis), []).append(PERM_NAMES[perm])
    return "; ".join(", ".join(names) + ("" if set(group) == set(abis) else f" on {'/'.join(group)}")
                     for group, names in groups.items())


def coverage(rules: list[Loaded], paths: set[str], perms: str, key: str,
             abis: tuple[str, ...]) -> tuple[list[Loaded], list[str]]:
    """The rules that record each (permission, ABI) cell, and why nothing records the others with the key."""
    deciding: list[Loaded] = []
    missing = "no rule on the path records"
    problems: dict[str, list[tuple[str, str]]] = {}
    for perm in perms:
        for abi in abis:
            reason = missing
            for loaded in rules:
                rule = loaded.rule
                if rule.filter != "exit" or rule.path not in paths:
                    continue
                if rule.arch not in (None, abi) or perm not in rule.perms:
                    continue
                good = rule.action == "always" and key in rule.keys
                if not rule.unconditional:
                    if good:
                        continue  # records only a subset, with our key; a later rule may cover the rest
                    reason = f"{_cite(loaded)} matches first for some events and is conditional"
                    break
                if good:
                    reason = ""
                    if loaded not in deciding:
                        deciding.append(loaded)
                elif rule.action == "never":
                    reason = f"{_cite(loaded)} is a `never` rule and matches first"
                else:
                    reason = (f"{_cite(loaded)} matches first with key(s) "
                              f"{', '.join(rule.keys) or 'none'}, not {key!r}")
                break
            if reason:
                problems.setdefault(reason, []).append((perm, abi))
    return deciding, [f"{reason} {_describe(cells, abis)}" if reason == missing
                      else f"{reason} [{_describe(cells, abis)}]" for reason, cells in problems.items()]


def _mentions(texts: list[tuple[str, str]], paths: set[str]) -> list[str]:
    """Every line that names one of the paths, even commented or a longer neighbour."""
    seen = []
    for source, text in texts:
        for lineno, line in enumerate(lines_of(text), 1):
            if any(p in line for p in paths):
                seen.append(f"{source}:{lineno}: {line.strip()}")
    return seen


@dataclass
class Assessment:
    """Everything the checks of one host need, computed once from its Snapshot."""

    snap: Snapshot
    key: str
    require_all: bool = False

    @cached_property
    def mode(self) -> LoaderMode:
        return loader_mode(self.snap)

    @cached_property
    def persisted_lines(self) -> list[RuleLine]:
        return persisted_lines(self.snap, self.mode)

    @cached_property
    def persisted(self) -> Replay:
        return replay(self.persisted_lines, self.snap.paths.get)

    @cached_property
    def live(self) -> tuple[list[Loaded], list[RuleLine]]:
        return live_rules(self.snap, self.persisted.rules)

    @cached_property
    def abis(self) -> tuple[str, ...]:
        return required_abis(self.snap.arch)

    @cached_property
    def load_evidence(self) -> tuple[str, ...]:
        """How the host loads its persisted rules, and every line that fails to load."""
        return (f"loader: {self.mode.mode} ({self.mode.reason})",
                *(f"{l.where}: {l.text}: {err}" for l, err in self.persisted.failures))

    def target(self, control: Control) -> Target:
        return resolve(control, self.snap)

    @property
    def persisted_sources(self) -> list[tuple[str, str]]:
        if self.mode.mode == "augenrules":
            return self.snap.rules_d
        return [(AUDIT_RULES, self.snap.audit_rules or "")]

    # -- preconditions --------------------------------------------------------------------
    def _access_error(self) -> Verdict | None:
        if self.snap.uid != 0:
            return Verdict(ERROR, f"not root (uid {self.snap.uid}): use sudo=true in the host spec "
                                  "or --sudo")
        if not self.snap.auditctl:
            return Verdict(ERROR, "auditctl not found: the audit userspace (auditd) is not installed")
        if self.snap.unreadable:
            return Verdict(ERROR, "cannot read " + ", ".join(self.snap.unreadable))
        return None

    # -- control checks -------------------------------------------------------------------
    def control_verdict(self, control: Control, check: str) -> Verdict:
        error = self._access_error()
        if error:
            return error
        target = self.target(control)
        if target.info is None:
            return Verdict(ERROR, f"{target.path} was not examined on the host")
        notes = tuple(target.problems)
        if not target.exists:
            where = f"{target.path} does not exist on this host ({target.how})"
            if self.require_all:
                return Verdict(FAIL, f"{where}; --require-all demands every audited path", notes)
            return Verdict(NOT_APPLICABLE, f"not applicable: {where}", notes)
        if check == "live":
            return self._live_verdict(control, target, notes)
        return self._persisted_verdict(control, target, notes)

    def _judge(self, control: Control, target: Target, rules: list[Loaded],
               looked_at: list[str]) -> Verdict:
        paths = set(target.aliases)
        deciding, problems = coverage(rules, paths, control.required_perms, self.key, self.abis)
        aliases = [f"{p}: {how}" for p, how in target.aliases.items()]
        if not problems:
            via = [f"{_cite(d)} on {d.rule.path}, {target.aliases[d.rule.path]}" for d in deciding]
            return Verdict(PASS, "recorded by " + "; ".join(_cite(d) for d in deciding),
                           tuple(via + aliases))
        summary = f"{target.path} needs -p {control.required_perms} -k {self.key}: " + "; ".join(problems)
        lines = looked_at or ["no line names the path"]
        return Verdict(FAIL, summary, tuple(aliases + [f"looked at: {x}" for x in lines]))

    def _live_verdict(self, control: Control, target: Target, notes: tuple[str, ...]) -> Verdict:
        if self.snap.listing_rc != 0:
            return Verdict(ERROR, f"auditctl -l failed: {self.snap.listing_text.strip()}")
        rules, unreadable = self.live
        looked_at = _mentions([("auditctl -l", self.snap.listing_text)], set(target.aliases))
        verdict = self._judge(control, target, rules, looked_at)
        extra = tuple(f"unreadable listing line {l.where}: {l.text} ({l.error})" for l in unreadable)
        return Verdict(verdict.status, verdict.summary, verdict.evidence + extra + notes)

    def _persisted_verdict(self, control: Control, target: Target,
                           notes: tuple[str, ...]) -> Verdict:
        result = self.persisted
        looked_at = _mentions(self.persisted_sources, set(target.aliases))
        verdict = self._judge(control, target, result.rules, looked_at)
        evidence = list(self.load_evidence)
        own = [(l, err) for l, err in result.failures if getattr(l.item, "path", None) in target.aliases]
        if verdict.status == FAIL and own:
            line, err = own[0]
            return Verdict(FAIL, f"persisted at {line.where} but fails to load: {err}",
                           verdict.evidence + tuple(evidence) + notes)
        if verdict.status == FAIL and result.stopped_at:
            line, err = result.stopped_at
            after = [l for l in result.never_loaded
                     if getattr(l.item, "path", None) in target.aliases]
            if after:
                return Verdict(FAIL, f"persisted at {after[0].where} but never loads: loading stops "
                                     f"at {line.where} ({err})",
                               verdict.evidence + tuple(evidence) + notes)
        return Verdict(verdict.status, verdict.summary, verdict.evidence + tuple(evidence) + notes)

    # -- host checks ----------------------------------------------------------------------
    def host_verdict(self, check: str) -> Verdict:
        snap = self.snap
        if check == "auditd-installed":
            if snap.auditd and snap.auditctl:
                return Verdict(PASS, f"auditd at {snap.auditd}, auditctl at {snap.auditctl}")
            return Verdict(FAIL, "auditd is not installed (no auditd or auditctl in PATH)")
        if check == "auditd-running":
            if snap.auditd_running:
                return Verdict(PASS, "auditd is running")
            return Verdict(FAIL, "auditd is not running: the kernel's events are not recorded")
        error = self._access_error()
        if error:
            return error
        if check == "audit-enabled":
            return self._enabled_verdict()
        return self._load_health_verdict()

    @property
    def immutable(self) -> bool:
        return self.snap.status.get("enabled") == "2"

    def _enabled_verdict(self) -> Verdict:
        if self.snap.status_rc != 0:
            return Verdict(ERROR, f"auditctl -s failed: {self.snap.status_text.strip()}")
        enabled = self.snap.status.get("enabled")
        if enabled == "2":
            return Verdict(PASS, "enabled 2: immutable; rules cannot change until reboot",
                           (self.snap.status_text,))
        if enabled == "1":
            return Verdict(PASS, "enabled 1 (not immutable)", (self.snap.status_text,))
        return Verdict(FAIL, f"audit is disabled (enabled {enabled})", (self.snap.status_text,))

    def _load_health_verdict(self) -> Verdict:
        if self.snap.listing_rc != 0:
            return Verdict(ERROR, f"auditctl -l failed: {self.snap.listing_text.strip()}")
        result = self.persisted
        live = {l.rule.identity for l in self.live[0]}
        missing = [l for l in result.rules if l.rule.identity not in live]
        evidence = list(self.load_evidence)
        if result.stopped_at:
            line, err = result.stopped_at
            evidence.append(f"{len(result.never_loaded)} rule line(s) after it never load")
            return Verdict(FAIL, f"loading stops at {line.where} `{line.text}`: {err}",
                           tuple(evidence + [f"never loads: {l.where}: {l.text}"
                                             for l in result.never_loaded]))
        if missing:
            return Verdict(FAIL, f"{len(missing)} persisted rule(s) are not in the kernel; first: "
                                 f"{_cite(missing[0])}",
                           tuple(evidence + [f"not loaded: {_cite(m)}" for m in missing]))
        return Verdict(PASS, f"all {len(result.rules)} persisted rules are in the kernel",
                       tuple(evidence))
