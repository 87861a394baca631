"""The AWS publishers end to end (README "AWS"): the real suite over ssm:// through the SSM
emulator (PutComplianceItems / ListComplianceItems) and Security Hub in moto's server mode
(BatchImportFindings / GetFindings), this machine's kernel as every instance. Not AWS itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from cisaudit.outputs.results_json import records
from selftests.kernel import KernelSandbox
from selftests.s3_store import MotoS3
from selftests.ssm_emulator import Faults, SsmEmulator
from selftests.suite_runner import SuiteRun, run_suite

pytestmark = pytest.mark.kernel
IDS = ["i-00000000000000001", "i-00000000000000002", "i-00000000000000003"]
HOSTS = [f"ssm://{i}" for i in IDS]
CONTROLS = "--controls=1.1.4,1.1.6"
PUBLISH = ("--ssm-region=us-east-1", "--ssm-compliance", "--security-hub")


@pytest.fixture
def moto() -> Iterator[MotoS3]:
    with MotoS3("cisaudit-findings") as server:  # moto's server answers every service on one port
        yield server


def _prepare(kernel: KernelSandbox) -> None:
    kernel.make_path("/run/containerd")
    kernel.make_path("/etc/docker")
    kernel.write_rules_d("60-cis.rules", "-a exit,always -F path=/run/containerd -F perm=war -k docker\n")
    kernel.load()


def _env(emu: SsmEmulator, moto: MotoS3) -> dict[str, str]:
    return emu.environ | {"AWS_ENDPOINT_URL_SECURITYHUB": moto.endpoint_url, "AWS_ENDPOINT_URL_STS": moto.endpoint_url}


def _client(service: str, env: dict[str, str]) -> Any:
    endpoint = env.get(f"AWS_ENDPOINT_URL_{service.upper()}")
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="emulator",
        aws_secret_access_key="emulator",
    )


def _findings(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    pages = _client("securityhub", env).get_paginator("get_findings").paginate()
    return {f["Id"]: f for page in pages for f in page["Findings"]}


def _publish_errors(run: SuiteRun) -> dict[str, str]:
    return {h: c.summary for (h, cid, check), c in run.cases.items() if check == "publication"}


def test_three_instances_publish_then_unchanged_is_a_no_op(kernel: KernelSandbox, moto: MotoS3, tmp_path: Path) -> None:
    _prepare(kernel)
    with SsmEmulator(dict.fromkeys(IDS, "local://"), faults=Faults(throttle_every=5)) as emu:
        env = _env(emu, moto)
        first = run_suite(tmp_path / "1", HOSTS, CONTROLS, *PUBLISH, f"--asff={tmp_path / 'f.json'}", env=env)
        stored = _client("ssm", env).list_compliance_items(ResourceIds=[IDS[0]])["ComplianceItems"]
        second = run_suite(tmp_path / "2", HOSTS, CONTROLS, *PUBLISH, env=env)
        counts = emu.stats()["compliance"]
    assert not _publish_errors(first) and not _publish_errors(second), first.output[-3000:]
    assert first.verdicts() == second.verdicts()
    assert counts == {"stored": 3, "unchanged": 3}  # the second upload carried the same ItemContentHash
    by_id = {item["Id"]: item for item in stored}
    assert by_id["1.1.4-live"]["Status"] == "COMPLIANT" and by_id["1.1.6-live"]["Status"] == "NON_COMPLIANT"
    assert by_id["1.1.6-live"]["ComplianceType"] == "Custom:CISDockerAudit"
    assert "/etc/docker" in by_id["1.1.6-live"]["Details"]["AuditedPath"]
    written = json.loads((tmp_path / "f.json").read_text())["Findings"]
    assert len(written) == len(first.cases) + 3  # every check, and a `host/error` (PASSED) per instance
    held = _findings(env)
    assert {f["Compliance"]["Status"] for f in held.values()} == {"FAILED"}  # PASSED only to resolve one
    assert {f["Resources"][0]["Id"].rsplit("/", 1)[1] for f in held.values()} == set(IDS)


def test_a_fixed_control_resolves_its_finding_only_on_audited_instances(
    kernel: KernelSandbox, moto: MotoS3, tmp_path: Path
) -> None:
    _prepare(kernel)
    with SsmEmulator(dict.fromkeys(IDS[:2], "local://")) as emu:
        env = _env(emu, moto)
        failing = run_suite(tmp_path / "1", HOSTS[:2], CONTROLS, *PUBLISH, env=env)
        kernel.write_rules_d("70-cis.rules", "-w /etc/docker -k docker\n")
        kernel.load()
        emu.instances[IDS[1]].ping = "ConnectionLost"  # not audited this time: its findings stay
        fixed = run_suite(tmp_path / "2", HOSTS[:2], CONTROLS, *PUBLISH, env=env)
        held = _findings(env)
    assert failing.verdict(HOSTS[0], "1.1.6", "live") == "fail" and fixed.verdict(HOSTS[0], "1.1.6", "live") == "pass"
    resolved = held[f"cisaudit/us-east-1/123456789012/{IDS[0]}/1.1.6/live"]
    assert resolved["Compliance"]["Status"] == "PASSED" and resolved["Workflow"]["Status"] == "RESOLVED"
    kept = held[f"cisaudit/us-east-1/123456789012/{IDS[1]}/1.1.6/live"]
    assert kept["Compliance"]["Status"] == "FAILED" and kept["Workflow"]["Status"] == "NEW"
    unaudited = held[f"cisaudit/us-east-1/123456789012/{IDS[1]}/host/error"]
    assert unaudited["Compliance"]["Status"] == "NOT_AVAILABLE" and "not Online" in unaudited["Description"]


def test_a_refused_call_is_that_hosts_error_in_every_output(
    kernel: KernelSandbox, moto: MotoS3, tmp_path: Path
) -> None:
    _prepare(kernel)
    denied = IDS[2]
    with SsmEmulator(dict.fromkeys(IDS, "local://"), faults=Faults(deny_compliance=frozenset([denied]))) as emu:
        run = run_suite(tmp_path, HOSTS, CONTROLS, *PUBLISH, env=_env(emu, moto))
    assert run.returncode == 1, run.output[-3000:]
    errors = _publish_errors(run)
    assert list(errors) == [f"ssm://{denied}"] and "AccessDeniedException" in errors[f"ssm://{denied}"]
    assert run.case(f"ssm://{denied}", "host", "publication").outcome == "error"
    document = json.loads((tmp_path / "results.json").read_text())
    assert [r["host"] for r in records(document) if r["check"] == "publication"] == [f"ssm://{denied}"]
    assert "AccessDeniedException" in (tmp_path / "compliance.html").read_text()
    assert f"ssm://{denied} | host | publication" in run.output
