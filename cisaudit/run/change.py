"""--remediate / --backout / --dry-run: change a host before its checks, and undo it after.

Per host, on the worker that owns it: plan (pure) -> one apply command under the host's lock ->
re-probe; the checks then judge the changed host. With --backout too, the last check of the host
reverts the change and reports whether files and kernel rules are exactly as the journal
recorded before. --backout alone undoes an earlier run first.
"""

from __future__ import annotations

import secrets
import time

from cisaudit.host.reboot import reboot_once
from cisaudit.host.remediation_io import parse_result, render_apply, render_backout
from cisaudit.host.session import HostSession, unusable_output
from cisaudit.host.transport import HostError
from cisaudit.model.decisions import Change, backout_verdict
from cisaudit.model.plan import Plan, make_plan
from cisaudit.model.verdict import Status, Verdict
from cisaudit.run.context import Mode, RunContext


def _new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def change_once(session: HostSession, ctx: RunContext) -> Change:
    """Make (or, dry, show) the host's change the first time a check asks, before its verdict;
    later checks get the same Change. A failed change is raised to every check of the host."""
    if session.change is None:
        session.change = Change()
        try:
            _make_change(session, session.change, ctx)
        except HostError as exc:
            session.change.error = f"change failed: {exc}"
        except Exception as exc:  # noqa: BLE001 - planning on crafted data: this host's error only
            session.change.error = f"change failed: {unusable_output(exc)}"
    if session.change.error:
        raise HostError(session.change.error)
    return session.change


def prepared(session: HostSession, ctx: RunContext) -> Change:
    """The run's change, then (--reboot-proof, host/reboot.py) the host's reboot, once each: every
    check after the change judges the host as the run, and its boot, leave it."""
    made = change_once(session, ctx)
    if ctx.reboot_wait is not None:
        reboot_once(session, ctx.reboot_wait)
    return made


def _make_change(session: HostSession, change: Change, ctx: RunContext) -> None:
    if ctx.mode == Mode.BACKOUT:
        change.reverted = parse_result(session.run(render_backout(None, ctx.dry_run))[1])
        if not ctx.dry_run:
            session.refresh()
        return
    if not ctx.mode.remediates:
        return
    change.plan = make_plan(session.assessment(), list(ctx.selected), ctx.benchmark)
    if change.plan.rules or change.plan.tmpfiles:
        _apply(session, change, change.plan, ctx)


def _apply(session: HostSession, change: Change, plan: Plan, ctx: RunContext) -> None:
    run_id, dry_run = _new_run_id(), ctx.dry_run
    script = render_apply(
        run_id, plan.mode, plan.target, plan.rule_lines, dry_run, ctx.benchmark, tmpfiles=list(plan.tmpfiles)
    )
    try:
        _, out, _ = session.run(script)
    except HostError as exc:
        if dry_run:
            raise
        change.unknown_run = run_id  # the script may have run partly, wholly or not at all
        raise HostError(f"host state unknown ({exc}); back out run {run_id} with --backout") from None
    change.applied = parse_result(out)
    if not dry_run:
        session.refresh()


def backout(session: HostSession, ctx: RunContext) -> Verdict:
    """Revert and verify; after an apply whose outcome is unknown, still try its run id."""
    try:
        change = change_once(session, ctx)
    except HostError:
        if session.change is None or session.change.unknown_run is None:
            raise
        change = session.change
        session.drop_connection()  # the old one timed out or died mid-apply
    if change.reverted is None:  # --remediate --backout: revert now, after the host's checks
        run_id = change.applied.run_id if change.applied else change.unknown_run
        if run_id is None:
            return Verdict(Status.PASS, "nothing was applied, nothing to revert")
        change.reverted = parse_result(session.run(render_backout(run_id, ctx.dry_run))[1])
    return backout_verdict(change.reverted)
