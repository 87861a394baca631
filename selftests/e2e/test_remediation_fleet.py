"""Remediation and backout on real VMs, over every scenario state, several hosts at once.

For each state: `--remediate` must fix every control it can (the rest are left alone because a
rule the tool did not write keeps them failing) and verify; a second `--remediate` changes
nothing; a later `--backout` run undoes the earlier remediation exactly: the rules files
byte-identical and the kernel's rule list unchanged. Both in one run (`--remediate --backout`)
get the same checks on the same states over ssm:// (test_ssm_fleet; over SSH, test_connection_cut
runs them with the connection cut mid-apply). The states are built once for this and the other
tests that walk them all (scenario_pass.py)."""

from __future__ import annotations

import pytest

from selftests.e2e.scenario_pass import Findings

pytestmark = pytest.mark.vm


def test_remediate_and_backout_every_state(scenario_findings: Findings) -> None:
    problems = scenario_findings.remediation
    assert not problems, "\n".join(problems)
