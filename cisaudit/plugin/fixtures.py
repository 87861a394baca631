"""The suite's fixtures (registered by cisaudit.plugin): one HostSession per host spec per worker,
and the verdict of each test's case."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from cisaudit.host.events import recorded, render_script
from cisaudit.host.session import HostSession, unusable_output
from cisaudit.host.transport import MIB, ConnectOptions, HostError, install_session_trust, remove_session_trust
from cisaudit.model.catalogue import Control, benchmark
from cisaudit.model.decisions import accesses_of, events_verdict, remediation_verdict
from cisaudit.model.evaluate import Assessment
from cisaudit.model.kernel import AuditKeys
from cisaudit.model.verdict import Check, Status, Verdict
from cisaudit.model.waivers import Waiver, applicable, today
from cisaudit.outputs.record import CASES_PROPERTY, HOST_CONTROL, CaseRecord, encode_records
from cisaudit.outputs.text import printable, terminal_safe
from cisaudit.plugin import CONNECT_SPECS_KEY, WAIVERS_KEY, audit_keys
from cisaudit.plugin.aggregate import HostCases, case_of
from cisaudit.plugin.cases import Case, host_of_nodeid
from cisaudit.plugin.change import backout, prepare
from cisaudit.plugin.fleet_audit import spool_for


def connect_options(config: pytest.Config) -> ConnectOptions:
    return ConnectOptions(
        known_hosts=config.getoption("known_hosts"),
        accept_new_host_keys=config.getoption("accept_new_host_keys"),
        connect_timeout=config.getoption("connect_timeout"),
        command_timeout=config.getoption("command_timeout"),
        sudo=config.getoption("sudo", False),
        sudo_user=config.getoption("sudo_user", None),
        ssh_config=config.getoption("ssh_config", None),
        ssh_identity_file=config.getoption("ssh_identity_file", None),
        ssm_region=config.getoption("ssm_region"),
        aws_profile=config.getoption("aws_profile"),
        ssm_s3_bucket=config.getoption("ssm_s3_bucket"),
        max_output_bytes=int(config.getoption("max_output_mb") * MIB),
    )


def pytest_configure(config: pytest.Config) -> None:
    """The suite's trust decision holds for every testinfra host of the session (transport.py)."""
    install_session_trust(connect_options(config))


def pytest_unconfigure(config: pytest.Config) -> None:
    remove_session_trust()


PREFETCH = 32  # hosts probed ahead of their tests, at most (Prefetch)
PREFETCH_KEY = pytest.StashKey["Prefetch | None"]()


def _warm(session: HostSession, config: pytest.Config) -> None:
    try:
        prepare(session, config)
        session.assessment()
    except HostError:
        pass  # cached in the session: each of the host's tests reports it


class Prefetch:
    """In one process (no -n), probe (and change, where asked) the next PREFETCH hosts in test
    order while the current host's tests run: the work is waiting on hosts, not CPU, and one
    pytest process is cheaper than a worker per host. A host's session is released after its
    last test (pytest_runtest_teardown), so memory holds about PREFETCH hosts, not the fleet.
    Under xdist each worker does its own hosts as they come."""

    def __init__(self, sessions: dict[str, HostSession], config: pytest.Config) -> None:
        self.sessions, self.config = sessions, config
        self.order = list(sessions)
        self.position = {spec: n for n, spec in enumerate(self.order)}
        self.pool = ThreadPoolExecutor(max_workers=PREFETCH)
        self.futures: dict[str, Future[None]] = {}
        self.submitted = 0

    def ready(self, spec: str) -> None:
        """Return when the host is probed; start the hosts after it."""
        end = min(len(self.order), self.position[spec] + PREFETCH + 1)
        while self.submitted < end:
            ahead = self.sessions[self.order[self.submitted]]
            self.futures[self.order[self.submitted]] = self.pool.submit(_warm, ahead, self.config)
            self.submitted += 1
        future = self.futures.pop(spec, None)
        if future is not None:
            future.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session")
def host_sessions(request: pytest.FixtureRequest) -> Iterator[dict[str, HostSession]]:
    """A session per host (see Prefetch)."""
    config = request.config
    spool = spool_for(config)
    keys = audit_keys(config)
    sessions = {
        shown: HostSession(
            spec,
            connect_options(config),
            keys.names[0] if keys.names else "docker",
            config.getoption("require_all"),
            config.getoption("benchmark"),
            fanned_out=spool if spool and spec.startswith("ssm://") else None,
            keys=keys,
        )
        for shown, spec in config.stash[CONNECT_SPECS_KEY].items()
    }
    prefetch = Prefetch(sessions, config) if not hasattr(config, "workerinput") and len(sessions) > 1 else None
    config.stash[PREFETCH_KEY] = prefetch
    yield sessions
    if prefetch is not None:
        prefetch.close()


@pytest.fixture
def host_session(
    cis_case: Case | HostCases, host_sessions: dict[str, HostSession], request: pytest.FixtureRequest
) -> HostSession:
    prefetch = request.config.stash.get(PREFETCH_KEY, None)
    if prefetch is not None:
        prefetch.ready(cis_case.spec)
    return host_sessions[cis_case.spec]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After a host's last test, release what its session holds (plugin/__init__.py orders each
    host's tests together)."""
    sessions = getattr(item, "funcargs", {}).get("host_sessions")
    case = case_of(item)
    if sessions is None or case is None:
        return
    if nextitem is None or host_of_nodeid(nextitem.nodeid) != case.spec:
        sessions[case.spec].release()


def _events_verdict(session: HostSession, control: Control) -> Verdict:
    """Make the accesses of every control whose live rule passes in one command, once per host."""
    assessment = session.assessment()
    if session.events_output is None and assessment.control_verdict(control, Check.LIVE).status == Status.PASS:
        accesses = {
            a.path: a
            for a in (
                accesses_of(assessment, c)
                for c in session.controls
                if assessment.control_verdict(c, Check.LIVE).status == Status.PASS
            )
        }
        _, out, _ = session.run(render_script(list(accesses.values()), session.keys or session.key))
        session.events_output = out
    return events_verdict(assessment, control, session.keys or session.key, recorded(session.events_output or ""))


def _check_verdict(session: HostSession, case: Case) -> Verdict:
    if case.control is None:
        if case.check == Check.REMEDIATION:
            assert session.change is not None  # prepare() made it
            return remediation_verdict(session.change, session.assessment(), session.version)
        return session.assessment().host_verdict(case.check)
    if case.check == Check.EVENTS:
        return _events_verdict(session, case.control)
    return session.assessment().control_verdict(case.control, case.check)


def _audited(assessment: Assessment, control: Control) -> str:
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
            "loader_mode": assessment.mode.mode,
            "arch": snap.arch,
            "audit_enabled": snap.status.get("enabled", ""),
            "auditd_running": snap.auditd_running,
            "systemd": snap.systemd,
        }
    )


def _waive(result: Verdict, waiver: Waiver | None, on: dt.date, fields: dict[str, Any]) -> Verdict:
    """A failure an unexpired waiver covers is reported waived; an expired one is only flagged."""
    if waiver is None:
        return result
    fields["waiver_expiration"] = str(waiver.expiration_date or "")
    if waiver.expired(on):
        fields["waiver_expired"] = waiver.justification
        return result
    if result.status != Status.FAIL:
        return result
    fields["waiver"] = waiver.justification
    return Verdict(Status.WAIVED, f"waived: {waiver.justification}", (result.summary, *result.evidence))


def _judge(case: Case, session: HostSession, config: pytest.Config, fields: dict[str, Any]) -> Verdict:
    """The case's verdict; what the run changed on the host and the path audited go into `fields`."""
    if case.check == Check.BACKOUT:  # attempted even after a change that failed midway
        result = backout(session, config)
        fields["change"] = session.change.summary() if session.change else ""
        return result
    change = prepare(session, config)
    fields["change"] = change.summary()
    result = _check_verdict(session, case)
    if case.control:
        fields["remediated"] = change.remediated(case.control.id)
        fields["audited"] = _audited(session.assessment(), case.control)
    elif result.status != Status.ERROR:
        fields["host_facts"] = host_facts(session)
    return result


def _about(case: Case, session: HostSession) -> dict[str, Any]:
    """The CaseRecord fields known before the case is judged."""
    named = benchmark(session.version)
    fields: dict[str, Any] = {
        "host": case.spec,
        "control_id": case.control.id if case.control else HOST_CONTROL,
        "check": case.check,
        "benchmark": f"{named.title} v{named.version}",
        "audit_keys": (session.keys or AuditKeys.of(session.key)).mode,
    }
    if case.control:
        fields |= {
            "title": case.control.title,
            "level": str(case.control.level),
            "assessment": case.control.assessment.value,
        }
    return fields


def _judged(case: Case, session: HostSession, config: pytest.Config) -> tuple[Verdict, CaseRecord, Exception | None]:
    """The verdict the test asserts, the case's record, and the exception behind an ERROR."""
    started = time.time()
    fields = _about(case, session)
    waiver = case.control and applicable(config.stash[WAIVERS_KEY], case.control.id, case.spec)
    cause: Exception | None = None
    if waiver and not waiver.run and not waiver.expired(today()):  # InSpec's run: false: not checked at all
        fields |= {
            "verdict": Status.NOT_RUN,
            "summary": f"not run (waiver): {waiver.justification}",
            "waiver": waiver.justification,
            "waiver_expiration": str(waiver.expiration_date or ""),
        }
        shown = Verdict(Status.WAIVED, f"not run: {waiver.justification}")
    else:
        try:
            result = _judge(case, session, config, fields)
        except HostError as exc:
            result = Verdict(Status.ERROR, str(exc))
        except Exception as exc:  # judging this host's data raised: its error, traceback kept as the cause
            result, cause = Verdict(Status.ERROR, unusable_output(exc)), exc
        shown = result if result.status == Status.ERROR else _waive(result, waiver or None, today(), fields)
        fields |= {"verdict": result.status, "summary": result.summary, "evidence": "\n".join(result.evidence)}
    record = CaseRecord(**fields, remote_commands=session.commands, started=started, finished=time.time())
    return shown, record, cause


def _host_cases_verdict(group: HostCases, session: HostSession, request: pytest.FixtureRequest) -> Verdict:
    """Every case of an aggregated item (plugin/aggregate.py), all records in one property; the
    item errors in setup when a case errors, fails when one fails, skips when all skip."""
    records, shown = [], []
    for case in group.cases:
        verdict, record, _ = _judged(case, session, request.config)
        records.append(record)
        shown.append(verdict)
    in_process = not hasattr(request.config, "workerinput")  # the controller reads them itself
    request.node.user_properties.append((CASES_PROPERTY, encode_records(records, in_process)))
    errors = [r for r in records if r.verdict == Status.ERROR]
    if errors:
        raise HostError(
            terminal_safe(
                f"{group.spec}: {len(errors)} of {len(records)} checks could not be judged: {errors[0].summary}"
            )
        )
    failed = [(r, v) for r, v in zip(records, shown, strict=True) if v.status == Status.FAIL]
    if failed:
        names = ", ".join(f"{r.control_id} {r.check}" for r, _ in failed)
        return Verdict(
            Status.FAIL, f"{len(failed)} of {len(records)} checks failed: {names}", tuple(v.summary for _, v in failed)
        )
    if all(v.status in (Status.NOT_APPLICABLE, Status.WAIVED) for v in shown):
        return Verdict(Status.NOT_APPLICABLE, f"each of the {len(records)} checks is not applicable or waived")
    return Verdict(Status.PASS, f"{len(records)} checks")


@pytest.fixture
def verdict(cis_case: Case | HostCases, host_session: HostSession, request: pytest.FixtureRequest) -> Verdict:
    """The case's verdict, its CaseRecord in the test's user_properties (cisaudit/outputs/record.py);
    a host or access problem is raised here, so pytest shows an ERROR."""
    if isinstance(cis_case, HostCases):
        return printable(_host_cases_verdict(cis_case, host_session, request))
    verdict, record, cause = _judged(cis_case, host_session, request.config)
    request.node.user_properties += record.properties()
    if record.verdict == Status.ERROR:
        raise HostError(terminal_safe(f"{cis_case.spec}: {record.summary}")) from cause
    return printable(verdict)
