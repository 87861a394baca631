"""The check registry: each Check -> the function that judges it and what it needs. A Check
without an entry fails when this module loads, never on a host."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from cisaudit.host import events
from cisaudit.host.reboot import proof_of
from cisaudit.host.session import HostSession
from cisaudit.model.catalogue import Control
from cisaudit.model.decisions import accesses_of, events_verdict, remediation_verdict
from cisaudit.model.reboot_proof import proof_verdict
from cisaudit.model.verdict import Check, Status, Verdict
from cisaudit.run.case import Case
from cisaudit.run.change import backout
from cisaudit.run.context import RunContext

Judging = Callable[[Case, HostSession, RunContext], Verdict]


class Scope(Enum):
    CONTROL = "control"  # a case names a control
    HOST = "host"  # a case of the host itself


@dataclass(frozen=True)
class CheckEntry:
    judging: Judging
    scope: Scope
    after_change: bool = True  # judged on the host as the run's change left it (change.change_once)

    def control_of(self, case: Case) -> Control | None:
        """The case's control; a case whose scope does not match its check is a ValueError."""
        if (case.control is not None) != (self.scope == Scope.CONTROL):
            raise ValueError(f"a {case.check} check is a {self.scope.value} check: case {case.id} does not fit it")
        return case.control


def _control(case: Case, session: HostSession, ctx: RunContext) -> Verdict:
    assert case.control is not None  # CheckEntry.control_of
    return session.assessment().control_verdict(case.control, case.check)


def _host(case: Case, session: HostSession, ctx: RunContext) -> Verdict:
    return session.assessment().host_verdict(case.check)


def _remediation(case: Case, session: HostSession, ctx: RunContext) -> Verdict:
    if session.change is None:
        raise ValueError("the remediation check is judged after the run's change")
    return remediation_verdict(session.change, session.assessment(), ctx.version)


def _live_passes(session: HostSession, control: Control) -> bool:
    return session.assessment().control_verdict(control, Check.LIVE).status == Status.PASS


def _events(case: Case, session: HostSession, ctx: RunContext) -> Verdict:
    """Make the accesses of every control whose live rule passes in one command, once per host."""
    assert case.control is not None  # CheckEntry.control_of
    assessment = session.assessment()
    if session.events_output is None and _live_passes(session, case.control):
        live = [c for c in ctx.catalogue if _live_passes(session, c)]
        accesses = {a.path: a for a in (accesses_of(assessment, c) for c in live)}
        _, session.events_output, _ = session.run(events.render_script(list(accesses.values()), ctx.keys))
    return events_verdict(assessment, case.control, ctx.keys, events.recorded(session.events_output or ""))


def _reboot_proof(case: Case, session: HostSession, ctx: RunContext) -> Verdict:
    """Persisted before the run's reboot against live after it (host/reboot.py, model/reboot_proof.py)."""
    assert case.control is not None  # CheckEntry.control_of
    return proof_verdict(proof_of(session, case.control))


def _backout(case: Case, session: HostSession, ctx: RunContext) -> Verdict:
    return backout(session, ctx)


def _published_after_the_run(case: Case, session: HostSession, ctx: RunContext) -> Verdict:
    """No test judges publication: a publisher's host errors become records after the run
    (cisaudit/outputs/registry.py); a case asking for it is our bug."""
    raise ValueError("the publication check is recorded by the publishers, not judged on a host")


CHECKS: Mapping[Check, CheckEntry] = MappingProxyType(
    {
        Check.LIVE: CheckEntry(_control, Scope.CONTROL),
        Check.PERSISTED: CheckEntry(_control, Scope.CONTROL),
        Check.EVENTS: CheckEntry(_events, Scope.CONTROL),
        Check.REMEDIATION: CheckEntry(_remediation, Scope.HOST),
        Check.AUDITD_INSTALLED: CheckEntry(_host, Scope.HOST),
        Check.AUDITD_RUNNING: CheckEntry(_host, Scope.HOST),
        Check.AUDIT_ENABLED: CheckEntry(_host, Scope.HOST),
        Check.LOAD_HEALTH: CheckEntry(_host, Scope.HOST),
        Check.EVENT_LOSS: CheckEntry(_host, Scope.HOST),
        Check.BACKOUT: CheckEntry(_backout, Scope.HOST, after_change=False),  # even after a failed change
        Check.PUBLICATION: CheckEntry(_published_after_the_run, Scope.HOST, after_change=False),
        Check.REBOOT_PROOF: CheckEntry(_reboot_proof, Scope.CONTROL),
    }
)


def unregistered(registry: Mapping[Check, CheckEntry]) -> list[Check]:
    """The checks a registry has no judging function for."""
    return [check for check in Check if check not in registry]


if unregistered(CHECKS):
    raise ImportError(f"checks without a judging function in cisaudit/run/checks.py: {unregistered(CHECKS)}")
