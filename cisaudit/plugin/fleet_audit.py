"""pytest hooks of the fleet audit over SSM (README: AWS Systems Manager, fleet audits): on the
controller, before xdist starts its workers, one Run Command fan-out probes every ssm:// host
(cisaudit/host/ssm/fleet.py) into a spool directory; each host's session then reads its probe result
from there (cisaudit.plugin.fixtures), on whichever worker it runs. Registered by cisaudit.plugin."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from cisaudit.host.hostspec import Capability, address, transport_of
from cisaudit.host.ssm.spool import Spool
from cisaudit.plugin import CONNECT_SPECS_KEY, SSM_HOSTS_KEY, SSM_TAGS_KEY

FLEET_SPOOL_KEY = pytest.StashKey[str]()  # directory of the fan-out's per-instance probe results
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
    fleet.run(batches, script)
    return spool.directory


def pytest_unconfigure(config: pytest.Config) -> None:
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
