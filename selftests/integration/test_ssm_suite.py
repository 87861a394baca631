"""The real suite over ssm:// through the local SSM API emulator (AWS itself cannot be
reached offline), mapped to this machine: the same verdicts as local://, one SendCommand per
host per audit, also under injected throttling and delays, and remediate + backout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cisaudit.outputs.results_json import records as json_records
from selftests.kernel import KernelSandbox, sh
from selftests.ssm_emulator import Faults, SsmEmulator
from selftests.suite_runner import REPO, run_suite

pytestmark = pytest.mark.kernel
INSTANCE = "i-0123456789abcdef0"
SSM = f"ssm://{INSTANCE}"
CONTROLS = "--controls=1.1.4,1.1.6,1.1.10"


def _prepare(kernel: KernelSandbox) -> None:
    kernel.make_path("/run/containerd")
    kernel.make_path("/etc/docker")
    kernel.write_rules_d("60-cis.rules", "-a exit,always -F path=/run/containerd -F perm=war -k docker\n")
    kernel.load()
    # live only, and too narrow (arch-qualified, so the listing is unambiguous)
    kernel.kernel("-a always,exit -F arch=b64 -S all -F dir=/etc/docker -F perm=wa -F key=docker")


def test_same_verdicts_as_local_with_one_send_command(kernel: KernelSandbox, tmp_path: Path) -> None:
    _prepare(kernel)
    local = run_suite(tmp_path / "local", ["local://"], CONTROLS)
    faults = Faults(throttle_every=3, visibility_delay=1.0, pending_time=0.5)
    with SsmEmulator({INSTANCE: "local://"}, faults=faults) as emu:
        ssm = run_suite(tmp_path / "ssm", [SSM], CONTROLS, "--ssm-region=us-east-1", env=emu.environ)
        sends = emu.stats()["calls"]["SendCommand"][INSTANCE]
    assert ssm.verdicts(SSM) == local.verdicts("local://"), ssm.output[-3000:]
    assert ssm.verdict(SSM, "1.1.4", "live") == "pass" and ssm.verdict(SSM, "1.1.6", "live") == "fail"
    assert ssm.cases[(SSM, "1.1.4", "live")].remote_commands == 1
    assert sends == 1


def test_remediate_and_backout_over_ssm(kernel: KernelSandbox, tmp_path: Path) -> None:
    _prepare(kernel)
    before = sh("auditctl -l").stdout
    files = {p: p.read_bytes() for p in Path("/etc/audit").rglob("*.rules")}
    with SsmEmulator({INSTANCE: "local://"}) as emu:
        run = run_suite(
            tmp_path, [SSM], CONTROLS, "--ssm-region=us-east-1", "--remediate", "--backout", env=emu.environ
        )
        sends = emu.stats()["calls"]["SendCommand"][INSTANCE]
    assert run.verdict(SSM, "host", "remediation") == "pass", run.cases[(SSM, "host", "remediation")]
    assert run.verdict(SSM, "1.1.6", "live") == "pass" and run.verdict(SSM, "1.1.6", "persisted") == "pass"
    assert run.verdict(SSM, "host", "backout") == "pass", run.cases[(SSM, "host", "backout")]
    assert sends == 4  # probe, apply, re-probe, backout
    assert sh("auditctl -l").stdout == before
    assert {p: p.read_bytes() for p in Path("/etc/audit").rglob("*.rules")} == files


@pytest.mark.parametrize("workers", ["0", "2"])
def test_ssm_targets_not_audited_are_host_errors_everywhere(tmp_path: Path, workers: str) -> None:
    """--ssm-targets resolves a tag to managed instances (also handed to xdist workers); one
    whose agent is offline and a named id that is not managed were asked for and cannot be
    audited: each is a host error in JUnit, results.json, XCCDF, the compliance report and the
    exit code, as the same instance given as --hosts=ssm://... is."""
    online = ["i-00000000000000001", "i-00000000000000002"]
    offline, unmanaged = "i-00000000000000003", "i-0000000000000000f"
    tags = {i: {"Role": "docker-host"} for i in [*online, offline]}
    with SsmEmulator(dict.fromkeys(online, "local://"), tags=tags, offline=[offline]) as emu:
        run = run_suite(
            tmp_path,
            [],
            f"--ssm-targets=tag:Role=docker-host,{unmanaged}",
            "--ssm-region=us-east-1",
            "--controls=1.1.4",
            f"-n={workers}",
            env=emu.environ,
        )
    assert {host for host, _, _ in run.cases} == {f"ssm://{i}" for i in [*online, offline, unmanaged]}
    assert run.returncode == 1, run.output[-3000:]
    for instance_id, why in (
        (offline, "not Online (PingStatus=ConnectionLost)"),
        (unmanaged, "not a managed instance"),
    ):
        case = run.case(f"ssm://{instance_id}", "1.1.4", "live")
        assert case.verdict == "error" and case.outcome == "error" and why in case.summary, case
        document = json.loads((tmp_path / "results.json").read_text())
        records = [r for r in json_records(document) if r["host"] == f"ssm://{instance_id}"]
        assert records and {r["verdict"] for r in records} == {"error"}, records
        assert document["run"]["overall"] != "pass"
        assert f"ssm://{instance_id}" in (tmp_path / "results.xccdf.xml").read_text()
        assert f"ssm://{instance_id}" in (tmp_path / "compliance.html").read_text()
    for instance_id in online:
        assert run.verdict(f"ssm://{instance_id}", "1.1.4", "live") != "error"


def test_ssm_target_tag_no_instance_has_is_a_usage_error(tmp_path: Path) -> None:
    """A misspelt tag beside a good target: the run stops before any host (it went on with a warning)."""
    with SsmEmulator({INSTANCE: "local://"}, tags={INSTANCE: {"Role": "docker-host"}}) as emu:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                f"--ssm-targets={INSTANCE},tag:Role=dockr-host",
                "--ssm-region=us-east-1",
                f"--junitxml={tmp_path / 'junit.xml'}",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **emu.environ},
        )
        sends = emu.stats()["calls"].get("SendCommand", {})
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert proc.stderr.strip() == (
        "ERROR: --ssm-targets: tag:Role=dockr-host: no managed instance has this tag; "
        "correct the target, or leave it out"
    )
    assert not sends and not (tmp_path / "junit.xml").exists()
