"""results.json, XCCDF and the compliance report rendered from hand-made results (pure code;
the XCCDF is validated by the real `oscap xccdf validate`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema

from cisaudit.model.catalogue import benchmark
from cisaudit.model.verdict import Check, Status
from cisaudit.outputs.compliance_html import render_html
from cisaudit.outputs.record import CaseRecord
from cisaudit.outputs.results import RunInfo, RunResults, natural_key
from cisaudit.outputs.results_json import render_json
from cisaudit.outputs.xccdf import NS, render_xccdf, rule_id
from selftests.suite_runner import REPO, require

T0 = 1_800_000_000.0
A, B = "paramiko://root@10.0.0.10", "paramiko://root@10.0.0.2"
PASS_RULE = "`-w /etc/docker -p rwxa -k docker` (/etc/audit/rules.d/60.rules:3)"


def case(host: str, control_id: str, check: str, verdict: str, **kw) -> CaseRecord:
    return CaseRecord(host, control_id, Check(check), Status(verdict), started=T0, finished=T0 + 1, **kw)


def results(*cases: CaseRecord, mode: str = "audit") -> RunResults:
    return RunResults(
        RunInfo("pytest --hosts=x", mode, False, T0, T0 + 5, "0.1.0", "abc123"),
        list(cases),
        {
            B: {
                "loader_mode": "augenrules",
                "arch": "x86_64",
                "audit_enabled": "1",
                "auditd_running": True,
                "systemd": True,
            }
        },
        {A: 1, B: 1},
    )


FLEET = results(
    case(A, "1.1.6", "live", "pass", summary=PASS_RULE),
    case(A, "1.1.6", "persisted", "fail", summary="no rule", waiver="SEC-12 accepted", waiver_expiration="2099-01-01"),
    case(
        A,
        "1.1.4",
        "live",
        "fail",
        summary="no rule for /run/containerd",
        waiver_expired="old ticket",
        waiver_expiration="2020-01-01",
    ),
    case(A, "1.1.4", "persisted", "not-applicable", summary="absent"),
    case(B, "1.1.6", "live", "pass", summary=PASS_RULE, remediated=True),
    case(B, "1.1.6", "persisted", "pass", summary=PASS_RULE, remediated=True),
    case(B, "1.1.4", "live", "not-applicable"),
    case(B, "1.1.4", "persisted", "not-applicable"),
    case(B, "host", "load-health", "pass"),
)


def test_natural_order() -> None:
    assert sorted(["h10", "10.0.0.10", "10.0.0.2", "h9", "10.0.1.1"], key=natural_key) == [
        "10.0.0.2",
        "10.0.0.10",
        "10.0.1.1",
        "h9",
        "h10",
    ]
    assert FLEET.hosts == [B, A]


def test_overall_verdict() -> None:
    assert FLEET.overall == "not compliant"  # the expired waiver's failure counts
    assert results(case(A, "1.1.6", "live", "fail", waiver="ok")).overall == "compliant"
    assert results(case(A, "1.1.6", "live", "error")).overall == "errors"


def test_json_matches_its_schema_and_records() -> None:
    document = json.loads(render_json(FLEET))
    schema = json.loads((REPO / "docs" / "results.schema.json").read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(document)
    assert document["benchmark"] == {"title": "CIS Docker Benchmark", "version": "1.7.0", "profile": "Level 1"}
    assert [h["host"] for h in document["hosts"]] == [B, A]
    assert document["hosts"][0]["facts"]["loader_mode"] == "augenrules"
    waived = next(
        r for r in document["results"] if r["host"] == A and r["check"] == "persisted" and r["control_id"] == "1.1.6"
    )
    assert (waived["status"], waived["verdict"], waived["waiver"]) == (
        "waived",
        "fail",
        {"justification": "SEC-12 accepted", "expiration_date": "2099-01-01", "applied": True, "expired": False},
    )
    passed = document["results"][0]
    assert (passed["rule"], passed["location"]) == ("-w /etc/docker -p rwxa -k docker", "/etc/audit/rules.d/60.rules:3")
    assert passed["started"] == "2027-01-15T08:00:00Z"
    assert document["expired_waivers"] == [
        {"control_id": "1.1.4", "expiration_date": "2020-01-01", "justification": "old ticket"}
    ]
    assert {c["assessment"] for c in document["controls"]} == {"automated"}


def _rule_results(xml: str) -> dict[tuple[str, str], ET.Element]:
    root = ET.fromstring(xml)
    return {
        (t.find(f"{{{NS}}}target").text, r.get("idref")): r
        for t in root.iter(f"{{{NS}}}TestResult")
        for r in t.iter(f"{{{NS}}}rule-result")
    }


def test_xccdf_results_fixed_and_waiver_override() -> None:
    found = _rule_results(render_xccdf(FLEET))
    result = {key: r.find(f"{{{NS}}}result").text for key, r in found.items()}
    assert result == {
        (B, rule_id("1.1.4")): "notapplicable",
        (B, rule_id("1.1.6")): "fixed",
        (A, rule_id("1.1.4")): "fail",
        (A, rule_id("1.1.6")): "pass",
    }
    override = found[(A, rule_id("1.1.6"))].find(f"{{{NS}}}override")
    assert [override.find(f"{{{NS}}}{t}").text for t in ("old-result", "new-result", "remark")] == [
        "fail",
        "pass",
        "persisted: SEC-12 accepted",
    ]
    assert found[(A, rule_id("1.1.4"))].find(f"{{{NS}}}override") is None  # expired: no override


# OpenSCAP 1.3.7's schematron matches every rule-result of a TestResult that has any override,
# so it flags each rule-result *without* one; the XML Schema and every other schematron rule hold.
SCHEMATRON_OVERRIDE_BUG = "must match the value of the 'new-result' element in an 'override' element"


def oscap_validate(path: Path, *options: str) -> tuple[int, list[str]]:
    require(shutil.which("oscap") is not None, "needs oscap (apt-get install openscap-scanner)")
    proc = subprocess.run(["oscap", "xccdf", "validate", *options, str(path)], capture_output=True, text=True)
    return proc.returncode, [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("Error")]


def test_xccdf_validates_with_oscap(tmp_path: Path) -> None:
    path = tmp_path / "results.xccdf.xml"
    path.write_text(render_xccdf(results(*(c for c in FLEET.cases if not c.waiver))))
    assert oscap_validate(path) == (0, [])
    path.write_text(render_xccdf(FLEET))  # with a waiver's override
    assert oscap_validate(path, "--skip-schematron") == (0, [])
    rc, errors = oscap_validate(path)
    assert errors and all(SCHEMATRON_OVERRIDE_BUG in e for e in errors), errors
    broken = tmp_path / "broken.xml"  # the validator really checks: a result outside the enum fails
    broken.write_text(path.read_text().replace("<result>fixed</result>", "<result>waived</result>"))
    assert oscap_validate(broken, "--skip-schematron")[0] != 0


def test_html_header_and_fleet_view() -> None:
    html = render_html(FLEET)
    assert "NOT COMPLIANT" in html and "CIS Docker Benchmark v1.7.0, Level 1" in html
    assert "<dt>Hosts in scope</dt><dd>2</dd>" in html and "<code>pytest --hosts=x</code>" in html
    hosts = html[html.index("id='hosts'") :]
    assert hosts.index(">paramiko://root@10.0.0.2<") < hosts.index(">paramiko://root@10.0.0.10<")
    assert "1.1.4 (expired 2020-01-01): old ticket" in html
    assert html.count(PASS_RULE) == 1  # three checks cite it; the detail blob stores it once
    assert html.count("SEC-12 accepted") == 1


def test_the_selected_benchmark_version_and_the_audited_path_reach_every_output(tmp_path: Path) -> None:
    """--benchmark 1.8.0: header, results.json, XCCDF id/version/Rules, and the path audited (docs/benchmarks.md)."""
    audited = "/run/docker.sock (ListenStream= of docker.socket)"
    run = RunResults(
        RunInfo("pytest --benchmark 1.8.0", "audit", False, T0, T0 + 5, "0.1.0", "abc", benchmark("1.8.0")),
        [case(A, "1.1.9", "live", "pass", summary=PASS_RULE, audited=audited, level="2")],
    )
    assert "CIS Docker Benchmark v1.8.0, Level 2" in render_html(run)
    assert audited in render_html(run)
    document = json.loads(render_json(run))
    assert document["benchmark"]["version"] == "1.8.0" and document["results"][0]["audited"] == audited
    assert document["controls"][0]["title"].endswith("docker.sock")
    schema = json.loads((REPO / "docs" / "results.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(document)
    root = ET.fromstring(render_xccdf(run))
    assert root.get("id") == "xccdf_org.cisaudit_benchmark_cis_docker_1_8_0"
    assert root.find(f"{{{NS}}}version").text == "1.8.0"
    rules = root.iter(f"{{{NS}}}Rule")
    manual = [r for r in rules if "Assessment Status: Manual" in r.find(f"{{{NS}}}description").text]
    assert [r.get("id") for r in manual] == [rule_id("1.1.4"), rule_id("1.1.5")]
    assert audited in "".join(m.text for m in root.iter(f"{{{NS}}}message"))
    path = tmp_path / "v18.xccdf.xml"
    path.write_text(render_xccdf(run))
    assert oscap_validate(path) == (0, [])
