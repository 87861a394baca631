"""ssm:// against the VM fleet through the local SSM API emulator (AWS itself cannot be
reached offline): every scenario state gives the same verdicts as over SSH, under injected
throttling and delivery delays, with one SendCommand per host per audit, and so does the fleet
fan-out (one SendCommand for all, output through a real S3 store: moto's server mode); remediate
and backout over SSM leave each VM as it was. The states are built once for this and the other
tests that walk them all (scenario_pass.py)."""

from __future__ import annotations

import pytest

from selftests.e2e.scenario_pass import Findings

pytestmark = pytest.mark.vm


def test_ssm_gives_the_ssh_verdicts_and_remediates(scenario_findings: Findings) -> None:
    problems = scenario_findings.ssm
    assert not problems, "\n".join(problems)
