"""The AWS publishers' pure mapping (cisaudit/publish/compliance_items.py, asff.py): SSM
Compliance items and ASFF findings from hand-made results, every finding checked against
botocore's AwsSecurityFinding shape."""

from __future__ import annotations

import json

import pytest

from cisaudit.model.catalogue import benchmark
from cisaudit.model.verdict import Check, Status
from cisaudit.outputs.record import CaseRecord
from cisaudit.outputs.results import RunInfo, RunResults
from cisaudit.publish import asff
from cisaudit.publish.compliance_items import ERROR_ITEM, check_type, host_upload, uploads
from cisaudit.publish.security_hub import model_errors

T0 = 1_800_000_000.0
HOST = "ssm://i-0123456789abcdef0"
RULE = "`-w /etc/docker -p rwxa -k docker` (/etc/audit/rules.d/60.rules:3)"
PLACE = asff.Place("123456789012", "eu-west-1")


def case(control_id: str, check: str, verdict: str, host: str = HOST, **kw: str) -> CaseRecord:
    return CaseRecord(host, control_id, Check(check), Status(verdict), title="Audit /etc/docker", level="1", **kw)


def results(*cases: CaseRecord, started: float = T0, version: str = "1.7.0", tool: str = "0.1.0") -> RunResults:
    info = RunInfo("pytest --hosts=x", "audit", False, started, started + 5, tool, "abc", benchmark=benchmark(version))
    return RunResults(info, list(cases))


def items(*cases: CaseRecord) -> dict[str, dict[str, object]]:
    upload = host_upload(HOST, list(cases), results(*cases).info)
    assert upload is not None
    return {str(item["Id"]): item for item in upload.items}


def test_an_item_per_control_and_check_with_rule_path_benchmark_run_and_tool() -> None:
    got = items(
        case("1.1.6", "live", "pass", summary=f"recorded: {RULE}", audited="/etc/docker (the benchmark's path)")
    )
    item = got["1.1.6-live"]
    assert item["Status"] == "COMPLIANT" and item["Severity"] == "HIGH"
    details = item["Details"]
    assert isinstance(details, dict)
    assert details["Rule"] == "-w /etc/docker -p rwxa -k docker"
    assert details["RuleLocation"] == "/etc/audit/rules.d/60.rules:3"
    assert details["AuditedPath"].startswith("/etc/docker")
    assert details["Benchmark"] == "CIS Docker Benchmark v1.7.0" and details["ToolVersion"] == "0.1.0"
    assert details["RunId"].startswith("20270115T")


def test_a_waived_failure_is_compliant_with_its_waiver_and_not_applicable_says_so() -> None:
    got = items(
        case("1.1.6", "live", "fail", waiver="CHG-42: dockerd replaced by podman", waiver_expiration="2027-06-30"),
        case("1.1.4", "live", "not-applicable", summary="/run/containerd does not exist"),
        case("1.1.5", "live", "fail"),
    )
    waived = got["1.1.6-live"]
    assert waived["Status"] == "COMPLIANT"
    assert waived["Details"]["Waiver"] == "CHG-42: dockerd replaced by podman (expires 2027-06-30)"  # type: ignore[index]
    assert got["1.1.4-live"]["Status"] == "COMPLIANT"
    assert "absent" in got["1.1.4-live"]["Details"]["NotApplicable"]  # type: ignore[index]
    assert got["1.1.5-live"]["Status"] == "NON_COMPLIANT"


def test_host_errors_are_one_non_compliant_item() -> None:
    unreachable = [case(c, "live", "error", summary="SendCommand failed") for c in ("1.1.3", "1.1.4", "1.1.5")]
    got = items(*unreachable)
    assert list(got) == [ERROR_ITEM]
    assert got[ERROR_ITEM]["Status"] == "NON_COMPLIANT"
    assert "SendCommand failed" in got[ERROR_ITEM]["Details"]["Errors"]  # type: ignore[index]


def test_the_content_hash_ignores_the_run_and_follows_the_result() -> None:
    cases = [case("1.1.6", "live", "pass"), case("1.1.4", "persisted", "fail")]
    first = uploads(results(*cases).by_host, results(*cases).info)[0]
    later = uploads(results(*cases).by_host, results(*cases, started=T0 + 86400).info)[0]
    changed = [case("1.1.6", "live", "pass"), case("1.1.4", "persisted", "pass")]
    fixed = uploads(results(*changed).by_host, results(*changed).info)[0]
    assert first.items != later.items  # the run id differs
    assert first.content_hash == later.content_hash != fixed.content_hash


def test_only_ssm_hosts_are_published() -> None:
    run = results(case("1.1.6", "live", "pass"), case("1.1.6", "live", "fail", host="paramiko://root@10.0.0.2"))
    assert [u.host for u in uploads(run.by_host, run.info)] == [HOST]
    assert {str(f["Id"]).split("/")[3] for f in asff.findings(run, PLACE)} == {"i-0123456789abcdef0"}


@pytest.mark.parametrize("text", ["Custom:", "Custom:has space", "x", "Custom:" + "a" * 100])
def test_a_bad_compliance_type_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a compliance type"):
        check_type(text)


def test_finding_ids_are_stable_and_name_no_version() -> None:
    one = results(case("1.1.6", "live", "fail"), version="1.7.0", tool="0.1.0")
    other = results(case("1.1.6", "live", "fail"), version="1.8.0", tool="9.9.9", started=T0 + 3600)
    ids = [next(asff.findings(run, PLACE))["Id"] for run in (one, other)]
    assert ids[0] == ids[1] == "cisaudit/eu-west-1/123456789012/i-0123456789abcdef0/1.1.6/live"
    assert "1.7.0" not in str(ids[0]) and "0.1.0" not in str(ids[0])


def test_every_finding_has_the_models_required_fields() -> None:
    statuses = ["pass", "fail", "not-applicable", "error"]
    run = results(
        *[case(f"1.1.{i + 3}", "live", s) for i, s in enumerate(statuses)], case("1.1.9", "live", "fail", waiver="w")
    )
    found = list(asff.findings(run, PLACE))
    assert len(found) == 5
    for item in found:
        assert model_errors(item) == "", item
        assert item["Resources"] == [PLACE.resource("i-0123456789abcdef0")]
    by_status = {f["ProductFields"]["cisaudit/Verdict"]: f for f in found}  # type: ignore[index]
    assert by_status["pass"]["Compliance"]["Status"] == "PASSED"  # type: ignore[index]
    assert by_status["pass"]["Workflow"] == {"Status": "RESOLVED"}


def test_the_model_check_names_a_missing_or_blank_field() -> None:
    item = next(asff.findings(results(case("1.1.6", "live", "fail")), PLACE))
    assert "Title" in model_errors({k: v for k, v in item.items() if k != "Title"})
    assert "Description is blank" in model_errors(item | {"Description": "  "})


def test_a_passed_finding_is_imported_only_to_resolve_one_held_not_passed() -> None:
    run = results(case("1.1.6", "live", "pass"), case("1.1.4", "live", "pass"), case("1.1.5", "live", "fail"))
    found = list(asff.findings(run, PLACE))
    held = {str(found[0]["Id"])}
    sent = [f["Id"] for f in asff.to_import(found, held)]
    assert sent == [found[0]["Id"], found[2]["Id"]]


def test_chunks_hold_at_most_100_findings_and_6_mb() -> None:
    small = [{"Id": str(i)} for i in range(250)]
    assert [len(c) for c in asff.chunks(small)] == [100, 100, 50]
    big = [{"Id": str(i), "Description": "x" * (2 << 20)} for i in range(5)]
    sizes = [len(json.dumps(c).encode()) for c in asff.chunks(big)]
    assert len(sizes) == 3 and max(sizes) <= asff.CHUNK_BYTES


def test_host_errors_are_one_finding_and_leave_the_checks_findings_alone() -> None:
    unreachable = results(*[case(c, "live", "error", summary="not Online") for c in ("1.1.3", "1.1.4")])
    found = list(asff.findings(unreachable, PLACE))
    assert [f["Id"] for f in found] == ["cisaudit/eu-west-1/123456789012/i-0123456789abcdef0/host/error"]
    assert found[0]["Compliance"]["Status"] == "NOT_AVAILABLE" and "not Online" in str(found[0]["Description"])  # type: ignore[index]
    judged = list(asff.findings(results(case("1.1.3", "live", "fail")), PLACE))
    assert asff.passed(judged[-1]) and str(judged[-1]["Id"]).endswith("/host/error")  # resolves an earlier one
