"""cisaudit.run: judging a case and applying its waiver, without pytest, root or a host.

Each session is a real HostSession whose assessment is made from a hand-made Snapshot
(selftests/snapshots.py): the snapshot stands in for the probe a host would answer. Where the run
changes the host, FakeHost stands in for the transport: it records each command and answers it."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from cisaudit.host.session import HostSession
from cisaudit.host.transport import ConnectOptions
from cisaudit.model.catalogue import controls
from cisaudit.model.evaluate import Assessment
from cisaudit.model.kernel import AuditKeys
from cisaudit.model.snapshot import PathInfo, Snapshot
from cisaudit.model.verdict import Check, Status
from cisaudit.model.waivers import Waiver
from cisaudit.outputs.record import CaseRecord
from cisaudit.run.case import Case
from cisaudit.run.checks import CHECKS, CheckEntry, Scope, unregistered
from cisaudit.run.context import ContextError, Mode, RunContext
from cisaudit.run.judge import judge, judge_case
from selftests.snapshots import audited_host

TODAY = dt.date(2026, 12, 5)
HOST = "ssh://web1"
RULE = "-w /etc/docker -k docker"


def control(cid: str, version: str = "1.7.0"):
    return next(c for c in controls(version) if c.id == cid)


ETC_DOCKER = control("1.1.6")  # /etc/docker, watch style


def snapshot(compliant: bool) -> Snapshot:
    paths = {p: PathInfo(p, "dir", p) for p in ("/etc", "/etc/docker")}
    rules = [("/etc/audit/rules.d/d.rules", RULE + "\n")] if compliant else []
    listing = "-w /etc/docker -p rwxa -k docker" if compliant else "No rules"
    return audited_host(listing_text=listing, rules_d=rules, paths=paths)


def session(snap: Snapshot, version: str = "1.7.0") -> HostSession:
    """A session that has probed already: its assessment is the snapshot's."""
    made = HostSession(HOST, ConnectOptions(), "docker", version=version, keys=AuditKeys())
    made._assessment = Assessment(snap, "docker", False, AuditKeys())
    return made


def context(**over) -> RunContext:
    base = dict(version="1.7.0", selected=(ETC_DOCKER,), today=TODAY)
    return RunContext(**{**base, **over})


def waiver(**over) -> Waiver:
    return Waiver(**{**dict(control_id="1.1.6", justification="rootless here; SEC-12", line=1), **over})


def test_every_check_has_a_judging_function() -> None:
    assert unregistered(CHECKS) == []
    partial = {c: e for c, e in CHECKS.items() if c != Check.EVENTS}
    assert unregistered(partial) == [Check.EVENTS]


@pytest.mark.parametrize("check", [Check.LIVE, Check.PERSISTED])
def test_a_compliant_control_passes_with_every_field_of_its_record(check: Check) -> None:
    record = judge(Case(HOST, check, ETC_DOCKER), session(snapshot(True)), context())
    assert isinstance(record, CaseRecord)
    assert (record.host, record.control_id, record.check, record.verdict) == (HOST, "1.1.6", check, Status.PASS)
    assert record.benchmark == "CIS Docker Benchmark v1.7.0" and record.audit_keys == "docker"
    assert record.title == ETC_DOCKER.title and record.level == "1" and record.assessment == "automated"
    assert record.audited.startswith("/etc/docker (") and record.change == "" and not record.waiver
    assert record.remote_commands == 0 and record.started <= record.finished


def test_the_benchmark_named_is_the_contexts() -> None:
    v18 = control("1.1.6", "1.8.0")
    record = judge(
        Case(HOST, Check.LIVE, v18), session(snapshot(True), "1.8.0"), context(version="1.8.0", selected=(v18,))
    )
    assert record.benchmark == "CIS Docker Benchmark v1.8.0"


def test_a_host_check_carries_the_host_facts() -> None:
    record = judge(Case(HOST, Check.AUDIT_ENABLED), session(snapshot(True)), context())
    assert (
        record.verdict == Status.PASS
        and record.control_id == "host"
        and '"loader_mode": "augenrules"' in record.host_facts
    )


def test_an_unjudgeable_host_is_the_cases_error_not_an_exception() -> None:
    broken = session(snapshot(True))
    broken._assessment, broken._error = None, "cannot connect: refused"
    judged = judge_case(Case(HOST, Check.LIVE, ETC_DOCKER), broken, context(waivers={"1.1.6": waiver()}))
    assert (judged.record.verdict, judged.record.summary) == (Status.ERROR, "cannot connect: refused")
    assert judged.record.waiver == judged.record.waiver_expiration == ""  # an error is never waived
    assert judged.shown.status == Status.ERROR and judged.cause is None


def test_a_case_that_does_not_fit_its_check_is_refused() -> None:
    with pytest.raises(ValueError, match="is a host check"):
        judge(Case(HOST, Check.AUDIT_ENABLED, ETC_DOCKER), session(snapshot(True)), context())
    with pytest.raises(ValueError, match="is a control check"):
        CheckEntry(CHECKS[Check.LIVE].judging, Scope.CONTROL).control_of(Case(HOST, Check.LIVE))


# ---- waivers ------------------------------------------------------------------------------------


def test_a_failure_an_unexpired_waiver_covers_is_waived() -> None:
    ctx = context(waivers={"1.1.6": waiver(expiration_date=dt.date(2027, 6, 30))})
    judged = judge_case(Case(HOST, Check.LIVE, ETC_DOCKER), session(snapshot(False)), ctx)
    assert judged.record.verdict == Status.FAIL and judged.record.status == Status.WAIVED
    assert (judged.record.waiver, judged.record.waiver_expiration) == ("rootless here; SEC-12", "2027-06-30")
    assert judged.shown.status == Status.WAIVED and judged.shown.summary == "waived: rootless here; SEC-12"
    assert judged.shown.evidence[0] == judged.record.summary  # the failure stays readable


def test_a_pass_keeps_its_status_under_a_waiver() -> None:
    judged = judge_case(
        Case(HOST, Check.LIVE, ETC_DOCKER), session(snapshot(True)), context(waivers={"1.1.6": waiver()})
    )
    assert (judged.record.status, judged.shown.status, judged.record.waiver) == (Status.PASS, Status.PASS, "")


def test_an_expired_waiver_is_flagged_and_ignored() -> None:
    ctx = context(waivers={"1.1.6": waiver(expiration_date=TODAY)})  # InSpec: expired from that day on
    judged = judge_case(Case(HOST, Check.LIVE, ETC_DOCKER), session(snapshot(False)), ctx)
    assert (judged.record.status, judged.shown.status) == (Status.FAIL, Status.FAIL)
    assert (judged.record.waiver, judged.record.waiver_expired) == ("", "rootless here; SEC-12")


def test_a_waiver_for_other_hosts_does_not_apply() -> None:
    ctx = context(waivers={"1.1.6": waiver(hosts=("10.0.0.*",))})
    record = judge(Case(HOST, Check.LIVE, ETC_DOCKER), session(snapshot(False)), ctx)
    assert (record.status, record.waiver_expiration) == (Status.FAIL, "")


def test_run_false_does_not_judge_at_all() -> None:
    unprobed = session(snapshot(False))
    unprobed._assessment, unprobed._error = None, "would have been probed"
    judged = judge_case(Case(HOST, Check.LIVE, ETC_DOCKER), unprobed, context(waivers={"1.1.6": waiver(run=False)}))
    assert (judged.record.verdict, judged.record.status) == (Status.NOT_RUN, Status.WAIVED)
    assert judged.record.summary == "not run (waiver): rootless here; SEC-12"
    assert judged.shown.status == Status.WAIVED and judged.record.remote_commands == 0


# ---- the context ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"version": "1.9.9"}, "unknown benchmark version"),
        ({"selected": (control("1.1.5", "1.8.0"),)}, "not benchmark 1.7.0's"),
        ({"waivers": {"9.9.9": waiver(control_id="9.9.9")}}, "lacks: 9.9.9"),
        ({"dry_run": True}, "needs remediate or backout"),
        ({"keys": AuditKeys(())}, "no audit key"),
    ],
)
def test_a_context_that_contradicts_itself_is_refused(over: dict[str, object], message: str) -> None:
    with pytest.raises(ContextError, match=message):
        context(**over)


def test_the_context_is_frozen() -> None:
    ctx = context(waivers={"1.1.6": waiver()})
    with pytest.raises(AttributeError):
        ctx.version = "1.8.0"  # type: ignore[misc]
    with pytest.raises(TypeError):
        ctx.waivers["1.1.6"] = waiver(justification="x")  # type: ignore[index]
    assert ctx.key == "docker" and context(keys=AuditKeys((), True)).key == "docker"


# ---- the run's change ----------------------------------------------------------------------------


class FakeHost:
    """Stands in for the transport of a session that remediates: the commands it was sent, each
    answered with a dry run's result lines."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def run(self, command: str):  # noqa: ANN201 - testinfra's CommandResult shape
        self.commands.append(command)
        out = b"cisaudit-added: -w /etc/docker -k docker\ncisaudit-result: status=dry-run run_id=r1 added=1\n"
        return type("Result", (), {"rc": 0, "stdout_bytes": out, "stderr_bytes": b""})()


@pytest.mark.parametrize("version", ["1.7.0", "1.8.0"])
def test_remediation_plans_and_applies_for_the_contexts_benchmark(version: str) -> None:
    etc_docker = control("1.1.6", version)
    host, failing = FakeHost(), session(snapshot(False), version)
    failing._host = host
    ctx = context(version=version, selected=(etc_docker,), mode=Mode.REMEDIATE, dry_run=True)
    remediation = judge(Case(HOST, Check.REMEDIATION), failing, ctx)
    live = judge(Case(HOST, Check.LIVE, etc_docker), failing, ctx)
    assert len(host.commands) == 1  # one change per host, made before the first verdict
    assert f"CISAUDIT_BENCHMARK='CIS Docker Benchmark v{version}'" in host.commands[0]
    assert remediation.verdict == Status.PASS and f"v{version}: add to " in remediation.summary
    assert live.change == remediation.change != "" and live.remote_commands == 1
    assert replace(live, started=0, finished=0).verdict == Status.FAIL  # a dry run changes nothing
