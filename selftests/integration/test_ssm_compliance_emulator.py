"""The SSM emulator's Compliance API (PutComplianceItems / ListComplianceItems) and the
publisher against it, without a host: COMPLETE replaces, an equal ItemContentHash is a no-op,
the 11th custom type is refused, and a refusal is the host's error."""

from __future__ import annotations

import datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from cisaudit.model.catalogue import benchmark
from cisaudit.model.verdict import Check, Status
from cisaudit.outputs.record import CaseRecord
from cisaudit.outputs.results import RunInfo, RunResults
from cisaudit.publish.ssm_compliance import SsmCompliancePublisher
from selftests.ssm_emulator import CUSTOM_TYPES_MAX, SsmEmulator

INSTANCE = "i-0123456789abcdef0"


def _client(emu: SsmEmulator) -> Any:
    return boto3.client(
        "ssm",
        endpoint_url=emu.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="emulator",
        aws_secret_access_key="emulator",
    )


def _put(ssm: Any, ctype: str, status: str = "COMPLIANT", content_hash: str = "") -> None:
    ssm.put_compliance_items(
        ResourceId=INSTANCE,
        ResourceType="ManagedInstance",
        ComplianceType=ctype,
        ExecutionSummary={"ExecutionTime": datetime.datetime.now(datetime.UTC)},
        Items=[{"Id": "1.1.6-live", "Severity": "HIGH", "Status": status}],
        ItemContentHash=content_hash,
        UploadType="COMPLETE",
    )


def test_complete_replaces_an_equal_hash_is_ignored_and_types_are_capped() -> None:
    with SsmEmulator({INSTANCE: None}) as emu:  # type: ignore[dict-item]
        ssm = _client(emu)
        _put(ssm, "Custom:Aa", "NON_COMPLIANT", "h1")
        _put(ssm, "Custom:Aa", "COMPLIANT", "h1")  # same hash: ignored
        listed = ssm.list_compliance_items(ResourceIds=[INSTANCE])["ComplianceItems"]
        assert [i["Status"] for i in listed] == ["NON_COMPLIANT"]
        _put(ssm, "Custom:Aa", "COMPLIANT", "h2")
        listed = ssm.list_compliance_items(ResourceIds=[INSTANCE])["ComplianceItems"]
        assert [i["Status"] for i in listed] == ["COMPLIANT"]
        for n in range(1, CUSTOM_TYPES_MAX):
            _put(ssm, f"Custom:T{n}x")
        with pytest.raises(ClientError, match="ComplianceTypeCountLimitExceeded"):
            _put(ssm, "Custom:OneTooMany")
        assert emu.stats()["compliance"] == {"stored": 2 + CUSTOM_TYPES_MAX - 1, "unchanged": 1, "refused": 1}


def test_a_refused_upload_is_the_hosts_error(monkeypatch: pytest.MonkeyPatch) -> None:
    record = CaseRecord(f"ssm://{INSTANCE}", "1.1.6", Check.LIVE, Status.PASS, title="Audit /etc/docker", level="1")
    results = RunResults(
        RunInfo("pytest", "audit", False, 1.8e9, 1.8e9 + 1, "0.1.0", benchmark=benchmark("1.7.0")), [record]
    )
    with SsmEmulator({INSTANCE: None}) as emu:  # type: ignore[dict-item]
        for name, value in emu.environ.items():
            monkeypatch.setenv(name, value)
        ssm = _client(emu)
        for n in range(CUSTOM_TYPES_MAX):
            _put(ssm, f"Custom:T{n}x")
        errors = SsmCompliancePublisher("Custom:CISDockerAudit", "us-east-1").publish(results)
        assert SsmCompliancePublisher("Custom:T1x", "us-east-1").publish(results) == {}
    assert list(errors) == [f"ssm://{INSTANCE}"]
    assert "ComplianceTypeCountLimitExceededException" in errors[f"ssm://{INSTANCE}"]
