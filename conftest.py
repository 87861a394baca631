"""pytest plugin of the compliance suite: options, one test per (host, control, check),
and an xdist scheduler that keeps each host's tests on one worker (one probe per host)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from xdist.scheduler import LoadScopeScheduling

from cisaudit.catalogue import Control, controls, select
from cisaudit.evaluate import CONTROL_CHECKS, HOST_CHECKS
from cisaudit.hostspec import SpecError, parse_spec
from cisaudit.ssm.fanout import parse_concurrency
from cisaudit.waivers import Waiver, WaiverError, load_waivers, today

pytest_plugins = ["fixtures.remediation", "fixtures.hosts", "cisaudit.report"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cisaudit", "CIS Docker audit-rule checks")
    group.addoption("--audit-key", default="docker", help="audit key the rules must carry (default docker)")
    group.addoption("--controls", default="", help="comma list of control ids, e.g. 1.1.3,1.1.4")
    group.addoption("--require-all", action="store_true",
                    help="golden-image mode: a control whose path is absent fails instead of skipping")
    group.addoption("--verify-events", action="store_true",
                    help="access each audited path once per required permission class and "
                         "require an audit event with the key for each access")
    group.addoption("--known-hosts", default=None,
                    help="known_hosts file to trust besides ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts")
    group.addoption("--accept-new-host-keys", action="store_true",
                    help="accept unknown SSH host keys (throwaway golden-image builds only)")
    group.addoption("--connect-timeout", type=float, default=10, help="seconds (default 10)")
    group.addoption("--command-timeout", type=float, default=300, help="seconds per remote command")
    group.addoption("--max-output-mb", type=float, default=32,
                    help="MiB a host may send back per command (default 32); more is that host's error")
    group.addoption("--ssm-targets", default="",
                    help="SSM targets: comma list of instance ids and/or tag:Key=Value")
    group.addoption("--ssm-region", default=None, help="AWS region for ssm:// hosts")
    group.addoption("--aws-profile", default=None, help="AWS profile (default: AWS_PROFILE / chain)")
    group.addoption("--ssm-s3-bucket", default=None,
                    help="S3 bucket for SSM command output; an audit then probes the fleet by Run Command's fan-out")
    group.addoption("--ssm-max-concurrency", default="50",
                    help="fan-out audit: instances probing at once, a count or a percentage (default 50)")
    group.addoption("--waivers", default=None,
                    help="InSpec-format waiver file (YAML): control id -> justification, expiration_date, run, hosts")


@dataclass(frozen=True)
class Case:
    """One test: a check of a control (or of the host itself) on one host."""

    spec: str
    check: str
    control: Control | None = None

    @property
    def id(self) -> str:
        return f"{self.spec}|{self.control.id if self.control else 'host'}|{self.check}"


def selected_controls(config: pytest.Config) -> list[Control]:
    """The controls --controls names (all by default)."""
    try:
        return select(config.getoption("controls"))
    except ValueError as exc:
        raise pytest.UsageError(f"--controls: {exc}") from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cis_case" not in metafunc.fixturenames:
        return
    from fixtures.hosts import HOSTS_KEY

    config = metafunc.config
    specs = config.stash[HOSTS_KEY]
    cases: list = []
    name = metafunc.function.__name__
    if name in ("test_host", "test_backout"):
        checks = HOST_CHECKS if name == "test_host" else ()
        if name == "test_host" and config.getoption("remediate"):
            checks = ("remediation", *checks)
        if name == "test_backout" and config.getoption("backout"):
            checks = ("backout",)
        cases = [pytest.param(Case(s, check), id=Case(s, check).id) for s in specs for check in checks]
    else:
        checks = CONTROL_CHECKS + (("events",) if config.getoption("verify_events") else ())
        for spec in specs:
            for control in selected_controls(config):
                for check in checks:
                    case = Case(spec, check, control)
                    cases.append(pytest.param(case, id=case.id,
                                              marks=getattr(pytest.mark, f"level{control.level}")))
    metafunc.parametrize("cis_case", cases)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the placeholder pytest makes for a test with no cases (test_backout without --backout)."""
    empty = [i for i in items if "cis_case" in getattr(i, "fixturenames", ()) and
             not isinstance(getattr(getattr(i, "callspec", None), "params", {}).get("cis_case"), Case)]
    if empty:
        config.hook.pytest_deselected(items=empty)
        items[:] = [i for i in items if i not in empty]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    from fixtures.hosts import CONNECT_SPECS_KEY, HOSTS_KEY, WAIVERS_KEY, discover_ssm_hosts

    config.stash[WAIVERS_KEY] = _waivers(config)
    try:
        config.option.ssm_max_concurrency = parse_concurrency(config.getoption("ssm_max_concurrency"))
    except ValueError as exc:
        raise pytest.UsageError(f"--ssm-max-concurrency: {exc}") from None
    specs = [s.strip() for s in (config.getoption("hosts", None) or "").split(",") if s.strip()]
    if config.getoption("ssm_targets", ""):
        specs += discover_ssm_hosts(config)
    connect: dict[str, str] = {}  # display spec (in ids and reports) -> spec to connect with
    for text in specs or ["local://"]:
        try:
            checked = parse_spec(text)
        except SpecError as exc:
            raise pytest.UsageError(f"--hosts: {exc}") from None
        if connect.setdefault(checked.display, checked.spec) != checked.spec:
            raise pytest.UsageError(f"--hosts: two hosts both show as {checked.display!r}; they differ "
                                    "only in their identity file (which reports never show)")
    config.stash[CONNECT_SPECS_KEY] = connect
    config.stash[HOSTS_KEY] = list(connect)


def _waivers(config: pytest.Config) -> dict[str, Waiver]:
    path = config.getoption("waivers")
    if not path:
        return {}
    try:
        waivers = load_waivers(path, {c.id for c in controls()})
    except WaiverError as exc:
        raise pytest.UsageError(f"--waivers: {exc}") from None
    for waiver in waivers.values():
        if waiver.expired(today()) and not hasattr(config, "workerinput"):
            config.issue_config_time_warning(pytest.PytestWarning(
                f"--waivers: {path}:{waiver.line}: the waiver of {waiver.control_id} expired on "
                f"{waiver.expiration_date}; it is ignored"), 2)
    return waivers


def host_of_nodeid(nodeid: str) -> str:
    """The host spec inside a test id `...[SPEC|CONTROL|CHECK]`."""
    param = nodeid.rpartition("[")[2]
    return param.split("|", 1)[0] if "|" in param else nodeid


class HostScheduling(LoadScopeScheduling):
    """All tests of one host on one worker, in order; different hosts in parallel.

    (`--dist loadgroup` with xdist_group does nothing on pytest 9.2 + xdist 3.8: docs/kernel-behaviour.md.)
    """

    def _split_scope(self, nodeid: str) -> str:
        return host_of_nodeid(nodeid)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> HostScheduling:
    return HostScheduling(config, log)
