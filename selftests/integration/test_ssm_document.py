"""The SSM document in remediation/ run by the SSM emulator (which runs the document's script as
it runs AWS-RunShellScript), on this machine's kernel: `--ssm-document-results` judges its output
with the same verdicts as the suite's own run over ssm://, and a run the suite cannot judge
(backout, another benchmark version) is a host error."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from selftests.kernel import KernelSandbox
from selftests.ssm_emulator import SsmEmulator
from selftests.suite_runner import REPO, run_suite

pytestmark = pytest.mark.kernel
IDS = ["i-00000000000000001", "i-00000000000000002"]
HOSTS = [f"ssm://{i}" for i in IDS]
CONTROLS = "--controls=1.1.4,1.1.6,1.1.10"
DOCUMENT = json.loads((REPO / "remediation" / "cisaudit-docker.ssm.json").read_text())


def _send(emu: SsmEmulator, parameters: dict[str, list[str]]) -> str:
    ssm: Any = boto3.client(
        "ssm",
        endpoint_url=emu.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="emulator",
        aws_secret_access_key="emulator",
    )
    command_id = str(
        ssm.send_command(InstanceIds=IDS, DocumentName="cisaudit-docker", Parameters=parameters)["Command"]["CommandId"]
    )
    deadline = time.monotonic() + 300
    while any(inv.status not in ("Success", "Failed") for inv in emu.commands[command_id].values()):
        assert time.monotonic() < deadline, "the document run did not end"
        time.sleep(0.2)
    return command_id


def test_the_documents_audit_gives_the_suites_verdicts(kernel: KernelSandbox, tmp_path: Path) -> None:
    kernel.make_path("/run/containerd")
    kernel.make_path("/etc/docker")
    kernel.write_rules_d("60-cis.rules", "-a exit,always -F path=/run/containerd -F perm=war -k docker\n")
    kernel.load()
    with SsmEmulator(dict.fromkeys(IDS, "local://"), documents={"cisaudit-docker": DOCUMENT}) as emu:
        own = run_suite(tmp_path / "own", HOSTS, CONTROLS, "--ssm-region=us-east-1", env=emu.environ)
        audit = _send(emu, {"action": ["audit"], "runId": ["scheduled-1"]})
        read = run_suite(
            tmp_path / "doc",
            HOSTS,
            CONTROLS,
            "--ssm-region=us-east-1",
            f"--ssm-document-results={audit}",
            env=emu.environ,
        )
        other = _send(emu, {"action": ["audit"], "benchmark": ["1.8.0"], "runId": ["scheduled-2"]})
        wrong = run_suite(
            tmp_path / "wrong",
            HOSTS,
            CONTROLS,
            "--ssm-region=us-east-1",
            f"--ssm-document-results={other}",
            env=emu.environ,
        )
        sends = emu.stats()["calls"]["SendCommand"]
    assert read.verdicts() == own.verdicts(), read.output[-3000:]
    assert read.verdict(HOSTS[0], "1.1.4", "live") == "pass" and read.verdict(HOSTS[0], "1.1.6", "live") == "fail"
    assert sends[IDS[0]] == 3  # the suite's own probe and two document runs: reading back sends nothing
    case = wrong.case(HOSTS[0], "1.1.4", "live")
    assert case.verdict == "error" and "--benchmark=1.8.0" in case.summary, case
