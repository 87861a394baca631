"""ssm:// against the VM fleet through the local SSM API emulator (AWS itself cannot be
reached offline): every scenario state gives the same verdicts as over SSH, under injected
throttling and delivery delays, with one SendCommand per host per audit, and so does the fleet
fan-out (one SendCommand for all, output through a real S3 store: moto's server mode); remediate
and backout over SSM leave each VM as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from cisaudit.host.transport import ConnectOptions
from selftests.e2e.test_remediation_fleet import STATE, check_remediated
from selftests.e2e.test_scenarios import audit, scenario_batches
from selftests.s3_store import MotoS3
from selftests.ssm_emulator import Faults, SsmEmulator
from selftests.suite_runner import run_suite

pytestmark = pytest.mark.vm
FAULTS = Faults(throttle_every=4, visibility_delay=1.0, pending_time=0.5)


def _sends(emu: SsmEmulator) -> int:
    """SendCommand requests the emulator answered (not throttled)."""
    stats = emu.stats()
    return stats["requests"].get("SendCommand", 0) - stats["throttled"].get("SendCommand", 0)


def instance(index: int) -> str:
    return f"i-{index + 1:017x}"


def test_ssm_gives_the_ssh_verdicts_and_remediates(fleet, tmp_path: Path) -> None:
    problems = []
    with MotoS3("cisaudit-e2e") as s3:
        _batches(fleet, tmp_path, s3, problems)
    assert not problems, "\n".join(problems)


def _batches(fleet, tmp_path: Path, s3: MotoS3, problems: list[str]) -> None:
    for number, pairs in scenario_batches(fleet):
        vms = [vm for vm, _ in pairs]
        ssh = audit(fleet, tmp_path / f"ssh{number}", vms)
        mapping = {instance(i): vm.spec for i, vm in enumerate(vms)}
        options = ConnectOptions(known_hosts=str(fleet.known_hosts))
        with SsmEmulator(mapping, faults=FAULTS, connect_options=options, s3_endpoint=s3.endpoint_url) as emu:
            specs = [f"ssm://{i}" for i in mapping]
            ssm = run_suite(tmp_path / f"ssm{number}", specs, "--ssm-region=us-east-1", env=emu.environ)
            sends = emu.stats()["calls"]["SendCommand"]
            for i, (vm, scenario) in enumerate(pairs):
                if ssm.verdicts(specs[i]) != ssh.verdicts(vm.spec):
                    problems.append(f"{scenario.name}: ssm and ssh verdicts differ")
                if sends.get(instance(i)) != 1:
                    problems.append(f"{scenario.name}: {sends.get(instance(i))} SendCommand calls for one audit")
            sent = _sends(emu)
            fanned = run_suite(
                tmp_path / f"fan{number}",
                specs,
                "--ssm-region=us-east-1",
                "--ssm-s3-bucket=cisaudit-e2e",
                env=emu.environ | s3.environ,
            )
            for i, (vm, scenario) in enumerate(pairs):
                if fanned.verdicts(specs[i]) != ssh.verdicts(vm.spec):
                    problems.append(f"{scenario.name}: fan-out and ssh verdicts differ")
            if _sends(emu) - sent != 1:
                problems.append(f"batch {number}: the fan-out took {_sends(emu) - sent} SendCommand calls, not 1")
            before = {vm.name: vm.run(STATE)[1] for vm in vms}
            fix = run_suite(
                tmp_path / f"fix{number}", specs, "--ssm-region=us-east-1", "--remediate", "--backout", env=emu.environ
            )
        for i, (vm, scenario) in enumerate(pairs):
            problems += [f"{scenario.name} over ssm: {p}" for p in check_remediated(fix, specs[i], scenario)]
            if fix.verdict(specs[i], "host", "backout") != "pass":
                problems.append(f"{scenario.name} over ssm: backout {fix.cases[(specs[i], 'host', 'backout')]}")
            if vm.run(STATE)[1] != before[vm.name]:
                problems.append(f"{scenario.name} over ssm: files or kernel rules differ after backout")
