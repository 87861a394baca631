"""The suite's fixtures (registered by cisaudit.plugin): pytest's side of a run. Options become the
judging layer's RunContext (cisaudit/run); one HostSession per host spec per worker, probed ahead
(Prefetch) and released after its host's last test; each test's case judged by cisaudit.run.judge,
its CaseRecord put in the test's user_properties."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from cisaudit.host.hostspec import Capability, transport_of
from cisaudit.host.session import HostSession
from cisaudit.host.transport import MIB, ConnectOptions, HostError, install_session_trust, remove_session_trust
from cisaudit.model.verdict import Status, Verdict
from cisaudit.model.waivers import Waiver, today
from cisaudit.outputs.item_verdict import item_verdict
from cisaudit.outputs.record import CASES_PROPERTY, encode_records
from cisaudit.outputs.text import printable, terminal_safe
from cisaudit.plugin import CONNECT_SPECS_KEY, WAIVERS_KEY, audit_keys, selected_controls
from cisaudit.plugin.aggregate import HostCases, case_of
from cisaudit.plugin.cases import Case, host_of_nodeid
from cisaudit.plugin.fleet_audit import spool_for
from cisaudit.run.change import prepared
from cisaudit.run.context import Mode, RunContext
from cisaudit.run.judge import judge_case


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
RUN_CONTEXT_KEY = pytest.StashKey[RunContext]()


def _warm(session: HostSession, ctx: RunContext) -> None:
    try:
        prepared(session, ctx)  # hosts change and reboot (--reboot-proof) in parallel, PREFETCH at a time
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
            self.futures[self.order[self.submitted]] = self.pool.submit(_warm, ahead, run_context(self.config))
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
    ctx = run_context(config)
    sessions = {
        shown: HostSession(
            spec,
            connect_options(config),
            ctx.key,
            ctx.require_all,
            version=ctx.version,
            fanned_out=spool if spool and transport_of(spec).can(Capability.FLEET_API) else None,
            keys=ctx.keys,
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


def run_context(config: pytest.Config) -> RunContext:
    """The run's options as the judging layer's RunContext (cisaudit/run), made once per process;
    pytest_configure (cisaudit/plugin/__init__.py) has checked them, so an error here is a bug."""
    ctx = config.stash.get(RUN_CONTEXT_KEY, None)
    if ctx is None:
        option = config.getoption
        waivers: dict[str, Waiver] = config.stash[WAIVERS_KEY]
        ctx = RunContext(
            option("benchmark"),
            tuple(selected_controls(config)),
            audit_keys(config),
            option("require_all"),
            waivers,
            Mode.of(option("remediate"), option("backout")),
            option("dry_run"),
            today(),
            reboot_wait=option("command_timeout") if option("reboot_proof") else None,
        )
        config.stash[RUN_CONTEXT_KEY] = ctx
    return ctx


def _host_cases_verdict(group: HostCases, session: HostSession, request: pytest.FixtureRequest) -> Verdict:
    """Every case of an aggregated item (plugin/aggregate.py), all records in one property; the
    item errors in setup when a case errors, fails when one fails, skips when all skip
    (outputs/item_verdict.py, which a merge of shards writes JUnit from)."""
    records = [judge_case(case, session, run_context(request.config)).record for case in group.cases]
    in_process = not hasattr(request.config, "workerinput")  # the controller reads them itself
    request.node.user_properties.append((CASES_PROPERTY, encode_records(records, in_process)))
    shown = item_verdict(group.spec, records)
    if shown.status == Status.ERROR:
        raise HostError(shown.summary)
    return shown


@pytest.fixture
def verdict(cis_case: Case | HostCases, host_session: HostSession, request: pytest.FixtureRequest) -> Verdict:
    """The case's verdict, its CaseRecord in the test's user_properties (cisaudit/outputs/record.py);
    a host or access problem is raised here, so pytest shows an ERROR."""
    if isinstance(cis_case, HostCases):
        return printable(_host_cases_verdict(cis_case, host_session, request))
    judged = judge_case(cis_case, host_session, run_context(request.config))
    request.node.user_properties += judged.record.properties()
    if judged.record.verdict == Status.ERROR:
        raise HostError(terminal_safe(f"{cis_case.spec}: {judged.record.summary}")) from judged.cause
    return printable(judged.shown)
