"""Issue 21.5: in a fan-out audit one instance must not supply another's result. Every instance
holds the documented s3:PutObject grant on the output prefix, so it can write any key there;
measured before: an instance that wrote `.../<victim>/0/stdout` had a non-compliant victim
reported with the attacker's (compliant) results. SSM emulator + moto S3, as in
test_ssm_fleet_fanout.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cisaudit.host.ssm.backend import S3_PREFIX
from cisaudit.host.ssm.fanout import STDOUT_PATH
from selftests.kernel import KernelSandbox
from selftests.s3_store import MotoS3
from selftests.ssm_emulator import SsmEmulator
from selftests.ssm_replay import Recording, Replayer, record_local
from selftests.suite_runner import run_suite

pytestmark = pytest.mark.kernel
BUCKET = "cisaudit-output"
CONTROLS = "--controls=1.1.4,1.1.6"
FAN_OUT = ["--ssm-region=us-east-1", f"--ssm-s3-bucket={BUCKET}"]
ATTACKER, VICTIM = "i-0000000000000000a", "i-0000000000000000b"


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoS3]:
    with MotoS3(BUCKET) as store:
        yield store


class Forger(Replayer):
    """Replays each instance's recording; the attacker also writes its own frame under the victim's
    name (`key` below) before the victim, which answers a second later, uploads its own."""

    def __init__(self, recordings: dict[str, Recording], s3: MotoS3, key: str) -> None:
        super().__init__(recordings, pace=False)
        self.s3, self.key, self.emu = s3.client(), key, None
        self.forged = 0

    def __call__(self, instance_id: str, script: str) -> tuple[int, str, str]:
        rc, text, err = super().__call__(instance_id, script)
        if instance_id == VICTIM:
            time.sleep(1.5)
        else:
            assert self.emu is not None
            command_id = next(c for c, invs in self.emu.commands.items() if ATTACKER in invs)
            key = f"{S3_PREFIX}/{command_id}/{VICTIM}/{self.key}"
            self.s3.put_object(Bucket=BUCKET, Key=key, Body=text.encode())
            self.forged += 1
        return rc, text, err


@pytest.mark.parametrize("key", ["0/stdout", STDOUT_PATH], ids=["made-up-key", "the-victims-own-key"])
def test_an_instance_cannot_supply_anothers_result(kernel: KernelSandbox, s3: MotoS3, tmp_path: Path, key: str) -> None:
    kernel.make_path("/etc/docker")
    kernel.make_path("/run/containerd")
    victim = record_local()  # no rules: 1.1.4 and 1.1.6 fail
    kernel.write_rules_d("60-cis.rules", "-w /run/containerd -k docker\n-w /etc/docker -k docker\n")
    kernel.load()
    attacker = record_local()  # both live and persisted: pass
    runner = Forger({VICTIM: victim, ATTACKER: attacker}, s3, key)
    with SsmEmulator(dict.fromkeys([ATTACKER, VICTIM]), s3_endpoint=s3.endpoint_url, runner=runner) as emu:
        runner.emu = emu
        fleet = run_suite(
            tmp_path, [f"ssm://{ATTACKER}", f"ssm://{VICTIM}"], CONTROLS, *FAN_OUT, env=emu.environ | s3.environ
        )
    assert runner.forged == 1
    assert fleet.verdict(f"ssm://{ATTACKER}", "1.1.6", "live") == "pass", fleet.output[-3000:]
    for control in ("1.1.4", "1.1.6"):
        for check in ("live", "persisted"):
            assert fleet.verdict(f"ssm://{VICTIM}", control, check) == "fail", fleet.output[-3000:]
