"""pytest hooks of the fleet audit over SSM (README: AWS Systems Manager, fleet audits): on the
controller, before xdist starts its workers, one Run Command fan-out starts probing every ssm://
host (cisaudit/host/ssm/fleet.py) into a spool directory, in a thread beside the tests; each host's
session reads its probe result from there as soon as the fan-out publishes it
(cisaudit.plugin.fixtures), on whichever worker it runs. Registered by cisaudit.plugin."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cisaudit.host.hostspec import Capability, address, transport_of
from cisaudit.host.ssm.spool import Spool
from cisaudit.plugin import CONNECT_SPECS_KEY, SSM_HOSTS_KEY, SSM_TAGS_KEY

if TYPE_CHECKING:
    from cisaudit.host.ssm.fanout import Batch
    from cisaudit.host.ssm.fleet import FleetProbe

FLEET_SPOOL_KEY = pytest.StashKey[str]()  # directory of the fan-out's per-instance probe results
FLEET_THREAD_KEY = pytest.StashKey[threading.Thread]()  # the fan-out, run beside the tests
XDIST_FLEET_SPOOL = "cisaudit_fleet_spool"  # workerinput key


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
    if ids:
        config.stash[FLEET_SPOOL_KEY] = str(_fleet_probe(config, ids))


def _fleet_probe(config: pytest.Config, ids: list[str]) -> Path:
    from cisaudit.host.session import probe_command
    from cisaudit.host.ssm.backend import discover_targets  # boto3 only for SSM runs
    from cisaudit.host.ssm.fanout import plan_batches
    from cisaudit.host.ssm.fleet import FleetOptions, FleetProbe
    from cisaudit.plugin.fixtures import connect_options, run_context

    spool = Spool(Path(tempfile.mkdtemp(prefix="cisaudit-fleet-")))
    region, profile = config.getoption("ssm_region"), config.getoption("aws_profile")
    discovered_hosts: list[str] = config.stash.get(SSM_HOSTS_KEY, [])
    discovered = set(discovered_hosts)
    named = [i for i in ids if f"ssm://{i}" not in discovered]  # --hosts=ssm://...: not checked yet
    if named:
        found = discover_targets(",".join(named), region, profile)
        for problem in found.problems:
            spool.put_error(problem.split(":", 1)[0], f"ssm://{problem}")
        ids = [i for i in ids if i not in named or i in found.online]
    options = connect_options(config)
    concurrency = config.getoption("ssm_max_concurrency")
    fleet = FleetProbe(
        FleetOptions(
            options.ssm_s3_bucket or "",
            region,
            profile,
            concurrency,
            execution_timeout=options.command_timeout,
            max_output_bytes=options.max_output_bytes,
        ),
        spool,
    )
    tags: dict[tuple[str, str], list[str]] = config.stash.get(SSM_TAGS_KEY, {})
    batches = plan_batches(ids, tags)
    script, nonce = probe_command(run_context(config).version)
    spool.set_nonce(nonce)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter:
        reporter.write_line(
            f"cisaudit: probing {len(ids)} SSM instance(s) by Run Command fan-out, "
            f"{len(batches)} SendCommand(s), MaxConcurrency {concurrency}"
        )
    thread = threading.Thread(target=_fan_out, args=(fleet, batches, script, ids), name="cisaudit-fan-out", daemon=True)
    config.stash[FLEET_THREAD_KEY] = thread
    thread.start()  # the hosts' sessions read each result as the fan-out publishes it (Spool.take)
    return spool.directory


def _fan_out(fleet: FleetProbe, batches: list[Batch], script: str, ids: list[str]) -> None:
    """The fan-out, beside the tests; every instance ends with a result or an error either way."""
    try:
        fleet.run(batches, script)
    except Exception as exc:  # noqa: BLE001 - each host still ends with its one-line error
        for instance_id in ids:
            if not (fleet.spool.directory / f"{instance_id}.json").exists():
                fleet.spool.put_error(instance_id, f"ssm://{instance_id}: the fleet probe stopped: {exc!r}")
    finally:
        fleet.spool.finish()


def pytest_unconfigure(config: pytest.Config) -> None:
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
