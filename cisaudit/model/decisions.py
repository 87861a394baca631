"""The verdicts of what a run does to a host, beside the snapshot's own (cisaudit/model/evaluate.py):
--verify-events' accesses, --remediate's change, --backout's restore (docs/architecture.md).

Pure: each takes what the host reported, already parsed by the host layer
(cisaudit/host/events.py, cisaudit/host/remediation_io.py), and the host's Assessment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from cisaudit.model.catalogue import Control, controls
from cisaudit.model.evaluate import Assessment
from cisaudit.model.kernel import AuditKeys
from cisaudit.model.plan import Plan
from cisaudit.model.verdict import CONTROL_CHECKS, Check, Status, Verdict


class ChangeStatus(StrEnum):
    """The `status=` of a remediation script's result line (cisaudit/host/scripts/apply.sh, backout.sh)."""

    APPLIED = "applied"
    UNCHANGED = "unchanged"
    REBOOT_REQUIRED = "reboot-required"
    DRY_RUN = "dry-run"
    RESTORED = "restored"
    NOTHING_TO_DO = "nothing-to-do"
    FAILED = "failed"
    REFUSED = "refused"
    MISMATCH = "mismatch"
    UNKNOWN = "unknown"  # no result line came back, or one this version does not know


# After these the host is as the caller wanted (the script exits 0).
OK_STATUSES = frozenset(
    {
        ChangeStatus.APPLIED,
        ChangeStatus.UNCHANGED,
        ChangeStatus.REBOOT_REQUIRED,
        ChangeStatus.DRY_RUN,
        ChangeStatus.RESTORED,
        ChangeStatus.NOTHING_TO_DO,
    }
)
_BACKOUT_OK = (ChangeStatus.RESTORED, ChangeStatus.NOTHING_TO_DO, ChangeStatus.DRY_RUN)


@dataclass
class RemediationResult:
    """What one apply.sh or backout.sh run reported.

    In a dry run, `added`/`removed`/`restored` list what WOULD change.
    `fields` holds every key=value of the result line (mode, target, journal, ...).
    """

    status: ChangeStatus
    run_id: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES


@dataclass
class Change:
    """What this run did to one host (cisaudit/run/change.py makes it)."""

    plan: Plan | None = None
    applied: RemediationResult | None = None
    reverted: RemediationResult | None = None
    error: str | None = None  # a failed change: every later check of the host reports it
    unknown_run: str | None = None  # an apply whose outcome never came back (connection lost, timeout)

    def remediated(self, control_id: str) -> bool:
        """This run's --remediate added (not just planned) a rule for the control."""
        return bool(
            self.plan
            and self.applied
            and self.applied.ok
            and self.applied.status != ChangeStatus.DRY_RUN
            and control_id in {cid for cid, _ in self.plan.rules}
        )

    def summary(self) -> str:
        parts = []
        if self.applied and self.applied.status == ChangeStatus.DRY_RUN:
            parts.append(_dry_run_summary(self.applied))
        elif self.applied:
            parts.append(
                f"applied run {self.applied.run_id}: {self.applied.status}, {len(self.applied.added)} rule(s) added"
            )
        if self.reverted:
            parts.append(f"reverted run {self.reverted.run_id or '-'}: {self.reverted.status}")
        return "; ".join(parts)


def _dry_run_summary(result: RemediationResult) -> str:
    """What a dry run would add, e.g. "dry run, nothing changed: would add 1 rule(s) to FILE: RULE"."""
    tmpfiles = [a.removeprefix("tmpfiles.d: ") for a in result.added if a.startswith("tmpfiles.d: ")]
    rules = [a for a in result.added if not a.startswith("tmpfiles.d: ")]
    text = f"dry run, nothing changed: would add {len(rules)} rule(s) to {result.fields.get('target', '?')}"
    text += (": " + "; ".join(rules)) if rules else ""
    return text + (f"; would write tmpfiles.d: {'; '.join(tmpfiles)}" if tmpfiles else "")


def remediation_verdict(change: Change, assessment: Assessment, version: str) -> Verdict:
    """--remediate's result, judged on the re-probed host: every control it added a rule for passes."""
    plan, result = change.plan, change.applied
    if plan is None:
        raise ValueError("remediation_verdict needs the change's plan (--remediate)")
    evidence = tuple(f"left alone {cid}: {why}" for cid, why in plan.left_alone) + tuple(
        f"now carry {plan.key!r} instead (the rules go first): {line}" for line in plan.retagged
    )
    if result is None:
        return Verdict(Status.PASS, "nothing to change: every applicable control passes or is left alone", evidence)
    verb = "would add" if result.status == ChangeStatus.DRY_RUN else "added"
    evidence += tuple(result.messages) + tuple(f"{verb}: {r}" for r in result.added)
    if result.status == ChangeStatus.DRY_RUN:
        return Verdict(Status.PASS, "dry run, nothing changed; the plan: " + plan.describe(), evidence)
    if result.status == ChangeStatus.REBOOT_REQUIRED:
        return Verdict(
            Status.FAIL,
            f"reboot required: rules persisted in {plan.target}, but the kernel is immutable "
            f"(enabled 2) until reboot (run {result.run_id})",
            evidence,
        )
    if not result.ok:
        return Verdict(Status.FAIL, f"remediation {result.status} (run {result.run_id or '-'})", evidence)
    by_id = {c.id: c for c in controls(version)}
    still = [
        cid
        for cid, _ in plan.rules
        for check in CONTROL_CHECKS
        if assessment.control_verdict(by_id[cid], check).status != Status.PASS
    ]
    stopped = assessment.persisted.stopped_at
    if plan.tmpfiles and stopped and stopped[0].item and any(t.split()[1] in stopped[1] for t in plan.tmpfiles):
        still.append(f"the boot-time load still stops at {stopped[0].where}")
    if still:
        return Verdict(
            Status.FAIL, "remediated controls still fail after re-probe: " + ", ".join(sorted(set(still))), evidence
        )
    verb = (
        "added nothing new (already in place)"
        if result.status == ChangeStatus.UNCHANGED
        else f"added {len(result.added)}"
    )
    return Verdict(Status.PASS, f"run {result.run_id}: {verb}; " + plan.describe(), evidence)


def backout_verdict(result: RemediationResult) -> Verdict:
    """--backout's result: files and kernel rules equal the journal's before state, or why not."""
    evidence = tuple(
        result.messages
        + [f"restored: {r}" for r in result.restored]
        + [f"removed: {r}" for r in result.removed]
        + [f"mismatch: {m}" for m in result.mismatches]
    )
    if result.status == ChangeStatus.RESTORED:
        return Verdict(
            Status.PASS,
            f"backout restored (run {result.run_id or '-'}): files and kernel rules equal the journal's before state",
            evidence,
        )
    if result.status in _BACKOUT_OK:
        return Verdict(Status.PASS, f"backout {result.status}", evidence)
    return Verdict(Status.FAIL, f"backout {result.status} (run {result.run_id or '-'})", evidence)


# -- --verify-events ----------------------------------------------------------------------


@dataclass(frozen=True)
class Accesses:
    """Access `path` once per class in `classes`; with `subtree`, a file inside it too."""

    path: str
    classes: str
    subtree: bool = False


REFUSED = "refused"  # a Trigger's label for a path the events script would not touch


@dataclass(frozen=True)
class Trigger:
    """One access the events script made: its class (or a caller's own label), process and path."""

    label: str
    pid: int
    path: str


def accesses_of(assessment: Assessment, control: Control) -> Accesses:
    """The accesses that prove a control: its classes on its path, and on a file inside a
    directory a watch covers (a syscall-style rule covers the directory's inode only)."""
    target = assessment.target(control)
    return Accesses(target.path, control.required_perms, assessment.audit_object(target).subtree)


def _keys(key: str | AuditKeys) -> str:
    keys = AuditKeys.of(key)
    return "any key" if keys.any else f"key {keys}"


def events_verdict(
    assessment: Assessment, control: Control, key: str | AuditKeys, recorded: Mapping[Trigger, list[str]]
) -> Verdict:
    """The control's `events` check from what auditd recorded for each access (host/events.py)."""
    live = assessment.control_verdict(control, Check.LIVE)
    if live.status != Status.PASS:
        if live.status != Status.FAIL:
            return live
        return Verdict(Status.FAIL, "no live rule to produce events: " + live.summary)
    accesses = accesses_of(assessment, control)
    mine: dict[Trigger, list[str]] = {}  # one entry per (class, path): another control may have made the same access
    for t, events in recorded.items():
        if t.path == accesses.path or (accesses.subtree and t.path.startswith(accesses.path + "/")):
            same = next((k for k in mine if (k.label, k.path) == (t.label, t.path)), None)
            if same is None:
                mine[t] = events
            elif events and not mine[same]:
                del mine[same]
                mine[t] = events
    if refused := sorted({t.path for t in mine if t.label == REFUSED}):
        return Verdict(
            Status.ERROR,
            f"not accessed: {', '.join(refused)} is missing, or it or a directory above it can be changed by a "
            "user other than root (an access made as root there could be redirected)",
            ("rule: " + live.summary,),
        )
    evidence = tuple(
        f"{t.label} on {t.path} (pid {t.pid}): {', '.join(events) or 'no event'}" for t, events in mine.items()
    )
    missing = [f"{t.label} on {t.path}" for t, events in mine.items() if not events]
    if mine and not missing:
        return Verdict(
            Status.PASS,
            f"auditd recorded an event with {_keys(key)} for each access ({accesses.classes}) to {accesses.path}",
            evidence,
        )
    what = ", ".join(missing) if mine else f"any access to {accesses.path} (none was made)"
    return Verdict(
        Status.FAIL,
        f"no event with {_keys(key)} in auditd's logs for {what}",
        evidence + ("rule: " + live.summary,),
    )
