"""The AWS publishers' options and their one call at session end (cisaudit/publish, README "AWS").

`publication_errors` runs each publisher the options ask for before the file writers
(report.py's pytest_sessionfinish) and turns every host error they return into that host's
ERROR record (`host` / `publish`), so the terminal, results.json, XCCDF and the compliance
report say it and the exit code fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import pytest

from cisaudit.model.verdict import Check, Status
from cisaudit.outputs.junit import CaseSpool
from cisaudit.outputs.record import HOST_CONTROL, CaseRecord
from cisaudit.outputs.results import RunResults
from cisaudit.plugin.options import OptionError
from cisaudit.plugin.preflight import check_output
from cisaudit.publish.compliance_items import DEFAULT_TYPE, check_type


class Publisher(Protocol):
    name: str

    def publish(self, results: RunResults) -> Mapping[str, str]: ...


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cisaudit-aws", 'cisaudit AWS publishing (ssm:// hosts; README "AWS")')
    group.addoption(
        "--ssm-compliance",
        nargs="?",
        const=DEFAULT_TYPE,
        default=None,
        metavar="TYPE",
        help=f"publish each ssm:// instance's result to SSM Compliance as TYPE (default {DEFAULT_TYPE})",
    )
    group.addoption(
        "--ssm-compliance-concurrency",
        type=int,
        default=16,
        metavar="N",
        help="PutComplianceItems calls at once (default 16)",
    )
    group.addoption("--asff", default=None, metavar="PATH", help="write the ssm:// findings in ASFF to PATH")
    group.addoption(
        "--security-hub", action="store_true", help="import the ssm:// findings into Security Hub (BatchImportFindings)"
    )


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("help", False) or hasattr(config, "workerinput"):
        return
    try:
        check_options(config)
    except OptionError as exc:
        raise pytest.UsageError(str(exc)) from None


def check_options(config: pytest.Config) -> None:
    ctype = config.getoption("ssm_compliance")
    if ctype is not None:
        try:
            check_type(ctype)
        except ValueError as exc:
            raise OptionError(f"--ssm-compliance: {exc}") from None
    if config.getoption("ssm_compliance_concurrency") < 1:
        raise OptionError("--ssm-compliance-concurrency: give a whole number of calls, 1 or more")
    if config.getoption("asff") is not None:
        check_output("--asff", config.getoption("asff"))


def publishers(config: pytest.Config) -> list[Publisher]:
    """The publishers the options ask for (boto3 imported only then)."""
    option = config.getoption
    region, profile = option("ssm_region", None), option("aws_profile", None)
    found: list[Publisher] = []
    if option("ssm_compliance"):
        from cisaudit.publish.ssm_compliance import SsmCompliancePublisher

        found.append(
            SsmCompliancePublisher(option("ssm_compliance"), region, profile, option("ssm_compliance_concurrency"))
        )
    if option("asff") or option("security_hub"):
        from cisaudit.publish.security_hub import SecurityHubPublisher

        found.append(SecurityHubPublisher(option("asff"), option("security_hub"), region, profile))
    return found


def error_records(errors: Mapping[str, list[str]], results: RunResults) -> list[CaseRecord]:
    """One ERROR record per host that a publisher could not publish."""
    return [
        CaseRecord(
            host,
            HOST_CONTROL,
            Check.PUBLISH,
            Status.ERROR,
            summary="; ".join(reasons),
            benchmark=f"{results.info.benchmark.title} v{results.info.benchmark.version}",
            title="results published to AWS",
        )
        for host, reasons in errors.items()
    ]


def publication_errors(config: pytest.Config, results: RunResults) -> list[CaseRecord]:
    """Run the publishers, side by side; their host errors as ERROR records (empty: all published)."""
    chosen = publishers(config)
    if not chosen:
        return []
    with ThreadPoolExecutor(len(chosen), thread_name_prefix="publish") as pool:  # each API has its own quota
        answers = list(pool.map(lambda p: (p.name, p.publish(results)), chosen))
    errors: dict[str, list[str]] = {}
    for name, failed in answers:
        for host, error in failed.items():
            errors.setdefault(host or "aws", []).append(f"{name}: {error}")
    return error_records(errors, results)


def junit_spool(config: pytest.Config, spool: CaseSpool | None, records: list[CaseRecord]) -> CaseSpool | None:
    """The publish errors as JUnit testcases too (merged into --junitxml's file with the spool)."""
    junit = config.getoption("xmlpath", None)
    if not junit or not Path(junit).exists():
        return spool
    spool = spool or CaseSpool(Path(junit))
    named = [(r, f"test_publish[{r.host}]") for r in records]
    spool.add(named, "cisaudit::publish", "cisaudit/plugin/publish.py", 0)
    return spool
