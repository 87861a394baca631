"""End to end on real, independent hosts: QEMU VMs with their own kernels. Each scenario puts
a fresh VM into a known state; the real suite (`pytest --hosts=...` in a subprocess, as a user
runs it) must give exactly the scenario's verdict for every control and check. Several VMs
are audited at once with `-n`, and the same states audited one at a time must agree. The states
are built once for this and the other tests that walk them all (scenario_pass.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from selftests.e2e.scenario_pass import Findings, audit, put_in_state
from selftests.e2e.scenarios import BY_NAME

pytestmark = pytest.mark.vm


def test_every_scenario_gives_its_verdicts_in_parallel_and_serially(scenario_findings: Findings) -> None:
    problems = scenario_findings.verdicts
    assert not problems, "\n".join(problems)


def test_verify_events_finds_events_and_fails_when_auditd_stops(fleet, tmp_path: Path) -> None:
    vm = fleet[0]
    put_in_state(fleet, vm, BY_NAME["compliant"])
    run = audit(fleet, tmp_path / "on", [vm], "--verify-events", "--controls=1.1.4,1.1.6,1.1.10,1.1.18")
    for cid in ("1.1.4", "1.1.6", "1.1.10", "1.1.18"):  # runc: the rule is on the link's target
        assert run.verdict(vm.spec, cid, "events") == "pass", run.case(vm.spec, cid, "events").summary
    rc, _, err = vm.run("systemctl stop auditd")
    assert rc == 0, err
    run = audit(fleet, tmp_path / "off", [vm], "--verify-events", "--controls=1.1.6")
    live = run.case(vm.spec, "1.1.6", "live")  # the rule is still in the kernel, but nothing logs
    assert live.verdict == "fail" and "auditd is not running" in live.summary
    events = run.case(vm.spec, "1.1.6", "events")
    assert events.verdict == "fail" and "auditd is not running" in events.summary
