"""`--ssm-document-results=COMMAND_ID`: judge the output of the SSM document in remediation/
(host/ssm/document.py) as this suite's own run: each ssm:// host's probe result is read from
that command's invocation into the fleet spool (plugin/fleet_audit.py), and the host sessions
judge it as a fan-out's. Registered by cisaudit.plugin."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from cisaudit.plugin import CONNECT_SPECS_KEY, audit_keys
from cisaudit.plugin.fleet_audit import FLEET_SPOOL_KEY


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cisaudit-aws", 'cisaudit AWS publishing (ssm:// hosts; README "AWS")')
    group.addoption(
        "--ssm-document-results",
        default=None,
        metavar="COMMAND_ID",
        help="judge the output of the cisaudit SSM document run COMMAND_ID (remediation/: an audit, or what a "
        "remediate left) on each ssm:// host",
    )


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    command_id = config.getoption("ssm_document_results")
    if command_id is None or config.getoption("help", False):
        return
    clashes = [flag for flag in ("remediate", "backout", "ssm_s3_bucket") if config.getoption(flag)]
    if clashes:
        flag = "--" + clashes[0].replace("_", "-")
        raise pytest.UsageError(f"--ssm-document-results judges a finished document run: leave out {flag}")
    if not command_id.strip():
        raise pytest.UsageError("--ssm-document-results is empty: give the document run's CommandId")


@pytest.hookimpl(tryfirst=True)  # before xdist starts its workers: they get the spool
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    command_id = config.getoption("ssm_document_results")
    if command_id is None or hasattr(config, "workerinput"):
        return
    from cisaudit.host.ssm.document import read_results
    from cisaudit.host.ssm.spool import Spool

    ids = [s.removeprefix("ssm://") for s in config.stash[CONNECT_SPECS_KEY].values() if s.startswith("ssm://")]
    spool = Spool(Path(tempfile.mkdtemp(prefix="cisaudit-document-")))
    region, profile = config.getoption("ssm_region"), config.getoption("aws_profile")
    read_results(command_id, ids, spool, config.getoption("benchmark"), audit_keys(config), region, profile)
    config.stash[FLEET_SPOOL_KEY] = str(spool.directory)
