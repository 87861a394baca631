"""Security Hub findings (ASFF) from a run's records (pure: no I/O).

One finding per (ssm:// instance, control, check). Its Id is stable per (account, region,
instance, control, check) and names neither the tool's nor the benchmark's version, so a later
run (or version) updates the same finding instead of adding a duplicate. `Resources` names the
instance's ARN, `Compliance` the CIS control. What is imported (`to_import`): every finding that
is not PASSED, and a PASSED one only where Security Hub holds that finding not passed (read back
first): a fixed control resolves its finding; an instance this run could not audit has no PASSED
finding, so nothing of it is resolved.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from cisaudit.model.verdict import Check, Status
from cisaudit.outputs.record import HOST_CONTROL, CaseRecord
from cisaudit.outputs.results import RunResults
from cisaudit.publish.compliance_items import instance_of, run_id

SCHEMA_VERSION = "2018-10-08"
GENERATOR_PREFIX = "cisaudit-docker-"
TYPES = ["Software and Configuration Checks/Industry and Regulatory Standards/CIS Host Hardening Benchmarks"]
CHUNK_FINDINGS = 100  # BatchImportFindings: at most 100 findings
CHUNK_BYTES = 6 << 20  # and 6 MB per call
DESCRIPTION_MAX = 1024
ERROR_CHECK = "error"  # the Id's check of a host's one error finding


class ComplianceStatus(StrEnum):
    PASSED = "PASSED"
    FAILED = "FAILED"
    WARNING = "WARNING"
    NOT_AVAILABLE = "NOT_AVAILABLE"


class Workflow(StrEnum):
    NEW = "NEW"
    RESOLVED = "RESOLVED"
    SUPPRESSED = "SUPPRESSED"  # a waiver


# status -> (compliance, workflow); an unknown status raises (fails closed)
_STATUS = {
    Status.PASS: (ComplianceStatus.PASSED, Workflow.RESOLVED),
    Status.NOT_APPLICABLE: (ComplianceStatus.PASSED, Workflow.RESOLVED),
    Status.FAIL: (ComplianceStatus.FAILED, Workflow.NEW),
    Status.WAIVED: (ComplianceStatus.FAILED, Workflow.SUPPRESSED),
    Status.ERROR: (ComplianceStatus.NOT_AVAILABLE, Workflow.NEW),
}


@dataclass(frozen=True)
class Place:
    """Where the findings go: the account (from STS) and the region (as for SSM)."""

    account: str
    region: str
    partition: str = "aws"

    @property
    def product_arn(self) -> str:
        return f"arn:{self.partition}:securityhub:{self.region}:{self.account}:product/{self.account}/default"

    def resource(self, instance: str) -> dict[str, str]:
        if instance.startswith("mi-"):
            arn = f"arn:{self.partition}:ssm:{self.region}:{self.account}:managed-instance/{instance}"
            kind = "Other"
        else:
            arn = f"arn:{self.partition}:ec2:{self.region}:{self.account}:instance/{instance}"
            kind = "AwsEc2Instance"
        return {"Type": kind, "Id": arn, "Partition": self.partition, "Region": self.region}


def finding_id(place: Place, instance: str, control: str, check: str) -> str:
    """Stable: no tool or benchmark version in it."""
    return f"cisaudit/{place.region}/{place.account}/{instance}/{control}/{check}"


def _severity(record: CaseRecord) -> str:
    if record.status in (Status.PASS, Status.NOT_APPLICABLE):
        return "INFORMATIONAL"
    return "HIGH" if record.level in ("", "1") else "MEDIUM"


def _fields(record: CaseRecord, results: RunResults) -> dict[str, str]:
    rule = record.citation()
    fields = {
        "cisaudit/Verdict": record.verdict.value,
        "cisaudit/Rule": f"{rule[0]} ({rule[1]})" if rule else "",
        "cisaudit/AuditedPath": record.audited,
        "cisaudit/Benchmark": f"{results.info.benchmark.title} v{results.info.benchmark.version}",
        "cisaudit/RunId": run_id(results.info),
        "cisaudit/ToolVersion": results.info.tool_version,
        "cisaudit/Waiver": record.waiver,
    }
    return {k: v[:2048] for k, v in fields.items() if v}


def _requirement(control_id: str) -> str:
    return (
        "CIS Docker Benchmark 1.1 (host prerequisites)"
        if control_id == HOST_CONTROL
        else f"CIS Docker Benchmark {control_id}"
    )


def finding(record: CaseRecord, instance: str, results: RunResults, place: Place) -> dict[str, object]:
    """One record as an AwsSecurityFinding."""
    compliance, workflow = _STATUS[record.status]
    when = datetime.datetime.fromtimestamp(results.info.finished, datetime.UTC).isoformat(timespec="milliseconds")
    name = record.title or record.check.value.replace("-", " ")
    description = record.summary or name
    if record.waiver:
        description = f"Waived: {record.waiver}. {description}"
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": finding_id(place, instance, record.control_id, record.check.value),
        "ProductArn": place.product_arn,
        "GeneratorId": GENERATOR_PREFIX + record.control_id,
        "AwsAccountId": place.account,
        "Types": TYPES,
        "CreatedAt": when,
        "UpdatedAt": when,
        "Severity": {"Label": _severity(record)},
        "Title": f"CIS Docker {record.control_id} {name} ({record.check.value})"[:256],
        "Description": description[:DESCRIPTION_MAX],
        "Resources": [place.resource(instance)],
        "Compliance": {
            "Status": compliance.value,
            "RelatedRequirements": [_requirement(record.control_id)],
        },
        "Workflow": {"Status": workflow.value},
        "RecordState": "ACTIVE",
        "ProductFields": _fields(record, results),
    }


def error_finding(errors: list[CaseRecord], instance: str, results: RunResults, place: Place) -> dict[str, object]:
    """A host's ERROR checks as one finding (`host/error`), NOT_AVAILABLE; none: PASSED, which
    resolves an earlier one. The checks it names keep their findings as they were."""
    if not errors:
        solved = CaseRecord("", HOST_CONTROL, Check.PUBLICATION, Status.PASS, summary="every check could be judged")
        item = finding(solved, instance, results, place)
    else:
        reasons = "; ".join(dict.fromkeys(f"{r.control_id} {r.check.value}: {r.summary}" for r in errors))
        item = finding(replace(errors[0], summary=reasons), instance, results, place)
    return item | {
        "Id": finding_id(place, instance, HOST_CONTROL, ERROR_CHECK),
        "Title": f"cisaudit could not judge {len(errors)} check(s) on this instance"
        if errors
        else "cisaudit judged every check",
    }


def findings(results: RunResults, place: Place) -> Iterator[dict[str, object]]:
    """Every ssm:// host's judged records as findings, and its errors as one; hosts in report order."""
    for host, records in results.by_host.items():
        instance = instance_of(host)
        if instance is not None:
            for record in records:
                if record.status != Status.ERROR:
                    yield finding(record, instance, results, place)
            yield error_finding([r for r in records if r.status == Status.ERROR], instance, results, place)


def passed(item: Mapping[str, object]) -> bool:
    compliance = item.get("Compliance")
    return isinstance(compliance, Mapping) and compliance.get("Status") == ComplianceStatus.PASSED


def to_import(all_findings: Iterable[dict[str, object]], unresolved: set[str]) -> Iterator[dict[str, object]]:
    """What BatchImportFindings sends: every finding not passed, and a passed one whose id
    Security Hub holds as not passed (`unresolved`, read back with GetFindings)."""
    return (f for f in all_findings if not passed(f) or f["Id"] in unresolved)


def chunks(items: Iterable[dict[str, object]]) -> Iterator[list[dict[str, object]]]:
    """At most CHUNK_FINDINGS findings and CHUNK_BYTES of JSON per call."""
    chunk: list[dict[str, object]] = []
    size = 2
    for item in items:
        length = len(json.dumps(item, separators=(",", ":")).encode()) + 1
        if chunk and (len(chunk) == CHUNK_FINDINGS or size + length > CHUNK_BYTES):
            yield chunk
            chunk, size = [], 2
        chunk.append(item)
        size += length
    if chunk:
        yield chunk


def host_of(item: Mapping[str, object], hosts: Mapping[str, str]) -> str:
    """The reported host of a finding (instance -> host), from its Id."""
    instance = str(item.get("Id", "")).split("/")[3:4]
    return hosts.get(instance[0], "") if instance else ""
