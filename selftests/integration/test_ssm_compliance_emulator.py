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


def _two_hosts() -> tuple[RunResults, list[CaseRecord], list[CaseRecord]]:
    info = RunInfo("pytest", "audit", False, 1.8e9, 1.8e9 + 1, "0.1.0", benchmark=benchmark("1.7.0"))
    first = [CaseRecord(f"ssm://{INSTANCE}", "1.1.6", Check.LIVE, Status.PASS, title="Audit /etc/docker", level="1")]
    second = [CaseRecord(f"ssm://{OTHER}", "1.1.6", Check.LIVE, Status.FAIL, title="Audit /etc/docker", level="1")]
    return RunResults(info, first + second, {}), first, second


OTHER = "i-0123456789abcdef1"


def test_a_host_sent_early_is_not_sent_again_and_its_refusal_is_still_its_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """host_done sends each host while the run goes on (publish/stream.py); publish then returns
    those calls' outcomes without calling again: one request per host, the refusal in the errors."""
    from selftests.ssm_emulator import Faults

    results, first, second = _two_hosts()
    faults = Faults(deny_compliance=frozenset({OTHER}))
    with SsmEmulator({INSTANCE: None, OTHER: None}, faults=faults) as emu:  # type: ignore[dict-item]
        for name, value in emu.environ.items():
            monkeypatch.setenv(name, value)
        publisher = SsmCompliancePublisher("Custom:CISDockerAudit", "us-east-1")
        publisher.host_done(f"ssm://{INSTANCE}", first, results.info)
        publisher.host_done(f"ssm://{OTHER}", second, results.info)
        errors = publisher.publish(results)
        requests = emu.stats()["requests"]["PutComplianceItems"]
    assert requests == 2
    assert list(errors) == [f"ssm://{OTHER}"] and "AccessDenied" in errors[f"ssm://{OTHER}"]


def test_a_host_whose_records_changed_after_it_was_sent_is_sent_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host sent early with fewer records than it ends with (its records were not together) is
    sent again whole: the service ends with every item."""
    results, first, _ = _two_hosts()
    extra = CaseRecord(f"ssm://{INSTANCE}", "1.1.6", Check.PERSISTED, Status.FAIL, title="Audit /etc/docker")
    results = RunResults(results.info, [*first, extra], {})
    with SsmEmulator({INSTANCE: None}) as emu:  # type: ignore[dict-item]
        for name, value in emu.environ.items():
            monkeypatch.setenv(name, value)
        publisher = SsmCompliancePublisher("Custom:CISDockerAudit", "us-east-1")
        publisher.host_done(f"ssm://{INSTANCE}", first, results.info)
        assert publisher.publish(results) == {}
        listed = _client(emu).list_compliance_items(ResourceIds=[INSTANCE])["ComplianceItems"]
        requests = emu.stats()["requests"]["PutComplianceItems"]
    assert sorted(i["Id"] for i in listed) == ["1.1.6-live", "1.1.6-persisted"]
    assert requests == 2
