"""The suite's pytest plugin (entry point `pytest11: cisaudit.plugin`; a checkout loads it with
`-p cisaudit.plugin` in pytest.ini): every option, the stash keys, one test per (host, control,
check), and the host-keyed xdist scheduler. It registers the fixtures (cisaudit.plugin.fixtures) and the
report hooks (cisaudit.plugin.report). docs/architecture.md shows where each step of a run lives.
"""

from __future__ import annotations

import importlib
import sys
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest
from xdist.scheduler import LoadScopeScheduling

from cisaudit.host.hostspec import TRANSPORTS, SpecError, parse_spec
from cisaudit.host.ssm.fanout import DEFAULT_MAX_CONCURRENCY, parse_concurrency
from cisaudit.model.catalogue import DEFAULT_VERSION, VERSIONS, CatalogueError, Control, controls, select
from cisaudit.model.kernel import AuditKeys
from cisaudit.model.shard import Shard
from cisaudit.model.verdict import CONTROL_CHECKS, HOST_CHECKS, Check
from cisaudit.model.waivers import Waiver, WaiverError, load_waivers, today, unapproved
from cisaudit.outputs.item_verdict import AGGREGATED
from cisaudit.plugin import instance_list, options, preflight, waiver_tags
from cisaudit.plugin.aggregate import HostCases, case_of, group_by_host
from cisaudit.plugin.cases import Case, host_of_nodeid, level_marks
from cisaudit.plugin.options import OptionError

if TYPE_CHECKING:
    from cisaudit.host.ssm.backend import Discovery  # boto3: imported only by SSM runs

pytest_plugins = [  # publish before report: its outputs register before report adds the registry's options
    "cisaudit.plugin.fixtures",
    "cisaudit.plugin.publish",
    "cisaudit.plugin.report",
    "cisaudit.plugin.fleet_audit",
    "cisaudit.plugin.aggregate",
    "cisaudit.plugin.inifile",
    "cisaudit.plugin.baseline",
    "cisaudit.plugin.ssm_document",
    "cisaudit.plugin.waiver_tags",
]

HOSTS_KEY = pytest.StashKey[list[str]]()  # display specs (cisaudit.host.hostspec): test ids, reports
CONNECT_SPECS_KEY = pytest.StashKey[dict[str, str]]()  # display spec -> spec to connect with
SSM_HOSTS_KEY = pytest.StashKey[list[str]]()  # --ssm-targets found Online, resolved once on the controller
SSM_TARGETS_KEY = pytest.StashKey[list[str]]()  # every instance --ssm-targets named or matched
SSM_TAGS_KEY = pytest.StashKey[dict[tuple[str, str], list[str]]]()  # --ssm-targets tag -> its Online ids
WAIVERS_KEY = pytest.StashKey[dict[str, Waiver]]()
XDIST_SSM_HOSTS = "cisaudit_ssm_hosts"  # workerinput key
AGGREGATE_ABOVE = 200  # hosts; README "Auditing a fleet" (memory per pytest item)
CISAUDIT_GROUP = "CIS Docker audit-rule checks"
TESTINFRA_NOTES = {  # --help: what the suite makes of testinfra's options (options.py)
    "--connection": f"cisaudit: the scheme of a bare host in --hosts: {', '.join(TRANSPORTS)}; others refused",
    "--ssh-extra-args": "cisaudit: refused; use --ssh-config FILE",
    "--ansible-inventory": "cisaudit: refused; list the hosts in --hosts",
    "--force-ansible": "cisaudit: refused; name each host's scheme in --hosts",
}
HOSTS_HELP = (
    f"hosts to audit, comma list (default local://, this machine): {', '.join(t.form for t in TRANSPORTS.values())}"
    "; a bare HOST takes --connection's scheme "
    "(default paramiko); options ?sudo=true, ?sudo_user=U, ?ssh_identity_file=F, ?ssh_config=F. An empty "
    "value or entry is refused. Host keys: --known-hosts, --accept-new-host-keys (also for the host fixture)"
)


def pytest_plugin_registered(plugin: object, manager: pytest.PytestPluginManager) -> None:
    """Register pytest_plugins before pytest imports them: pytest reads every installed
    distribution's entry points once per name (9 times, about 800 failed file lookups, and on a
    host with thousands of rules on absent paths each failed lookup walks them all: issue 26.1)."""
    if plugin is sys.modules[__name__]:
        for name in pytest_plugins:
            if manager.get_plugin(name) is None:
                manager.rewrite_hook.mark_rewrite(name)
                manager.register(importlib.import_module(name), name)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cisaudit", CISAUDIT_GROUP)
    group.addoption(
        "--benchmark",
        default=DEFAULT_VERSION,
        choices=VERSIONS,
        help=f"CIS Docker Benchmark version to check: {' or '.join(VERSIONS)} (default {DEFAULT_VERSION})",
    )
    group.addoption(
        "--audit-key",
        action="append",
        default=None,
        help="audit key the rules must carry (default docker); several keys: comma-separated or repeated, "
        "any one of them counts; `any`: an access recorded with any key counts",
    )
    group.addoption(
        "--controls", default=None, help="comma list of control ids, e.g. 1.1.3,1.1.4 (default: all of --benchmark)"
    )
    group.addoption(
        "--require-all",
        action="store_true",
        help="golden-image mode: a control whose path is absent fails instead of skipping",
    )
    group.addoption(
        "--verify-events",
        action="store_true",
        help="access each audited path once per required permission class and "
        "require an audit event with the key for each access",
    )
    group.addoption(
        "--known-hosts",
        default=None,
        help="known_hosts file to trust besides ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts",
    )
    group.addoption(
        "--accept-new-host-keys",
        action="store_true",
        help="accept unknown SSH host keys (throwaway golden-image builds only)",
    )
    group.addoption("--connect-timeout", type=float, default=10, help="seconds (default 10)")
    group.addoption("--command-timeout", type=float, default=300, help="seconds per remote command")
    group.addoption(
        "--max-output-mb",
        type=float,
        default=32,
        help="MiB a host may send back per command (default 32); more is that host's error",
    )
    group.addoption(
        "--ssm-targets",
        default=None,
        help="SSM targets: comma list of instance ids and/or tag:Key=Value; one not audited (agent offline, "
        "not managed) is a host error",
    )
    group.addoption("--ssm-region", default=None, help="AWS region for ssm:// hosts")
    group.addoption("--aws-profile", default=None, help="AWS profile (default: AWS_PROFILE / chain)")
    group.addoption(
        "--ssm-s3-bucket",
        default=None,
        help="S3 bucket for SSM command output; an audit then probes the fleet by Run Command's fan-out",
    )
    group.addoption(
        "--ssm-max-concurrency",
        default=DEFAULT_MAX_CONCURRENCY,
        help="fan-out audit: instances probing at once, a count or a percentage (default "
        f"{DEFAULT_MAX_CONCURRENCY}; the API's own default is 50)",
    )
    group.addoption(
        "--waivers",
        default=None,
        help="InSpec-format waiver file (YAML): control id -> justification, expiration_date (required), run, "
        "approved_by, ticket, scope (hosts, instance_ids)",
    )
    group.addoption(
        "--require-approved-waivers",
        action="store_true",
        help="refuse a waiver file with a waiver that has no approved_by",
    )
    group.addoption("--remediate", action="store_true", help="add the missing rules, load them, re-check")
    group.addoption(
        "--backout",
        action="store_true",
        help="with --remediate: revert at the end and verify; alone: undo the host's latest run",
    )
    group.addoption("--dry-run", action="store_true", help="show the change per host, change nothing")
    group.addoption(
        "--aggregate-above",
        type=int,
        default=AGGREGATE_ABOVE,
        metavar="HOSTS",
        help=f"with more hosts than this, one pytest item per host holds its cases; every case stays in the "
        f"compliance report, results.json and XCCDF (JUnit: one testcase per item unless --fleet-reports), "
        f"-k/-m still select cases (default {AGGREGATE_ABOVE})",
    )
    _add_reboot_proof_options(group)
    add_shard_option(parser)
    instance_list.add_option(parser)
    # the outputs' options: cisaudit/plugin/report.py, from the registry (cisaudit/outputs/registry.py)


def _add_reboot_proof_options(group: pytest.OptionGroup) -> None:
    group.addoption(
        "--reboot-proof",
        action="store_true",
        help="audit, reboot each host through its transport (ssh: systemctl reboot; ssm: exit 194), wait for a "
        "new boot id (--command-timeout), audit again: a control persisted before the boot must be live after "
        "it (needs --require-all or --i-may-reboot)",
    )
    group.addoption("--i-may-reboot", action="store_true", help="permit --reboot-proof outside --require-all")


def _check_reboot_proof(config: pytest.Config, hosts: list[str]) -> None:
    option = config.getoption
    given = options.RebootProof(
        option("reboot_proof"), option("i_may_reboot"), option("require_all"), option("dry_run")
    )
    options.check_reboot_proof(given, hosts)


def selected_controls(config: pytest.Config) -> list[Control]:
    """The controls --controls names (all by default)."""
    try:
        return select(config.getoption("controls"), config.getoption("benchmark"))
    except ValueError as exc:
        raise pytest.UsageError(f"--controls: {exc}") from None


def audit_keys(config: pytest.Config) -> AuditKeys:
    """The keys --audit-key accepts (docker by default; checked in pytest_configure)."""
    try:
        return options.audit_keys(config.getoption("audit_key"))
    except OptionError as exc:
        raise pytest.UsageError(str(exc)) from None


def _host_cases(config: pytest.Config) -> list[Case]:
    checks = ((Check.REMEDIATION,) if config.getoption("remediate") else ()) + HOST_CHECKS
    return [Case(s, check) for s in config.stash[HOSTS_KEY] for check in checks]


def _control_cases(config: pytest.Config) -> list[Case]:
    checks = CONTROL_CHECKS + ((Check.EVENTS,) if config.getoption("verify_events") else ())
    checks += (Check.REBOOT_PROOF,) if config.getoption("reboot_proof") else ()
    return [Case(s, check, c) for s in config.stash[HOSTS_KEY] for c in selected_controls(config) for check in checks]


def _backout_cases(config: pytest.Config) -> list[Case]:
    return [Case(s, Check.BACKOUT) for s in config.stash[HOSTS_KEY]] if config.getoption("backout") else []


# The suite's test functions (tests/test_cis_docker_audit.py) and the cases each one runs.
CASES_OF = {"test_host": _host_cases, "test_control": _control_cases, "test_backout": _backout_cases}


def aggregated(config: pytest.Config) -> bool:
    """More hosts than --aggregate-above: one item per host and test function (plugin/aggregate.py)."""
    limit: int = config.getoption("aggregate_above")
    return len(config.stash.get(HOSTS_KEY, [])) > limit


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cis_case" not in metafunc.fixturenames:
        return
    function = metafunc.function.__name__
    if function not in CASES_OF:
        raise pytest.UsageError(
            f"{function} asks for cis_case, but the suite makes cases only for {', '.join(CASES_OF)}"
        )
    cases = CASES_OF[function](metafunc.config)
    if function in AGGREGATED and aggregated(metafunc.config):
        by_host: dict[str, list[Case]] = {}
        for case in cases:
            by_host.setdefault(case.spec, []).append(case)
        groups = [HostCases(spec, function, tuple(mine)) for spec, mine in by_host.items()]
        metafunc.parametrize("cis_case", [pytest.param(group, id=group.id) for group in groups])
        return
    metafunc.parametrize("cis_case", [pytest.param(case, id=case.id, marks=level_marks(case)) for case in cases])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each host's tests together, in their order (a session is released after its host's last
    test, fixtures.py); drop the placeholder pytest makes for a test with no cases (test_backout
    without --backout)."""
    group_by_host(items)
    empty = [i for i in items if "cis_case" in getattr(i, "fixturenames", ()) and case_of(i) is None]
    if empty:
        config.hook.pytest_deselected(items=empty)
        items[:] = [i for i in items if i not in empty]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Every usage error, before any host (or the SSM API) is touched: one line, exit 4."""
    if config.getoption("help", False):
        describe_hosts_option(config)
        return
    try:
        hosts = _check_command_line(config)
        shard = options.shard(config.getoption("shard"))
        config.stash[WAIVERS_KEY] = _waivers(config)
        if config.getoption("ssm_targets") or config.getoption("ssm_instances_file") is not None:
            _add_hosts(hosts, _discover_ssm_hosts(config, shard))
        if shard is not None:
            hosts = _shard_hosts(config, shard, hosts)
        config.stash[WAIVERS_KEY] = waiver_tags.resolve(config, config.stash[WAIVERS_KEY], list(hosts))
    except (OptionError, SpecError, CatalogueError) as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[CONNECT_SPECS_KEY] = hosts
    config.stash[HOSTS_KEY] = list(hosts)


def _check_command_line(config: pytest.Config) -> dict[str, str]:
    """The pure checks (options.py), then the files (preflight.py); the --hosts specs (display ->
    spec to connect with). Normalises --controls, --ssm-targets and --ssm-max-concurrency for the
    code that reads them."""
    option = config.getoption
    options.refused_testinfra({dest: option(dest, None) for dest in options.REFUSED_TESTINFRA})
    config.option.ssm_targets = ",".join(options.ssm_targets(option("ssm_targets")))
    hosts: dict[str, str] = {}
    instance_list.check(config)
    ssm = bool(option("ssm_targets")) or option("ssm_instances_file") is not None
    given = options.host_list(option("hosts", None), option("connection", None), ssm)
    _add_hosts(hosts, given)
    known = [c.id for c in controls(option("benchmark"))]
    config.option.controls = ",".join(options.control_ids(option("controls"), known))
    options.audit_keys(option("audit_key"))
    numbers = ("connect_timeout", "command_timeout", "max_output_mb", "aggregate_above")
    options.check_numbers(options.Numbers(*(option(dest) for dest in numbers)))
    options.check_modes(option("remediate"), option("backout"), option("dry_run"))
    options.check_changes(list(hosts), option("remediate"), option("backout"))
    _check_reboot_proof(config, given)
    try:
        config.option.ssm_max_concurrency = parse_concurrency(option("ssm_max_concurrency"))
    except ValueError as exc:
        raise OptionError(f"--ssm-max-concurrency: {exc}") from None
    for dest, flag in preflight.INPUTS.items():
        preflight.check_input(flag, option(dest, None))
    if not hasattr(config, "workerinput"):  # the controller writes the outputs
        preflight.check_outputs({dest: option(dest, None) for dest in preflight.outputs()})
    return hosts


def _add_hosts(hosts: dict[str, str], texts: list[str]) -> None:
    """Check each spec (hostspec.py) into hosts: display spec (ids, reports) -> spec to connect with."""
    for text in texts:
        try:
            checked = parse_spec(text)
        except SpecError as exc:
            raise SpecError(f"--hosts: {exc}") from None
        if hosts.setdefault(checked.display, checked.spec) != checked.spec:
            raise SpecError(
                f"--hosts: two hosts both show as {checked.display!r}; they differ "
                "only in their identity file (which reports never show)"
            )


def _waivers(config: pytest.Config) -> dict[str, Waiver]:
    path = config.getoption("waivers")
    if path is None:
        return {}
    if not path.strip():  # an unset variable: the failures the waivers cover would show, unexplained
        raise OptionError("--waivers is empty (an unset variable?): give the waiver FILE, or leave --waivers out")
    try:
        waivers = load_waivers(path, {c.id for c in controls(config.getoption("benchmark"))})
    except WaiverError as exc:
        raise OptionError(f"--waivers: {exc}") from None
    missing = unapproved(waivers) if config.getoption("require_approved_waivers") else []
    if missing:
        raise OptionError(
            f"--require-approved-waivers: {path}:{missing[0].line}: the waiver of {missing[0].control_id} "
            "has no approved_by; add its approver"
        )
    for waiver in waivers.values():
        if waiver.expired(today()) and not hasattr(config, "workerinput"):
            config.issue_config_time_warning(
                pytest.PytestWarning(
                    f"--waivers: {path}:{waiver.line}: the waiver of {waiver.control_id} expired on "
                    f"{waiver.expiration_date}; it is ignored"
                ),
                2,
            )
    return waivers


def _discover_ssm_hosts(config: pytest.Config, shard: Shard | None = None) -> list[str]:
    """Resolve --ssm-targets, or the ids of --ssm-instances-file (plugin/instance_list.py: listed
    once by a job before the shards), to ssm:// specs (controller only; workers get the list). A target
    asked for and not audited (agent offline, id not managed) stays a host: its sessions report
    why, in every output and the exit code, as the same host given as --hosts=ssm://... would; a
    tag no managed instance has is a usage error. A fan-out starts before the listing and probes
    beside it (plugin/fleet_audit.py)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return list(workerinput[XDIST_SSM_HOSTS])
    if config.getoption("ssm_instances_file") is not None:
        return instance_list.discover(config, shard, partial(_ssm_specs, config))
    from cisaudit.host.ssm.backend import discover_targets  # boto3 only for SSM runs
    from cisaudit.plugin.fleet_audit import discovered, start_before_discovery

    targets = config.getoption("ssm_targets")
    early = start_before_discovery(config, targets, shard)
    region, profile = config.getoption("ssm_region"), config.getoption("aws_profile")
    return discovered(
        early, lambda on_page: discover_targets(targets, region, profile, on_page), partial(_ssm_specs, config)
    )


def _ssm_specs(config: pytest.Config, found: Discovery) -> list[str]:
    """--ssm-targets' hosts from what discovery found (`_discover_ssm_hosts`)."""
    unaudited = [p.target for p in found.problems if not p.why.refuses_run]  # each that instance's ERROR
    targets = [p for p in found.problems if p.why.refuses_run]  # e.g. a tag nothing has
    if targets:
        raise OptionError(f"--ssm-targets: {targets[0]}; correct the target, or leave it out")
    config.stash[SSM_HOSTS_KEY] = [f"ssm://{i}" for i in found.online]  # checked Online: not asked again
    config.stash[SSM_TARGETS_KEY] = specs = [f"ssm://{i}" for i in [*found.online, *unaudited]]
    config.stash[SSM_TAGS_KEY] = found.tags
    return specs


def add_shard_option(parser: pytest.Parser) -> None:
    group = parser.getgroup("cisaudit-shard", "cisaudit across CI jobs (README: Past one runner)")
    group.addoption(
        "--shard",
        default=None,
        metavar="K/N",
        help="audit only shard K of N (1 <= K <= N): the hosts and --ssm-targets instances whose id hashes "
        "to K, whatever their order; join the shards' results.json with python -m cisaudit.plugin.merge",
    )


def _shard_hosts(config: pytest.Config, shard: Shard, hosts: dict[str, str]) -> dict[str, str]:
    """This shard's share of the hosts (model/shard.py), and of what --ssm-targets discovered."""
    if SSM_TARGETS_KEY in config.stash:
        online, targets = config.stash[SSM_HOSTS_KEY], config.stash[SSM_TARGETS_KEY]
        tags = config.stash[SSM_TAGS_KEY]
        config.stash[SSM_HOSTS_KEY], config.stash[SSM_TARGETS_KEY] = shard.hosts(online), shard.hosts(targets)
        # A tag that reaches other shards' instances goes by instance ids (fanout.plan_batches).
        config.stash[SSM_TAGS_KEY] = shard.whole_tags(tags)
    return {shown: spec for shown, spec in hosts.items() if shard.owns(shown)}


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """A --shard with no host of its own checked nothing and failed nothing: its CI job passes."""
    if session.config.getoption("shard", None) and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:  # xdist controller: hand workers the SSM hosts
    node.workerinput[XDIST_SSM_HOSTS] = node.config.stash.get(SSM_TARGETS_KEY, [])


def describe_hosts_option(config: pytest.Config) -> None:
    """--help: testinfra registers --hosts in its group with one line; show it first in ours,
    saying what the suite makes of it (argparse keeps no public way to move an option)."""
    parser = config._parser.optparser
    action = getattr(parser, "_option_string_actions", {}).get("--hosts")
    ours = next((g for g in getattr(parser, "_action_groups", ()) if g.title == CISAUDIT_GROUP), None)
    if action is None or ours is None:
        return
    action.help = HOSTS_HELP
    for flag, note in TESTINFRA_NOTES.items():
        other = parser._option_string_actions.get(flag)
        if other is not None:
            other.help = f"{other.help}. {note}"
    for group in parser._action_groups:
        if action in group._group_actions:
            group._group_actions.remove(action)
    ours._group_actions.insert(0, action)


class HostScheduling(LoadScopeScheduling):
    """All tests of one host on one worker, in order; different hosts in parallel.

    (`--dist loadgroup` with xdist_group does nothing on pytest 9.2 + xdist 3.8: docs/kernel-behaviour.md.)
    """

    def _split_scope(self, nodeid: str) -> str:
        return host_of_nodeid(nodeid)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> HostScheduling:
    return HostScheduling(config, log)
