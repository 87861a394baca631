"""judge(case, session, ctx) -> CaseRecord: one case on one host, the run's change made first,
its check's judging function (checks.py) called, its waiver applied (waive.py), and every field
of the record set. A host that cannot be judged is the case's ERROR, never an exception."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace

from cisaudit.host.reboot import proof_of
from cisaudit.host.session import HostSession, unusable_output
from cisaudit.host.transport import HostError
from cisaudit.model.catalogue import Control
from cisaudit.model.evaluate import Assessment
from cisaudit.model.verdict import Check, Status, Verdict
from cisaudit.outputs.record import HOST_CONTROL, CaseRecord
from cisaudit.run import waive
from cisaudit.run.case import Case
from cisaudit.run.change import prepared
from cisaudit.run.checks import CHECKS
from cisaudit.run.context import RunContext


@dataclass(frozen=True)
class Outcome:
    """What judging a case found, before any waiver."""

    verdict: Verdict
    change: str = ""  # what the run did to the host (Change.summary)
    remediated: bool = False
    audited: str = ""
    host_facts: str = ""
    reboot_proof: str = ""  # --reboot-proof's reboot-proof checks: the proof, as JSON text
    cause: BaseException | None = None  # the exception behind an ERROR our code did not expect


@dataclass(frozen=True)
class Judged:
    record: CaseRecord
    shown: Verdict  # what the test asserts: WAIVED where a waiver applied or said not to run
    cause: BaseException | None = None


def judge(case: Case, session: HostSession, ctx: RunContext) -> CaseRecord:
    """The case's record (cisaudit/outputs/record.py)."""
    return judge_case(case, session, ctx).record


def judge_case(case: Case, session: HostSession, ctx: RunContext) -> Judged:
    """The case's record, the verdict its test asserts, and the exception behind an ERROR."""
    started = time.time()
    waiver = waive.waiver_of(case, ctx.waivers)
    if waiver is not None and waive.skips(waiver, ctx.today):
        result = Verdict(Status.NOT_RUN, f"not run (waiver): {waiver.justification}")
        record = _record(case, session, ctx, Outcome(result), waive.not_run_note(waiver))
        return Judged(_finished(record, session, started), Verdict(Status.WAIVED, f"not run: {waiver.justification}"))
    outcome = _outcome(case, session, ctx)
    errored = outcome.verdict.status == Status.ERROR
    note = waive.WaiverNote() if errored else waive.note(outcome.verdict, waiver, ctx.today)
    record = _record(case, session, ctx, outcome, note)
    return Judged(_finished(record, session, started), note.shown(outcome.verdict), outcome.cause)


def _outcome(case: Case, session: HostSession, ctx: RunContext) -> Outcome:
    entry = CHECKS[case.check]
    control = entry.control_of(case)  # a case that does not fit its check is our bug, not the host's
    change = ""
    try:
        if not entry.after_change:
            verdict = entry.judging(case, session, ctx)
            return Outcome(verdict, session.change.summary() if session.change else "")
        made = prepared(session, ctx)
        change = made.summary()
        verdict = session.assessment().refused(case.check) or entry.judging(case, session, ctx)
        if control is not None:
            proof = proof_of(session, control).encoded() if case.check == Check.REBOOT_PROOF else ""
            remediated = made.remediated(control.id)
            return Outcome(verdict, change, remediated, audited(session.assessment(), control), reboot_proof=proof)
        return Outcome(verdict, change, host_facts=host_facts(session) if verdict.status != Status.ERROR else "")
    except HostError as exc:
        return Outcome(Verdict(Status.ERROR, str(exc)), change)
    except Exception as exc:  # judging this host's data raised: its error, traceback kept as the cause
        return Outcome(Verdict(Status.ERROR, unusable_output(exc)), change, cause=exc)


def _record(case: Case, session: HostSession, ctx: RunContext, outcome: Outcome, note: waive.WaiverNote) -> CaseRecord:
    control, named, verdict = case.control, ctx.benchmark, outcome.verdict
    return CaseRecord(
        host=case.spec,
        control_id=control.id if control else HOST_CONTROL,
        check=case.check,
        verdict=verdict.status,
        summary=verdict.summary,
        evidence="\n".join(verdict.evidence),
        benchmark=f"{named.title} v{named.version}",
        title=control.title if control else "",
        level=str(control.level) if control else "",
        assessment=control.assessment.value if control else "",
        audited=outcome.audited,
        change=outcome.change,
        remediated=outcome.remediated,
        waiver=note.waiver,
        waiver_expiration=note.expiration,
        waiver_expired=note.expired,
        waiver_approved_by=note.approved_by,
        waiver_ticket=note.ticket,
        reboot_proof=outcome.reboot_proof,
        host_facts=outcome.host_facts,
        audit_keys=ctx.keys.mode,
    )


def _finished(record: CaseRecord, session: HostSession, started: float) -> CaseRecord:
    """The record with the host's command count so far and the case's times."""
    return replace(record, remote_commands=session.commands, started=started, finished=time.time())


def audited(assessment: Assessment, control: Control) -> str:
    """What path was audited and how it was found (docs/benchmarks.md), for the reports."""
    target = assessment.target(control)
    real = assessment.audit_object(target).path
    text = f"{target.path} ({target.how})" + (f", which is {real}" if real != target.path else "")
    return text + "".join(f"; excluded: {path}" for path in target.exclusions)


def host_facts(session: HostSession) -> str:
    """Probe facts for results.json (JSON text, so it rides on user_properties under xdist)."""
    assessment = session.assessment()
    snap = assessment.snap
    return json.dumps(
        {
            "loader_mode": assessment.mode.loader,
            "arch": snap.arch,
            "audit_enabled": snap.status.get("enabled", ""),
            "auditd_running": snap.auditd_running,
            "systemd": snap.systemd,
            "boot_id": snap.boot_id,
        }
    )
