"""The fan-out audit over SSM (cisaudit/host/ssm/fleet.py) against the local SSM emulator and a real
S3 store (moto's server mode): AWS itself cannot be reached offline.

Every instance's verdicts must equal the per-host path's on the same states: once on recorded
real probe outputs of this machine in three audit states (the emulator replays them), and once
executing the probe for real on this machine, with failing instances beside it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from selftests.kernel import KernelSandbox
from selftests.s3_store import MotoS3
from selftests.ssm_emulator import Faults, SsmEmulator
from selftests.ssm_replay import Recording, Replayer, record_local
from selftests.suite_runner import SuiteRun, run_suite

pytestmark = pytest.mark.kernel
BUCKET = "cisaudit-output"
CONTROLS = "--controls=1.1.4,1.1.6,1.1.10"
SSM = ["--ssm-region=us-east-1"]
FAN_OUT = [*SSM, f"--ssm-s3-bucket={BUCKET}"]


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoS3]:
    with MotoS3(BUCKET) as store:
        yield store


def _states(kernel: KernelSandbox) -> list[Recording]:
    """Three audit states of this machine, each recorded from the real probe."""
    kernel.make_path("/run/containerd")
    kernel.make_path("/etc/docker")
    recordings = [record_local()]  # no rules at all
    kernel.write_rules_d("60-cis.rules", "-a exit,always -F path=/run/containerd -F perm=war -k docker\n")
    kernel.load()
    recordings.append(record_local())  # 1.1.4 live and persisted
    kernel.write_rules_d("70-cis.rules", "-w /etc/docker -k docker\n")
    kernel.load()
    recordings.append(record_local())  # and 1.1.6
    return recordings


def _served(emu: SsmEmulator) -> dict[str, int]:
    """API requests per operation the emulator answered (not throttled)."""
    stats = emu.stats()
    return {op: n - stats["throttled"].get(op, 0) for op, n in stats["requests"].items()}


def _by_host(run: SuiteRun, ids: list[str]) -> dict[str, dict[tuple[str, str], str]]:
    return {i: run.verdicts(f"ssm://{i}") for i in ids}


def test_fan_out_verdicts_equal_the_per_host_path_on_recorded_states(
    kernel: KernelSandbox, s3: MotoS3, tmp_path: Path
) -> None:
    recordings = _states(kernel)
    ids = [f"i-{n:017x}" for n in range(1, 10)]
    replay = {i: recordings[n % 3] for n, i in enumerate(ids)}
    tags = {i: {"Role": "docker-host"} for i in ids}
    faults = Faults(throttle_every=4, latency=0.05)
    with SsmEmulator(dict.fromkeys(ids), tags=tags, faults=faults, runner=Replayer(replay, pace=False)) as emu:
        per_host = run_suite(tmp_path / "per-host", [f"ssm://{i}" for i in ids], CONTROLS, *SSM, env=emu.environ)
        per_host_sends = _served(emu)["SendCommand"]
    with SsmEmulator(
        dict.fromkeys(ids), tags=tags, faults=faults, s3_endpoint=s3.endpoint_url, runner=Replayer(replay, pace=False)
    ) as emu:
        fleet = run_suite(
            tmp_path / "fleet",
            [],
            "--ssm-targets=tag:Role=docker-host",
            CONTROLS,
            *FAN_OUT,
            env=emu.environ | s3.environ,
        )
        requests = _served(emu)
    assert _by_host(fleet, ids) == _by_host(per_host, ids), fleet.output[-3000:]
    assert len({tuple(sorted(v.items())) for v in _by_host(fleet, ids).values()}) == 3  # the states differ
    assert fleet.verdict(f"ssm://{ids[1]}", "1.1.4", "live") == "pass"
    assert fleet.verdict(f"ssm://{ids[1]}", "1.1.6", "live") == "fail"
    assert fleet.verdict(f"ssm://{ids[2]}", "1.1.6", "persisted") == "pass"
    assert per_host_sends == len(ids) and requests["SendCommand"] == 1, requests
    assert sum(requests.values()) <= 0.5 * len(ids), requests  # 9 hosts, 3 or 4 calls
    assert all(p.remote_commands == 1 for p in fleet.cases.values())


def test_fan_out_runs_the_probe_for_real_and_fails_hosts_one_by_one(
    kernel: KernelSandbox, s3: MotoS3, tmp_path: Path
) -> None:
    """Over InstanceIds (one command for all), under xdist: the same verdicts as local://; an
    Undeliverable and a Failed instance are their own one-line errors, the rollout goes on."""
    _states(kernel)
    local = run_suite(tmp_path / "local", ["local://"], CONTROLS)
    good = ["i-0000000000000000a", "i-0000000000000000b"]
    lost, failed = "i-0000000000000000c", "i-0000000000000000d"
    faults = Faults(undeliverable=frozenset({lost}), fail=frozenset({failed}), visibility_delay=0.5)
    with SsmEmulator(
        dict.fromkeys([*good, lost, failed], "local://"), faults=faults, s3_endpoint=s3.endpoint_url
    ) as emu:
        fleet = run_suite(
            tmp_path / "fleet",
            [f"ssm://{i}" for i in [failed, *good, lost]],
            CONTROLS,
            *FAN_OUT,
            "--ssm-max-concurrency=1",
            "-n=2",
            env=emu.environ | s3.environ,
        )
        requests = _served(emu)
    for instance_id in good:
        assert fleet.verdicts(f"ssm://{instance_id}") == local.verdicts("local://"), fleet.output[-3000:]
    assert requests["SendCommand"] == 1
    for instance_id, details in ((lost, "Undeliverable"), (failed, "Failed")):
        case = fleet.case(f"ssm://{instance_id}", "1.1.4", "live")
        assert case.verdict == "error" and f"StatusDetails={details}" in case.summary, case
        assert "\n" not in case.summary
    assert fleet.returncode == 1


def test_fan_out_ssm_targets_not_audited_are_host_errors(s3: MotoS3, tmp_path: Path) -> None:
    """A tagged instance whose agent is offline and a named id that is not managed were asked
    for: each is a host error in the fan-out audit too, and the exit code says so."""
    online, offline, unmanaged = "i-00000000000000a01", "i-00000000000000a02", "i-00000000000000a0f"
    tags = {i: {"Role": "docker-host"} for i in (online, offline)}
    with SsmEmulator({online: "local://"}, tags=tags, offline=[offline], s3_endpoint=s3.endpoint_url) as emu:
        fleet = run_suite(
            tmp_path,
            [],
            f"--ssm-targets=tag:Role=docker-host,{unmanaged}",
            "--controls=1.1.4",
            *FAN_OUT,
            env=emu.environ | s3.environ,
        )
    assert fleet.returncode == 1, fleet.output[-3000:]
    assert fleet.verdict(f"ssm://{online}", "1.1.4", "live") != "error", fleet.output[-3000:]
    for instance_id, why in ((offline, "offline (PingStatus=ConnectionLost)"), (unmanaged, "not a managed instance")):
        case = fleet.case(f"ssm://{instance_id}", "1.1.4", "live")
        assert case.verdict == "error" and why in case.summary, case
