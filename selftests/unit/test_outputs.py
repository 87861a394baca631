"""results.json, XCCDF and the compliance report rendered from hand-made results (pure code;
the XCCDF is validated by the real `oscap xccdf validate`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema

from cisaudit.model.catalogue import benchmark, controls
from cisaudit.model.verdict import CONTROL_CHECKS, HOST_CHECKS, Check, Status
from cisaudit.outputs.compliance_html import render_html
from cisaudit.outputs.record import CaseRecord
from cisaudit.outputs.results import RunInfo, RunResults, natural_key
from cisaudit.outputs.results_json import records, render_json
from cisaudit.outputs.terminal import error_lines, failure_blocks, overall_line
from cisaudit.outputs.text import terminal_safe
from cisaudit.outputs.xccdf import NS, iter_xccdf, render_xccdf, rule_id
from selftests.suite_runner import REPO, require

T0 = 1_800_000_000.0
A, B = "paramiko://root@10.0.0.10", "paramiko://root@10.0.0.2"
PASS_RULE = "`-w /etc/docker -p rwxa -k docker` (/etc/audit/rules.d/60.rules:3)"


def case(host: str, control_id: str, check: str, verdict: str, **kw) -> CaseRecord:
    return CaseRecord(host, control_id, Check(check), Status(verdict), started=T0, finished=T0 + 1, **kw)


def results(*cases: CaseRecord, mode: str = "audit", hosts: tuple[str, ...] = ()) -> RunResults:
    return RunResults(
        RunInfo(
            "pytest --hosts=x", mode, False, T0, T0 + 5, "0.1.0", "abc123", hosts=hosts, benchmark=benchmark("1.7.0")
        ),
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


def complete(host: str, **changed: str) -> list[CaseRecord]:
    """Every control live and persisted and every host check on `host`, passing unless `changed`
    ("CONTROL|CHECK" -> verdict, or "CONTROL|CHECK|waived" for a waived failure)."""
    found = [(c.id, k) for c in controls() for k in CONTROL_CHECKS] + [("host", k) for k in HOST_CHECKS]
    made = []
    for cid, check in found:
        verdict = changed.get(f"{cid}|{check}", "pass")
        waived = changed.get(f"{cid}|{check}|waived")
        made.append(case(host, cid, check, waived and "fail" or verdict, waiver=waived or "", summary=PASS_RULE))
    return made


def test_overall_verdict() -> None:
    assert FLEET.overall == "not compliant"  # the expired waiver's failure counts
    assert results(*complete(A)).overall == "compliant"
    assert results(*complete(A, **{"1.1.6|live|waived": "ok"})).overall == "compliant"
    assert results(*complete(A, **{"1.1.6|live": "error"})).overall == "errors"
    assert results(*complete(A, **{"1.1.6|live": "fail"})).overall == "not compliant"


def test_a_run_that_left_part_of_the_benchmark_out_is_never_compliant() -> None:
    """Issue 22 item 4: `-k 1.1.13` (one not-applicable control) and `::test_host` (no control)."""
    only_13 = results(case(A, "1.1.13", "live", "not-applicable"), case(A, "1.1.13", "persisted", "not-applicable"))
    assert only_13.overall == "partial scope"
    assert only_13.scope.checked == ("1.1.13",) and only_13.scope.not_checked[-1] == "host"
    assert len(only_13.scope.not_checked) == 16 and not only_13.scope.complete
    host_only = results(*(case(A, "host", k, "pass") for k in HOST_CHECKS))
    assert host_only.overall == "nothing checked" and host_only.scope.checked == ()
    assert results(*(c for c in complete(A) if c.check != "persisted")).overall == "partial scope"  # -k live
    assert results(*(c for c in complete(A) if c.control_id != "host")).overall == "partial scope"
    left_out = results(*complete(A), hosts=(A, B))  # B given but deselected
    assert left_out.overall == "partial scope" and left_out.scope.hosts_not_checked == (B,)
    assert results(*complete(A), *complete(B), hosts=(A, B)).overall == "compliant"
    assert results().overall == "nothing checked"


def test_json_matches_its_schema_and_records() -> None:
    document = json.loads(render_json(FLEET))
    schema = json.loads((REPO / "docs" / "results.schema.json").read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(document)
    assert document["benchmark"] == {"title": "CIS Docker Benchmark", "version": "1.7.0", "profile": "Level 1"}
    assert [h["host"] for h in document["hosts"]] == [B, A]
    assert document["hosts"][0]["facts"]["loader_mode"] == "augenrules"
    waived = next(
        r for r in records(document) if r["host"] == A and r["check"] == "persisted" and r["control_id"] == "1.1.6"
    )
    assert (waived["status"], waived["verdict"], waived["waiver"]) == (
        "waived",
        "fail",
        {
            "justification": "SEC-12 accepted",
            "expiration_date": "2099-01-01",
            "applied": True,
            "expired": False,
            "approved_by": None,
            "ticket": None,
        },
    )
    passed = records(document)[0]
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


def test_xccdf_results_fixed_waived_and_left_out() -> None:
    found = _rule_results(render_xccdf(FLEET))
    result = {key: r.find(f"{{{NS}}}result").text for key, r in found.items()}
    assert {k: v for k, v in result.items() if v != "notselected"} == {
        (B, rule_id("1.1.4")): "notapplicable",
        (B, rule_id("1.1.6")): "fixed",
        (A, rule_id("1.1.4")): "fail",
        (A, rule_id("1.1.6")): "fail",
    }
    assert len(result) == 2 * 16  # every Rule of the benchmark: the 14 the run left out are notselected
    waived = found[(A, rule_id("1.1.6"))]  # checked and reported, not scored; no <override> (see xccdf.py)
    assert waived.get("role") == "unscored" and waived.find(f"{{{NS}}}override") is None
    assert "persisted: waived (waived: SEC-12 accepted; no approver): no rule" in [
        m.text for m in waived.iter(f"{{{NS}}}message")
    ]
    assert found[(A, rule_id("1.1.4"))].get("role") is None  # expired waiver: a scored failure
    root = ET.fromstring(render_xccdf(FLEET))
    run = next(p for p in root.iter(f"{{{NS}}}Profile") if p.get("id").endswith("this_run"))
    assert {s.get("idref") for s in run.iter(f"{{{NS}}}select") if s.get("selected") == "true"} == {
        rule_id("1.1.4"),
        rule_id("1.1.6"),
    }
    assert all(t.find(f"{{{NS}}}profile").get("idref") == run.get("id") for t in root.iter(f"{{{NS}}}TestResult"))
    remarks = [r.text for r in root.iter(f"{{{NS}}}remark")]
    assert "overall: not compliant; scope: 2 of 16 controls checked on every host; not checked: 1.1.3" in remarks[1]


def test_xccdf_never_reads_pass_for_a_control_checked_in_part() -> None:
    """`-k live`: a control whose persisted check did not run is notchecked, not pass."""
    found = _rule_results(render_xccdf(results(case(A, "1.1.6", "live", "pass"), case(A, "1.1.4", "live", "fail"))))
    assert found[(A, rule_id("1.1.6"))].find(f"{{{NS}}}result").text == "notchecked"
    assert found[(A, rule_id("1.1.4"))].find(f"{{{NS}}}result").text == "fail"  # a failure is one anyway
    messages = [m.text for m in found[(A, rule_id("1.1.6"))].iter(f"{{{NS}}}message")]
    assert "not checked in this run: persisted" in messages


def oscap_validate(path: Path, *options: str) -> tuple[int, list[str]]:
    require(shutil.which("oscap") is not None, "needs oscap (apt-get install openscap-scanner)")
    proc = subprocess.run(["oscap", "xccdf", "validate", *options, str(path)], capture_output=True, text=True)
    return proc.returncode, [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("Error")]


MODES = {
    "audit": results(*(c for c in FLEET.cases if not c.waiver)),
    "waived": FLEET,  # a waiver applies: oscap 1.3.7 rejected the <override> this file used to hold
    "remediated": results(*complete(B), mode="remediate"),
    "partial": results(case(A, "1.1.13", "live", "not-applicable")),
    "nothing checked": results(case(A, "host", "load-health", "pass")),
    "errors": results(*complete(A, **{"1.1.6|live": "error"})),
    "waived run false": results(case(A, "1.1.6", "live", "not-run", waiver="SEC-1")),
}


def test_xccdf_validates_with_oscap_in_every_mode(tmp_path: Path) -> None:
    for mode, run in MODES.items():
        path = tmp_path / f"{mode}.xccdf.xml"
        path.write_text(render_xccdf(run))
        assert oscap_validate(path) == (0, []), mode
        for host in run.hosts:
            path.write_text("".join(iter_xccdf(run, host)))
            assert oscap_validate(path) == (0, []), (mode, host)
    broken = tmp_path / "broken.xml"  # the validator really checks: a result outside the enum fails
    broken.write_text(render_xccdf(FLEET).replace("<result>fixed</result>", "<result>waived</result>"))
    assert oscap_validate(broken)[0] != 0


def test_each_host_file_is_that_host_in_openscaps_report(tmp_path: Path) -> None:
    """`oscap xccdf generate report` shows the last TestResult of a file and ignores --result-id, so
    each host has its own file (iter_xccdf(results, host)); its report is that host's."""
    require(shutil.which("oscap") is not None, "needs oscap (apt-get install openscap-scanner)")
    for host in FLEET.hosts:
        path = tmp_path / "host.xml"
        path.write_text("".join(iter_xccdf(FLEET, host)))
        assert len(ET.parse(path).getroot().findall(f"{{{NS}}}TestResult")) == 1
        html = subprocess.run(
            ["oscap", "xccdf", "generate", "report", str(path)], capture_output=True, text=True, check=True
        ).stdout
        assert host in html and ({A, B} - {host}).pop() not in html


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
        RunInfo("pytest --benchmark 1.8.0", "audit", False, T0, T0 + 5, "0.1.0", "abc", benchmark=benchmark("1.8.0")),
        [case(A, "1.1.9", "live", "pass", summary=PASS_RULE, audited=audited, level="2")],
    )
    assert "CIS Docker Benchmark v1.8.0, Level 2" in render_html(run)
    assert audited in render_html(run)
    document = json.loads(render_json(run))
    assert document["benchmark"]["version"] == "1.8.0" and records(document)[0]["audited"] == audited
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


def test_partial_scope_reaches_every_output() -> None:
    run = results(case(A, "1.1.13", "live", "not-applicable"), case(A, "1.1.13", "persisted", "not-applicable"))
    html = render_html(run)
    assert "class='part'>PARTIAL SCOPE</span>" in html and ">COMPLIANT<" not in html
    assert "<dt>Scope</dt><dd>PARTIAL: 1 of 16 controls checked on every host; not checked: 1.1.3, 1.1.4" in html
    document = json.loads(render_json(run))
    schema = json.loads((REPO / "docs" / "results.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(document)
    assert document["schema_version"] == "2.0"
    assert document["run"]["overall"] == "partial scope"
    assert document["run"]["scope"]["checked"] == ["1.1.13"] and not document["run"]["scope"]["complete"]
    assert "host" in document["run"]["scope"]["not_checked"]
    assert overall_line(run).startswith("overall: PARTIAL SCOPE; scope: PARTIAL, 1 of 16 controls checked")
    nothing = results(case(A, "host", "load-health", "pass"))
    assert ">NOTHING CHECKED</span>" in render_html(nothing)
    assert json.loads(render_json(nothing))["run"]["overall"] == "nothing checked"


def test_terminal_names_each_failure_once_and_each_unreachable_host_once() -> None:
    """Issue 22 item 13: a block per failure headed HOST | CONTROL | CHECK, the summary once; an
    unreachable host is one line, not one block per case."""
    down = "paramiko://root@10.0.0.9"
    unreachable = [
        case(down, c.id, k, "error", summary=f"{down}: cannot connect: timed out")
        for c in controls()
        for k in CONTROL_CHECKS
    ] + [case(down, "host", k, "error", summary=f"{down}: cannot connect: timed out") for k in HOST_CHECKS]
    evidence = "\n".join(f"line {n}" for n in range(30))
    run = results(
        case(A, "1.1.6", "live", "fail", summary="no rule for /etc/docker", evidence=evidence),
        case(A, "1.1.4", "live", "error", summary="probe output unreadable"),
        *unreachable,
    )
    blocks = list(failure_blocks(run))
    assert [head for head, _ in blocks] == [f"{A} | 1.1.6 | live"]
    lines = blocks[0][1]
    assert lines[0] == "no rule for /etc/docker" and lines.count("no rule for /etc/docker") == 1
    assert lines[1:3] == ["line 0", "line 1"] and lines[-1] == "... 10 more evidence lines in results.json"
    assert list(error_lines(run)) == [
        f"{down}: cannot connect: timed out (every check of the host: {len(unreachable)} errors)",
        f"{A} | 1.1.4 | live: probe output unreadable",
    ]


def test_host_text_reaches_the_terminal_without_control_characters() -> None:
    """Issue 21 item 14: evidence from a host cannot clear the screen or recolour the terminal."""
    hostile = "ok\x1b[2J\x1b]0;owned\x07 \u202eevil\rX"
    assert terminal_safe(hostile) == "ok\\x1b[2J\\x1b]0;owned\\x07 \\u202eevil\\rX"
    run = results(case(A, "1.1.6", "live", "fail", summary=hostile, evidence="a\tb\x9bc"))
    _, lines = next(failure_blocks(run))
    assert all("\x1b" not in line and "\x9b" not in line and "\r" not in line for line in lines)
    assert lines[1] == "a\tb\\x9bc"


def test_host_text_xml_cannot_hold_keeps_the_xccdf_well_formed(tmp_path: Path) -> None:
    """Issue 21.9: one host's control characters (a rules line, a data-root in daemon.json) made the
    whole fleet's XCCDF not well-formed; they are written as visible escapes."""
    hostile = "\x01\x1b[31m\x0c\ufffe"
    run = results(
        case(A, "1.1.5", "live", "fail", summary=f"no rule {hostile}", evidence=f"-w /x{hostile} -k docker"),
        case(B, "1.1.5", "persisted", "pass", summary=PASS_RULE, audited=f"/srv/docker{hostile} (daemon.json)"),
    )
    path = tmp_path / "hostile.xccdf.xml"
    path.write_text(render_xccdf(run))
    text = path.read_text()
    assert ET.parse(path).getroot().tag == f"{{{NS}}}Benchmark"
    assert "\\x01\\x1b[31m\\x0c\\ufffe" in text and not any(c in text for c in "\x01\x1b\x0c\ufffe")
    assert oscap_validate(path) == (0, [])
