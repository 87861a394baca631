"""The suite's fixtures (registered by cisaudit.plugin): one HostSession per host spec per worker,
and the verdict of each test's case."""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from cisaudit.host.events import Check, recorded, render_script
from cisaudit.host.session import HostSession, unusable_output
from cisaudit.host.transport import MIB, ConnectOptions, HostError
from cisaudit.model.catalogue import Control, benchmark
from cisaudit.model.evaluate import ERROR, FAIL, PASS, Assessment, Verdict
from cisaudit.model.waivers import WAIVED, Waiver, applicable, today
from cisaudit.plugin import CONNECT_SPECS_KEY, WAIVERS_KEY
from cisaudit.plugin.change import Change, backout_verdict, change_summary, prepare, remediation_verdict
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


def _warm(session: HostSession, config: pytest.Config) -> None:
    try:
        prepare(session, config)
        session.assessment()
    except HostError:
        pass  # cached in the session: each of the host's tests reports it


@pytest.fixture(scope="session")
def host_sessions(request: pytest.FixtureRequest) -> dict[str, HostSession]:
    """A session per host. In one process (no -n), every host is probed, and changed where
    asked, at the same time: the work is waiting on hosts, not CPU, and one pytest process is
    cheaper than a worker per host. Under xdist each worker does its own hosts as they come."""
    config = request.config
    spool = spool_for(config)
    sessions = {
        shown: HostSession(
            spec,
            connect_options(config),
            config.getoption("audit_key"),
            config.getoption("require_all"),
            config.getoption("benchmark"),
            fanned_out=spool if spool and spec.startswith("ssm://") else None,
        )
        for shown, spec in config.stash[CONNECT_SPECS_KEY].items()
    }
    if not hasattr(config, "workerinput") and len(sessions) > 1:
        with ThreadPoolExecutor(max_workers=min(32, len(sessions))) as pool:
            list(pool.map(lambda session: _warm(session, config), sessions.values()))
    return sessions


@pytest.fixture
def host_session(cis_case, host_sessions: dict[str, HostSession]) -> HostSession:
    return host_sessions[cis_case.spec]


def _events_check(assessment: Assessment, control: Control) -> Check:
    """The accesses that prove a control: its classes on its path, and on a file inside a
    directory a watch covers (a syscall-style rule covers the directory's inode only)."""
    target = assessment.target(control)
    return Check(target.path, control.required_perms, assessment.audit_object(target).subtree)


def _events_verdict(session: HostSession, cis_case) -> Verdict:
    assessment = session.assessment()
    live = assessment.control_verdict(cis_case.control, "live")
    if live.status != PASS:
        return live if live.status != FAIL else Verdict(FAIL, "no live rule to produce events: " + live.summary)
    check = _events_check(assessment, cis_case.control)
    if session.events_output is None:  # one command for every control whose live rule passes
        checks = {
            c.path: c
            for c in (
                _events_check(assessment, control)
                for control in session.controls
                if assessment.control_verdict(control, "live").status == PASS
            )
        }
        _, out, _ = session.run(render_script(list(checks.values()), session.key))
        session.events_output = out
    mine: dict = {}  # one entry per (class, path): another control may have made the same access
    for t, events in recorded(session.events_output).items():
        if t.path == check.path or (check.subtree and t.path.startswith(check.path + "/")):
            same = next((k for k in mine if (k.label, k.path) == (t.label, t.path)), None)
            if same is None or (events and not mine[same]):
                mine.pop(same, None)
                mine[t] = events
    evidence = tuple(
        f"{t.label} on {t.path} (pid {t.pid}): {', '.join(events) or 'no event'}" for t, events in mine.items()
    )
    missing = [f"{t.label} on {t.path}" for t, events in mine.items() if not events]
    if mine and not missing:
        return Verdict(
            PASS,
            f"auditd recorded an event with key {session.key!r} for each access ({check.classes}) to {check.path}",
            evidence,
        )
    reason = "" if assessment.snap.auditd_running else " (auditd is not running)"
    what = ", ".join(missing) if mine else f"any access to {check.path} (none was made)"
    return Verdict(
        FAIL,
        f"no event with key {session.key!r} in auditd's logs for {what}{reason}",
        evidence + ("rule: " + live.summary,),
    )


def _check_verdict(session: HostSession, cis_case) -> Verdict:
    if cis_case.check == "remediation":
        return remediation_verdict(session)
    if cis_case.check == "events":
        return _events_verdict(session, cis_case)
    if cis_case.control:
        return session.assessment().control_verdict(cis_case.control, cis_case.check)
    return session.assessment().host_verdict(cis_case.check)


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


def _remediated(change: Change, control_id: str) -> bool:
    """This run's --remediate added (not just planned) a rule for the control."""
    applied = change.applied
    return bool(
        change.plan
        and applied
        and applied.ok
        and applied.status != "dry-run"
        and control_id in {cid for cid, _ in change.plan.rules}
    )


def _waive(result: Verdict, waiver: Waiver | None, on: dt.date, props: list) -> Verdict:
    """A failure an unexpired waiver covers is reported waived; an expired one is only flagged."""
    if waiver is None:
        return result
    props.append(("waiver_expiration", str(waiver.expiration_date or "")))
    if waiver.expired(on):
        props.append(("waiver_expired", waiver.justification))
        return result
    if result.status != FAIL:
        return result
    props.append(("waiver", waiver.justification))
    return Verdict(WAIVED, f"waived: {waiver.justification}", (result.summary, *result.evidence))


@pytest.fixture
def verdict(cis_case, host_session: HostSession, request: pytest.FixtureRequest) -> Verdict:
    """The case's verdict; a host or access problem is raised here, so pytest shows an ERROR."""
    props = request.node.user_properties
    named = benchmark(host_session.version)
    props += [
        ("host", cis_case.spec),
        ("check", cis_case.check),
        ("control_id", cis_case.control.id if cis_case.control else "host"),
        ("benchmark", f"{named.title} v{named.version}"),
    ]
    waiver = None
    if cis_case.control:
        props += [
            ("title", cis_case.control.title),
            ("level", str(cis_case.control.level)),
            ("assessment", cis_case.control.assessment.value),
        ]  # plain str: execnet sends it
        waiver = applicable(request.config.stash[WAIVERS_KEY], cis_case.control.id, cis_case.spec)
    if waiver and not waiver.run and not waiver.expired(today()):  # InSpec's run: false: not checked at all
        props += [
            ("waiver", waiver.justification),
            ("waiver_expiration", str(waiver.expiration_date or "")),
            ("verdict", "not-run"),
            ("summary", f"not run (waiver): {waiver.justification}"),
            ("evidence", ""),
            ("remote_commands", str(host_session.commands)),
        ]
        return Verdict(WAIVED, f"not run: {waiver.justification}")
    cause: Exception | None = None
    try:
        if cis_case.check == "backout":  # attempted even after a change that failed midway
            result = backout_verdict(host_session, request.config)
            props.append(("change", change_summary(host_session.change)))
        else:
            change = prepare(host_session, request.config)
            props.append(("change", change_summary(change)))
            if cis_case.control and _remediated(change, cis_case.control.id):
                props.append(("remediated", "true"))
            result = _check_verdict(host_session, cis_case)
            if cis_case.control:
                props.append(("audited", _audited(host_session.assessment(), cis_case.control)))
    except HostError as exc:
        result = Verdict(ERROR, str(exc))
    except Exception as exc:  # judging this host's data raised: its error, traceback kept as the cause
        result, cause = Verdict(ERROR, unusable_output(exc)), exc
    props += [
        ("verdict", result.status),
        ("summary", result.summary),
        ("evidence", "\n".join(result.evidence)),
        ("remote_commands", str(host_session.commands)),
    ]
    if result.status == ERROR:
        raise HostError(f"{cis_case.spec}: {result.summary}") from cause
    if not cis_case.control:
        props.append(("host_facts", host_facts(host_session)))
    return _waive(result, waiver, today(), props)
