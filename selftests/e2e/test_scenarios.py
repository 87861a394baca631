"""End to end on real, independent hosts: QEMU VMs with their own kernels. Each scenario puts
a fresh VM into a known state; the real suite (`pytest --hosts=...` in a subprocess, as a user
runs it) must give exactly the scenario's verdict for every control and check. Several VMs
are audited at once with `-n`, and the same states audited one at a time must agree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from selftests.e2e.scenarios import BASELINE, BY_NAME, SCENARIOS, Scenario
from selftests.suite_runner import SuiteRun, run_suite, shown
from selftests.testhosts.vm import VM

pytestmark = pytest.mark.vm


def put_in_state(fleet, vm, scenario: Scenario) -> None:
    fleet.reset(vm)
    rc, out, err = vm.run((BASELINE if scenario.baseline else "set -e\n") + scenario.setup, timeout=180)
    assert rc == 0, f"{scenario.name} setup failed on {vm.name}: {out}{err}"


def audit(fleet, tmp_path: Path, vms, *args: str) -> SuiteRun:
    return run_suite(tmp_path, [vm.spec for vm in vms], f"--known-hosts={fleet.known_hosts}", *args)


def scenario_batches(fleet) -> Iterator[tuple[int, list[tuple[VM, Scenario]]]]:
    """Every scenario, as many at a time as the fleet has VMs, each VM put into its state."""
    for number, start in enumerate(range(0, len(SCENARIOS), len(fleet))):
        pairs = list(zip(fleet, SCENARIOS[start : start + len(fleet)], strict=False))
        for vm, scenario in pairs:
            put_in_state(fleet, vm, scenario)
        yield number, pairs


def test_every_scenario_gives_its_verdicts_in_parallel_and_serially(fleet, tmp_path: Path) -> None:
    mismatches = []
    for number, pairs in scenario_batches(fleet):
        vms = [vm for vm, _ in pairs]
        parallel = audit(fleet, tmp_path / f"p{number}", vms, f"-n={len(vms)}")
        serial = audit(fleet, tmp_path / f"s{number}", vms, "-n=0")
        for vm, scenario in pairs:
            got = parallel.verdicts(vm.spec)
            assert got == serial.verdicts(vm.spec), f"{scenario.name}: -n and serial runs disagree"
            commands = {c.remote_commands for (spec, *_), c in parallel.cases.items() if spec == shown(vm.spec)}
            if commands != {1}:
                mismatches.append(f"{scenario.name}: remote commands {commands}, want 1")
            expected = scenario.expected()
            wrong = {k: (v, got.get(k)) for k, v in expected.items() if got.get(k) != v}
            if wrong:
                details = {k: parallel.case(vm.spec, *k).get("summary") for k in wrong}
                mismatches.append(f"{scenario.name}: expected/got {wrong}\n  {details}")
    assert not mismatches, "\n".join(mismatches)


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
