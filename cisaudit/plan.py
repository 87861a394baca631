"""Remediation plan: which rule to add for each failing control, decided from the Snapshot.

Pure code. A rule is planned only when adding it (after every existing rule, where the tool
writes) makes the control pass in a simulation of both the live list and the boot-time
load; otherwise the control is left alone with the reason (never edit, narrow or delete a
rule the tool did not write, and never write a rule that would break loading).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from cisaudit.catalogue import Control
from cisaudit.evaluate import FAIL, NOT_APPLICABLE, PASS, Assessment, coverage
from cisaudit.loader import Loaded, persisted_lines, replay
from cisaudit.probe import Snapshot
from cisaudit.rules import AuditRule, RuleLine, parse_rule

MANAGED_FILE = "/etc/audit/rules.d/50-cisaudit-docker.rules"
AUDIT_RULES = "/etc/audit/audit.rules"


@dataclass(frozen=True)
class Plan:
    mode: str
    target: str  # the managed rules.d file, or audit.rules in auditctl mode
    rules: tuple[tuple[str, str], ...]  # (control id, rule line) to add
    left_alone: tuple[tuple[str, str], ...]  # (control id, why the tool does not touch it)

    @property
    def rule_lines(self) -> list[str]:
        return [rule for _, rule in self.rules]

    def describe(self) -> str:
        if not self.rules:
            return "nothing to add"
        return f"add to {self.target} ({self.mode}) and load: " + "; ".join(
            f"{cid}: {rule}" for cid, rule in self.rules)


def _version_key(name: str) -> list:
    """Close to `ls -v`, the order augenrules reads rules.d in."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def with_rules(snap: Snapshot, mode: str, target: str, rules: list[str]) -> Snapshot:
    """The snapshot as it would be with `rules` written where the tool writes them."""
    text = "".join(rule + "\n" for rule in rules)
    if mode == "augenrules":
        files = dict(snap.rules_d)
        files[target] = files.get(target, "") + text
        ordered = sorted(files.items(), key=lambda item: _version_key(item[0].rsplit("/", 1)[-1]))
        return replace(snap, rules_d=ordered)
    lines = (snap.audit_rules or "").splitlines(keepends=True)
    at = next((i for i, line in enumerate(lines) if line.lstrip().startswith("-e")), len(lines))
    return replace(snap, audit_rules="".join(lines[:at]) + text + "".join(lines[at:]))


def make_plan(assessment: Assessment, selected: list[Control]) -> Plan:
    mode = assessment.mode.mode
    target = MANAGED_FILE if mode == "augenrules" else AUDIT_RULES
    planned: list[tuple[str, str]] = []
    left: list[tuple[str, str]] = []
    if mode == "none":  # nowhere the boot reads: a rule written anywhere would be lost
        return Plan(mode, target, (), tuple((c.id, assessment.mode.reason) for c in selected))
    for control in selected:
        live = assessment.control_verdict(control, "live")
        persisted = assessment.control_verdict(control, "persisted")
        statuses = {live.status, persisted.status}
        if statuses == {PASS} or NOT_APPLICABLE in statuses:
            continue
        if statuses - {PASS, FAIL}:
            left.append((control.id, (live if live.status not in (PASS, FAIL) else persisted).summary))
            continue
        stopped = assessment.persisted.stopped_at
        located = assessment.target(control)
        unreached = [l for l in assessment.persisted.never_loaded if getattr(l.item, "path", None) in located.aliases]
        if stopped and unreached:  # adding a copy would duplicate it; the broken line is the fault
            left.append((control.id, f"persisted at {unreached[0].where} but never loads: loading stops at "
                                     f"{stopped[0].where} ({stopped[1]}); fix that line"))
            continue
        if live.status == FAIL and persisted.status == PASS:
            left.append((control.id, "persisted but not in the kernel: the boot-time load is broken "
                                     "(see load-health); reload or reboot after fixing it"))
            continue
        rule = control.rule_text(located.path, assessment.key)
        planned.append((control.id, rule))
    return _verified(assessment, mode, target, planned, left, selected)


def _verified(assessment: Assessment, mode: str, target: str, planned: list[tuple[str, str]],
              left: list[tuple[str, str]], selected: list[Control]) -> Plan:
    """Keep only rules that make their control pass in both simulations and load cleanly."""
    snap = assessment.snap
    after = with_rules(snap, mode, target, [rule for _, rule in planned])
    boot = replay(persisted_lines(after, assessment.mode), after.paths.get)
    live = list(assessment.live[0])
    for _, rule in planned:
        item = parse_rule(rule)
        assert isinstance(item, AuditRule)
        live.append(Loaded(item, RuleLine("planned", 0, rule, item)))
    by_id = {c.id: c for c in selected}
    keep = []
    for cid, rule in planned:
        target_path = assessment.target(by_id[cid])
        paths = set(target_path.aliases)
        perms = by_id[cid].required_perms
        live_problems = coverage(live, paths, perms, assessment.key, assessment.abis)[1]
        boot_problems = coverage(boot.rules, paths, perms, assessment.key, assessment.abis)[1]
        if boot.stopped_at and any(l.text == rule for l in boot.never_loaded):
            line, err = boot.stopped_at
            left.append((cid, f"would never load at boot: loading stops at {line.where} ({err})"))
        elif live_problems or boot_problems:
            left.append((cid, "an existing rule the tool did not write keeps it failing: "
                              + "; ".join(live_problems or boot_problems)))
        else:
            keep.append((cid, rule))
    return Plan(mode, target, tuple(keep), tuple(left))
