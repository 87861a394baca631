"""pytest hooks of the fleet audit over SSM (README: AWS Systems Manager, fleet audits): on the
controller, before xdist starts its workers, one Run Command fan-out starts probing every ssm://
host (cisaudit/host/ssm/fleet.py) into a spool directory, in a thread beside the tests; each host's
session reads its probe result from there as soon as the fan-out publishes it
(cisaudit.plugin.fixtures), on whichever worker it runs. Registered by cisaudit.plugin.

With --ssm-targets the fan-out starts before discovery (`EarlyFleet`): each tag's command is sent
first and rolls out while DescribeInstanceInformation pages; a --shard sends its own instances by
id as each page names them (a tag would reach the other shards' instances)."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cisaudit.host.hostspec import Capability, address, transport_of
from cisaudit.host.ssm.spool import Spool
from cisaudit.plugin import CONNECT_SPECS_KEY, SSM_HOSTS_KEY, SSM_TAGS_KEY

if TYPE_CHECKING:
    from cisaudit.host.ssm.backend import Discovery
    from cisaudit.host.ssm.fleet import FleetProbe, _Command
    from cisaudit.model.shard import Shard

FLEET_SPOOL_KEY = pytest.StashKey[str]()  # directory of the fan-out's per-instance probe results
FLEET_THREAD_KEY = pytest.StashKey[threading.Thread]()  # the fan-out, run beside the tests
FLEET_KEY = pytest.StashKey["EarlyFleet"]()  # the fan-out started before discovery
XDIST_FLEET_SPOOL = "cisaudit_fleet_spool"  # workerinput key


@dataclass
class EarlyFleet:
    """A fan-out started before --ssm-targets' discovery (README "10,000 instances, faster")."""

    fleet: FleetProbe
    shard: Shard | None
    commands: dict[tuple[str, str], _Command] = field(default_factory=dict)  # each tag's, sent first
    covered: set[str] = field(default_factory=set)  # instances a command already audits

    def on_page(self, infos: list[dict[str, Any]]) -> None:
        """A shard's Online instances on a page of a tag's listing: probed by id now."""
        if self.shard is None:
            return
        mine = [i["InstanceId"] for i in infos if i.get("PingStatus") == "Online"]
        mine = [i for i in self.shard.instances(mine) if i not in self.covered]
        self.covered.update(mine)
        self.fleet.stream(mine)

    def bind(self, found: Discovery) -> None:
        """Discovery is over: each tag's command audits the tag's Online instances no earlier tag
        took (fanout.plan_batches); what its listing named is what it may have reached."""
        from cisaudit.host.ssm.fanout import plan_batches

        members = {b.tag: b.members for b in plan_batches(found.online, found.tags) if b.tag}
        for tag, command in self.commands.items():
            mine = members.get(tag, ())
            self.covered.update(mine)
            self.fleet.bind(command, mine, found.listed.get(tag, ()))

    def abort(self) -> None:
        """The run stops before its tests (a usage error): nothing more is sent, what was is cancelled."""
        for command in self.commands.values():
            self.fleet.bind(command, (), ())
        self.fleet.close()


def discovered(
    early: EarlyFleet | None, find: Callable[[Any], Discovery], specs: Callable[[Discovery], list[str]]
) -> list[str]:
    """Discovery (`find`, given the fan-out's page callback) beside a fan-out started before it:
    the fan-out is bound to what it found, or aborted when discovery or `specs` fails."""
    try:
        found = find(early.on_page if early else None)
        hosts = specs(found)
    except BaseException:
        if early:
            early.abort()
        raise
    if early:
        early.bind(found)
    return hosts


def start_before_discovery(config: pytest.Config, targets: str, shard: Shard | None) -> EarlyFleet | None:
    """When the run fans out: its fan-out thread now, and each tag target's command sent (not
    in a shard); discovery then binds them (`EarlyFleet.bind`). None when the run does not fan out."""
    if hasattr(config, "workerinput") or not fans_out(config):
        return None
    from cisaudit.host.ssm.backend import parse_tag

    spool = Spool(Path(tempfile.mkdtemp(prefix="cisaudit-fleet-")))
    early = EarlyFleet(_new_fleet(config, spool), shard)
    if shard is None:
        for tag in filter(None, map(parse_tag, targets.split(","))):
            command = early.fleet.send_tag(tag)
            if command is not None:
                early.commands.setdefault(tag, command)
    config.stash[FLEET_KEY] = early
    config.stash[FLEET_SPOOL_KEY] = str(spool.directory)
    _start(config, early.fleet, [])
    return early


def fans_out(config: pytest.Config) -> bool:
    """An audit over SSM with an S3 bucket probes the fleet in one fan-out; a change
    (--remediate, --backout) stays one command per host: each is its own transaction."""
    return bool(
        config.getoption("ssm_s3_bucket")
        and not config.getoption("remediate")
        and not config.getoption("backout")
        and not config.getoption("collectonly")
    )


@pytest.hookimpl(tryfirst=True)  # before xdist starts its workers (trylast): they get the spool
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput") or not fans_out(config):
        return
    specs = config.stash[CONNECT_SPECS_KEY].values()
    ids = [address(s) for s in specs if transport_of(s).can(Capability.FLEET_API)]
    early = config.stash.get(FLEET_KEY, None)
    if early is not None:
        _fleet_probe(config, ids, early)
    elif ids:
        spool = Spool(Path(tempfile.mkdtemp(prefix="cisaudit-fleet-")))
        config.stash[FLEET_SPOOL_KEY] = str(spool.directory)
        _fleet_probe(config, ids, EarlyFleet(_new_fleet(config, spool), None), start=True)


def _new_fleet(config: pytest.Config, spool: Spool) -> FleetProbe:
    from cisaudit.host.session import probe_command
    from cisaudit.host.ssm.fleet import FleetOptions, FleetProbe
    from cisaudit.plugin.fixtures import connect_options

    options = connect_options(config)
    fleet_options = FleetOptions(
        options.ssm_s3_bucket or "",
        config.getoption("ssm_region"),
        config.getoption("aws_profile"),
        config.getoption("ssm_max_concurrency"),
        execution_timeout=options.command_timeout,
        max_output_bytes=options.max_output_bytes,
    )
    script, nonce = probe_command(config.getoption("benchmark"))
    spool.set_nonce(nonce)
    return FleetProbe(fleet_options, spool, script)


def _fleet_probe(config: pytest.Config, ids: list[str], early: EarlyFleet, start: bool = False) -> None:
    """The batches for the hosts no command covers yet (sent in the fan-out's thread); then the
    fan-out knows every host it has to probe."""
    from cisaudit.host.ssm.backend import discover_targets  # boto3 only for SSM runs
    from cisaudit.host.ssm.fanout import plan_batches

    spool = early.fleet.spool
    region, profile = config.getoption("ssm_region"), config.getoption("aws_profile")
    discovered_hosts: list[str] = config.stash.get(SSM_HOSTS_KEY, [])
    discovered = set(discovered_hosts)
    named = [i for i in ids if f"ssm://{i}" not in discovered]  # --hosts=ssm://...: not checked yet
    if named:
        found = discover_targets(",".join(named), region, profile)
        for problem in found.problems:
            spool.put_error(problem.target, f"ssm://{problem}")
        ids = [i for i in ids if i not in named or i in found.online]
    tags: dict[tuple[str, str], list[str]] = config.stash.get(SSM_TAGS_KEY, {})
    batches = plan_batches([i for i in ids if i not in early.covered], tags)
    early.fleet.add(batches)
    early.fleet.close()
    if start:
        _start(config, early.fleet, ids)
    else:
        early.fleet.watch(ids)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter:
        reporter.write_line(
            f"cisaudit: probing {len(ids)} SSM instance(s) by Run Command fan-out "
            f"({len(early.commands)} tag command(s) sent before discovery, {len(batches)} more SendCommand(s) "
            f"and the ids found page by page), MaxConcurrency {config.getoption('ssm_max_concurrency')}"
        )


def _start(config: pytest.Config, fleet: FleetProbe, ids: list[str]) -> None:
    fleet.watch(ids)
    thread = threading.Thread(target=_fan_out, args=(fleet,), name="cisaudit-fan-out", daemon=True)
    config.stash[FLEET_THREAD_KEY] = thread
    thread.start()  # the hosts' sessions read each result as the fan-out publishes it (Spool.take)


def _fan_out(fleet: FleetProbe) -> None:
    """The fan-out, beside the tests; every instance ends with a result or an error either way."""
    try:
        fleet.run()
    except Exception as exc:  # noqa: BLE001 - each host still ends with its one-line error
        for instance_id in fleet.watched():
            if not (fleet.spool.directory / f"{instance_id}.json").exists():
                fleet.spool.put_error(instance_id, f"ssm://{instance_id}: the fleet probe stopped: {exc!r}")
    finally:
        fleet.spool.finish()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Instances a tag's command reached that its listing did not name: reported, never audited."""
    early = config.stash.get(FLEET_KEY, None)
    if early is not None and early.fleet.unlisted:
        unlisted = sorted(early.fleet.unlisted)
        terminalreporter.write_line(
            f"cisaudit: {len(unlisted)} SSM instance(s) ran the probe by tag but were not in the tag's "
            f"listing (tagged after SendCommand?), not audited: {', '.join(unlisted[:20])}"
            + (" ..." if len(unlisted) > 20 else ""),
            yellow=True,
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    early = config.stash.get(FLEET_KEY, None)
    if early is not None and not early.fleet.closed:  # the run stopped before its session started
        early.abort()
    thread = config.stash.get(FLEET_THREAD_KEY, None)
    if thread is not None:
        thread.join()
    if not hasattr(config, "workerinput") and FLEET_SPOOL_KEY in config.stash:
        shutil.rmtree(config.stash[FLEET_SPOOL_KEY], ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:  # xdist controller: hand workers the spool
    node.workerinput[XDIST_FLEET_SPOOL] = node.config.stash.get(FLEET_SPOOL_KEY, None)


def spool_for(config: pytest.Config) -> Spool | None:
    """The fan-out's spool in this process (controller or worker), or None without a fan-out."""
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    path = workerinput.get(XDIST_FLEET_SPOOL) if workerinput else config.stash.get(FLEET_SPOOL_KEY, None)
    return Spool(Path(path)) if path else None
