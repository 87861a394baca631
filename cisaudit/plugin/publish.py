"""The AWS publishers (cisaudit/publish, README "AWS") as entries of the outputs' registry
(cisaudit/outputs/registry.py): their options, how each is built from them, and their usage errors.

Like every publisher they run before the file writers (plugin/report.py), and each host one
fails for gets that host's `publication` ERROR record, in every output and the exit code.
"""

from __future__ import annotations

import pytest

from cisaudit.outputs import registry
from cisaudit.outputs.registry import Entry, Option, Publisher, Settings
from cisaudit.plugin.options import OptionError
from cisaudit.publish.compliance_items import DEFAULT_TYPE, check_type


def _ssm_compliance(settings: Settings) -> Publisher | None:
    compliance_type = settings.option("ssm_compliance")
    if not compliance_type:
        return None
    from cisaudit.publish.ssm_compliance import SsmCompliancePublisher  # boto3 only when asked for

    return SsmCompliancePublisher(
        compliance_type,
        settings.option("ssm_region"),
        settings.option("aws_profile"),
        settings.option("ssm_compliance_concurrency"),
    )


def _security_hub(settings: Settings) -> Publisher | None:
    if not (settings.option("asff") or settings.option("security_hub")):
        return None
    from cisaudit.publish.security_hub import SecurityHubPublisher  # boto3 only when asked for

    return SecurityHubPublisher(
        settings.option("asff"),
        settings.option("security_hub"),
        settings.option("ssm_region"),
        settings.option("aws_profile"),
    )


registry.register(
    Entry(
        "ssm_compliance",
        (
            Option(
                "--ssm-compliance",
                f"publish each ssm:// instance's result to SSM Compliance as TYPE (default {DEFAULT_TYPE})",
                None,
                "TYPE",
                path=False,
                nargs="?",
                const=DEFAULT_TYPE,
            ),
            Option(
                "--ssm-compliance-concurrency",
                "PutComplianceItems calls at once (default 16)",
                16,
                "N",
                path=False,
                type=int,
            ),
        ),
        _ssm_compliance,
    )
)
registry.register(
    Entry(
        "security_hub",
        (
            Option("--asff", "write the ssm:// findings in ASFF to PATH"),
            Option(
                "--security-hub",
                "import the ssm:// findings into Security Hub (BatchImportFindings)",
                None,
                None,
                path=False,
                action="store_true",
            ),
        ),
        _security_hub,
    )
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
    compliance_type = config.getoption("ssm_compliance")
    if compliance_type is not None:
        try:
            check_type(compliance_type)
        except ValueError as exc:
            raise OptionError(f"--ssm-compliance: {exc}") from None
    if config.getoption("ssm_compliance_concurrency") < 1:
        raise OptionError("--ssm-compliance-concurrency: give a whole number of calls, 1 or more")
