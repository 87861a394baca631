"""SSM Compliance items from a run's records (pure: no I/O).

One item per (control, check) of an `ssm://` host, with the CIS title, a severity by profile
level and Details that carry the verdict, the cited rule with file:line, the audited path, the
benchmark, the run id and the tool version. A waived failure is COMPLIANT with its waiver in
Details; a not-applicable control says so in Details; a host's ERROR checks are one
NON_COMPLIANT item (`cisaudit-error`), so an unreachable instance never looks compliant.
The ItemContentHash covers everything but the run id and time, so an unchanged host is a no-op.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from cisaudit.host.hostspec import INSTANCE_ID
from cisaudit.model.verdict import Status
from cisaudit.outputs.record import HOST_CONTROL, CaseRecord
from cisaudit.outputs.results import RunInfo

DEFAULT_TYPE = "Custom:CISDockerAudit"
# botocore's ssm model: ComplianceTypeName's pattern; Details keys <= 64, values <= 4,096 characters.
TYPE_PATTERN = re.compile(r"([A-Za-z0-9_\-]\w+|Custom:[a-zA-Z0-9_\-]\w+)")
DETAIL_VALUE_MAX = 4096
ERROR_ITEM = "cisaudit-error"
_SSM_HOST = re.compile(r"ssm://(" + INSTANCE_ID.pattern + r")")


class ItemStatus(StrEnum):
    COMPLIANT = "COMPLIANT"
    NON_COMPLIANT = "NON_COMPLIANT"


class Severity(StrEnum):
    HIGH = "HIGH"  # a Level 1 control: every hardened host should have it
    MEDIUM = "MEDIUM"  # Level 2
    CRITICAL = "CRITICAL"  # the host could not be judged


# Which status is compliant; an unknown status raises (fails closed).
_COMPLIANT = {
    Status.PASS: ItemStatus.COMPLIANT,
    Status.WAIVED: ItemStatus.COMPLIANT,
    Status.NOT_APPLICABLE: ItemStatus.COMPLIANT,
    Status.FAIL: ItemStatus.NON_COMPLIANT,
}


@dataclass(frozen=True)
class HostUpload:
    """One PutComplianceItems request for one instance."""

    host: str  # as reports show it: ssm://i-...
    instance_id: str
    items: tuple[dict[str, object], ...]
    content_hash: str


def instance_of(host: str) -> str | None:
    """i-... of an `ssm://i-...` host; None for a host SSM does not manage."""
    match = _SSM_HOST.fullmatch(host)
    return match.group(1) if match else None


def run_id(info: RunInfo) -> str:
    """The run's id: its start (UTC) and a digest of its command line and start."""
    digest = hashlib.sha256(f"{info.command}\0{info.started}".encode()).hexdigest()[:6]
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(info.started)) + "-" + digest


def check_type(text: str) -> str:
    """--ssm-compliance's TYPE, or ValueError saying what is accepted."""
    if len(text) > 100 or not TYPE_PATTERN.fullmatch(text):
        raise ValueError(f"{text!r} is not a compliance type: use Custom:NAME (letters, digits, _ and -)")
    return text


def _detail(value: str) -> str:
    return value if len(value) <= DETAIL_VALUE_MAX else value[: DETAIL_VALUE_MAX - 1] + "…"


def _details(record: CaseRecord, info: RunInfo, run: str) -> dict[str, str]:
    rule = record.citation()
    details = {
        "Verdict": record.verdict.value,
        "Summary": record.summary,
        "Rule": rule[0] if rule else "",
        "RuleLocation": rule[1] if rule else "",
        "AuditedPath": record.audited,
        "Benchmark": info.benchmark.title + " v" + info.benchmark.version,
        "RunId": run,
        "ToolVersion": info.tool_version,
    }
    if record.waiver:
        details["Waiver"] = record.waiver + (
            f" (expires {record.waiver_expiration})" if record.waiver_expiration else ""
        )
    if record.status == Status.NOT_APPLICABLE:
        details["NotApplicable"] = "the audited path is absent on this host: " + (record.summary or "not applicable")
    return {name: _detail(value) for name, value in details.items() if value}


def item_for(record: CaseRecord, info: RunInfo, run: str) -> dict[str, object]:
    """One non-error record as a ComplianceItemEntry."""
    host_check = record.control_id == HOST_CONTROL
    return {
        "Id": f"{record.control_id}-{record.check.value}",
        "Title": (record.title or record.check.value.replace("-", " ")) + f" ({record.check.value})",
        "Severity": (Severity.HIGH if host_check or record.level == "1" else Severity.MEDIUM).value,
        "Status": _COMPLIANT[record.status].value,
        "Details": _details(record, info, run),
    }


def error_item(errors: list[CaseRecord], info: RunInfo, run: str) -> dict[str, object]:
    """A host's ERROR checks as one NON_COMPLIANT item."""
    reasons = dict.fromkeys(f"{r.control_id} {r.check.value}: {r.summary}" for r in errors)
    return {
        "Id": ERROR_ITEM,
        "Title": f"cisaudit could not judge {len(errors)} check(s) on this instance",
        "Severity": Severity.CRITICAL.value,
        "Status": ItemStatus.NON_COMPLIANT.value,
        "Details": {
            "Verdict": Status.ERROR.value,
            "Errors": _detail("\n".join(reasons)),
            "Benchmark": info.benchmark.title + " v" + info.benchmark.version,
            "RunId": run,
            "ToolVersion": info.tool_version,
        },
    }


def content_hash(items: Iterable[Mapping[str, object]]) -> str:
    """SHA-256 of the items without their run id: what changes only when the result does."""
    stable = [
        {**item, "Details": {k: v for k, v in dict(item["Details"]).items() if k != "RunId"}}  # type: ignore[call-overload]
        for item in items
    ]
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()


def host_upload(host: str, records: list[CaseRecord], info: RunInfo) -> HostUpload | None:
    """The request for one host's records; None for a host that is not ssm://."""
    instance = instance_of(host)
    if instance is None:
        return None
    run = run_id(info)
    errors = [r for r in records if r.status == Status.ERROR]
    items = [item_for(r, info, run) for r in records if r.status != Status.ERROR]
    if errors:
        items.append(error_item(errors, info, run))
    return HostUpload(host, instance, tuple(items), content_hash(items))


def uploads(by_host: Mapping[str, list[CaseRecord]], info: RunInfo) -> list[HostUpload]:
    """Every ssm:// host's request, in report order."""
    found = (host_upload(host, records, info) for host, records in by_host.items())
    return [upload for upload in found if upload is not None]
