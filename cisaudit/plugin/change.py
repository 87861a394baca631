"""--remediate / --backout / --dry-run: change a host before its checks, and undo it after.

Per host, on the worker that owns it (HostScheduling): plan (pure) -> one apply command under
the host's lock -> re-probe; the checks then judge the changed host. With --backout too, the
last test of the host reverts the change and reports whether files and kernel rules are
exactly as the journal recorded before. --backout alone undoes an earlier run first.
"""

from __future__ import annotations

import secrets
import time

import pytest

from cisaudit.host.remediation_io import parse_result, render_apply, render_backout
from cisaudit.host.session import HostSession, unusable_output
from cisaudit.host.transport import HostError
from cisaudit.model.catalogue import benchmark, select
from cisaudit.model.decisions import Change, backout_verdict
from cisaudit.model.plan import make_plan
from cisaudit.model.verdict import Status, Verdict


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


def backout(session: HostSession, config: pytest.Config) -> Verdict:
    """Revert and verify; after an apply whose outcome is unknown, still try its run id."""
    try:
        change = prepare(session, config)
    except HostError:
        if session.change is None or session.change.unknown_run is None:
            raise
        change = session.change
        session.drop_connection()  # the old one timed out or died mid-apply
    if change.reverted is None:  # --remediate --backout: revert now, after the host's checks
        run_id = change.applied.run_id if change.applied else change.unknown_run
        if run_id is None:
            return Verdict(Status.PASS, "nothing was applied, nothing to revert")
        change.reverted = parse_result(session.run(render_backout(run_id, config.getoption("dry_run")))[1])
    return backout_verdict(change.reverted)
