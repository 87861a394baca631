"""--remediate / --backout / --dry-run: change a host before its checks, and undo it after.

Per host, on the worker that owns it (HostScheduling): plan (pure) -> one apply command under
the host's lock -> re-probe; the checks then judge the changed host. With --backout too, the
last test of the host reverts the change and reports whether files and kernel rules are
exactly as the journal recorded before. --backout alone undoes an earlier run first.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import pytest

from cisaudit.host.remediation_io import RemediationResult, parse_result, render_apply, render_backout
from cisaudit.host.session import HostSession, unusable_output
from cisaudit.host.transport import HostError
from cisaudit.model.catalogue import benchmark, controls, select
from cisaudit.model.evaluate import FAIL, PASS, Verdict
from cisaudit.model.plan import Plan, make_plan


@dataclass
class Change:
    """What this run did to one host."""

    plan: Plan | None = None
    applied: RemediationResult | None = None
    reverted: RemediationResult | None = None
    error: str | None = None  # a failed change: every later check of the host reports it
    unknown_run: str | None = None  # an apply whose outcome never came back (connection lost, timeout)


def _new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def prepare(session: HostSession, config: pytest.Config) -> Change:
    """Make the host's change once, before its first verdict (idempotent per session)."""
    if session.change is None:
        session.change = Change()
        try:
            _make_change(session, session.change, config)
        except HostError as exc:
            session.change.error = f"change failed: {exc}"
        except Exception as exc:  # noqa: BLE001 - planning on crafted data: this host's error only
            session.change.error = f"change failed: {unusable_output(exc)}"
    if session.change.error:
        raise HostError(session.change.error)
    return session.change


def _make_change(session: HostSession, change: Change, config: pytest.Config) -> None:
    dry_run = config.getoption("dry_run")
    if config.getoption("backout") and not config.getoption("remediate"):
        change.reverted = parse_result(session.run(render_backout(None, dry_run))[1])
        if not dry_run:
            session.refresh()
        return
    if not config.getoption("remediate"):
        return
    version = config.getoption("benchmark")
    change.plan = make_plan(session.assessment(), select(config.getoption("controls"), version), benchmark(version))
    if change.plan.rules or change.plan.tmpfiles:
        run_id = _new_run_id()
        try:
            _, out, _ = session.run(
                render_apply(
                    run_id,
                    change.plan.mode,
                    change.plan.target,
                    change.plan.rule_lines,
                    dry_run,
                    tmpfiles=list(change.plan.tmpfiles),
                )
            )
        except HostError as exc:
            if dry_run:
                raise
            change.unknown_run = run_id  # the script may have run partly, wholly or not at all
            raise HostError(f"host state unknown ({exc}); back out run {run_id} with --backout") from None
        change.applied = parse_result(out)
        if not dry_run:
            session.refresh()


def remediation_verdict(session: HostSession) -> Verdict:
    change = session.change
    assert change is not None and change.plan is not None
    plan, result = change.plan, change.applied
    evidence = tuple(f"left alone {cid}: {why}" for cid, why in plan.left_alone)
    if result is None:
        return Verdict(PASS, "nothing to change: every applicable control passes or is left alone", evidence)
    evidence += tuple(result.messages) + tuple(f"added: {r}" for r in result.added)
    if result.status == "dry-run":
        return Verdict(PASS, "dry run, nothing changed: would " + plan.describe(), evidence)
    if result.status == "reboot-required":
        return Verdict(
            FAIL,
            f"reboot required: rules persisted in {plan.target}, but the kernel is immutable "
            f"(enabled 2) until reboot (run {result.run_id})",
            evidence,
        )
    if not result.ok:
        return Verdict(FAIL, f"remediation {result.status} (run {result.run_id or '-'})", evidence)
    assessment = session.assessment()
    by_id = {c.id: c for c in controls(session.version)}
    still = [
        cid
        for cid, _ in plan.rules
        for check in ("live", "persisted")
        if assessment.control_verdict(by_id[cid], check).status != PASS
    ]
    if (
        plan.tmpfiles
        and assessment.persisted.stopped_at
        and assessment.persisted.stopped_at[0].item
        and any(t.split()[1] in assessment.persisted.stopped_at[1] for t in plan.tmpfiles)
    ):
        still.append(f"the boot-time load still stops at {assessment.persisted.stopped_at[0].where}")
    if still:
        return Verdict(
            FAIL, "remediated controls still fail after re-probe: " + ", ".join(sorted(set(still))), evidence
        )
    verb = "added nothing new (already in place)" if result.status == "unchanged" else f"added {len(result.added)}"
    return Verdict(PASS, f"run {result.run_id}: {verb}; " + plan.describe(), evidence)


def backout_verdict(session: HostSession, config: pytest.Config) -> Verdict:
    """Revert and verify; after an apply whose outcome is unknown, still try its run id."""
    try:
        change = prepare(session, config)
    except HostError:
        change = session.change
        if change is None or change.unknown_run is None:
            raise
        session.drop_connection()  # the old one timed out or died mid-apply
    if change.reverted is None:  # --remediate --backout: revert now, after the host's checks
        run_id = change.applied.run_id if change.applied else change.unknown_run
        if run_id is None:
            return Verdict(PASS, "nothing was applied, nothing to revert")
        change.reverted = parse_result(session.run(render_backout(run_id, config.getoption("dry_run")))[1])
    result = change.reverted
    evidence = tuple(
        result.messages
        + [f"restored: {r}" for r in result.restored]
        + [f"removed: {r}" for r in result.removed]
        + [f"mismatch: {m}" for m in result.mismatches]
    )
    if result.status in ("restored", "nothing-to-do", "dry-run"):
        return Verdict(
            PASS,
            f"backout {result.status} (run {result.run_id or '-'}): files and kernel rules "
            "equal the journal's before state"
            if result.status == "restored"
            else f"backout {result.status}",
            evidence,
        )
    return Verdict(FAIL, f"backout {result.status} (run {result.run_id or '-'})", evidence)


def change_summary(change: Change | None) -> str:
    if change is None:
        return ""
    parts = []
    if change.applied:
        parts.append(
            f"applied run {change.applied.run_id}: {change.applied.status}, {len(change.applied.added)} rule(s) added"
        )
    if change.reverted:
        parts.append(f"reverted run {change.reverted.run_id or '-'}: {change.reverted.status}")
    return "; ".join(parts)
