"""The real suite on local:// writes waivers, results.json and XCCDF as a user would see them."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cisaudit.model.verdict import HOST_CHECKS
from cisaudit.outputs.results_json import records
from cisaudit.outputs.xccdf import NS
from selftests.kernel import KernelSandbox
from selftests.suite_runner import run_pytest, run_suite
from selftests.unit.test_outputs import oscap_validate

pytestmark = pytest.mark.kernel
HOST = "local://"
EXPIRES = f"  expiration_date: {dt.date.today() + dt.timedelta(days=90)}\n"  # required, at most a year ahead


def test_waived_failure_does_not_fail_the_run(kernel: KernelSandbox, tmp_path: Path) -> None:
    kernel.make_path("/run/containerd", "dir")
    kernel.make_path("/etc/docker", "dir")
    kernel.kernel("-w /etc/docker -p rwxa -k docker")
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(
        "1.1.4:\n  justification: SEC-12 containerd socket audited elsewhere\n" + EXPIRES + "  approved_by: jane\n"
        "1.1.6:\n  justification: old ticket\n  expiration_date: 2020-01-01\n"
    )
    run = run_suite(tmp_path, [HOST], "--controls=1.1.4", f"--waivers={waivers}")
    live = run.cases[(HOST, "1.1.4", "live")]
    assert (live.verdict, live.outcome, live.waiver) == (
        "fail",
        "skipped",
        "SEC-12 containerd socket audited elsewhere",
    )
    junit = (tmp_path / "junit.xml").read_text()
    assert 'message="waived: SEC-12 containerd socket audited elsewhere"' in junit
    assert "the waiver of 1.1.6 expired on 2020-01-01; it is ignored" in run.output
    document = json.loads((tmp_path / "results.json").read_text())
    record = next(r for r in records(document) if r["control_id"] == "1.1.4" and r["check"] == "live")
    assert record["status"] == "waived" and record["waiver"]["applied"]
    assert record["waiver"]["approved_by"] == "jane" and live.waiver_approved_by == "jane"  # issue 25.2
    assert [(w["control_id"], w["matches_nothing"]) for w in document["waivers"]] == [("1.1.4", False), ("1.1.6", True)]
    assert "waiver of 1.1.6 (line 5, every host) matches nothing in this run" in run.output
    assert "Exception register" in (tmp_path / "compliance.html").read_text()
    assert document["hosts"][0]["facts"]["loader_mode"] in ("augenrules", "auditctl")
    xccdf = (tmp_path / "results.xccdf.xml").read_text()
    assert 'role="unscored"' in xccdf and "SEC-12 containerd socket audited elsewhere" in xccdf
    assert "waived" in (tmp_path / "compliance.html").read_text()
    host_failures = [k for k, p in run.cases.items() if p.outcome in ("failure", "error")]
    assert run.returncode == (1 if host_failures else 0), host_failures


def test_malformed_waiver_file_is_a_usage_error(tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text("1.1.4:\n  justification: x\n  expiration_date: 30/06/2027\n")
    proc = run_pytest(f"--waivers={waivers}", "--collect-only", "-q")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert f"--waivers: {waivers}:3: waiver 1.1.4: expiration_date must be YYYY-MM-DD" in proc.stderr


def _document(path: Path) -> dict:
    return json.loads((path / "results.json").read_text())


def test_a_selection_of_the_benchmark_is_never_compliant(kernel: KernelSandbox, tmp_path: Path) -> None:
    """Issue 22 item 4: `-k 1.1.13` (one not-applicable control) and `::test_host` (no control) read
    COMPLIANT, with an XCCDF file that selected all 16 rules."""
    waivers = tmp_path / "waivers.yaml"  # whatever this machine has at /etc/sysconfig/docker, 1.1.13 cannot fail
    waivers.write_text("1.1.13:\n  justification: SEC-13 not a RHEL host\n" + EXPIRES)
    (tmp_path / "k").mkdir()
    run = run_suite(tmp_path / "k", [HOST], "-k", "1.1.13", f"--waivers={waivers}")
    assert run.returncode == 0, run.output[-3000:]
    assert _document(tmp_path / "k")["run"]["overall"] == "partial scope"
    assert _document(tmp_path / "k")["run"]["scope"]["checked"] == ["1.1.13"]
    html = (tmp_path / "k" / "compliance.html").read_text()
    assert ">PARTIAL SCOPE</span>" in html and ">COMPLIANT<" not in html
    assert "overall: PARTIAL SCOPE; scope: PARTIAL, 1 of 16 controls checked on every host" in run.output
    root = ET.parse(tmp_path / "k" / "results.xccdf.xml").getroot()
    results = [r.find(f"{{{NS}}}result").text for r in root.iter(f"{{{NS}}}rule-result")]
    assert len(results) == 16 and results.count("notselected") == 15, results
    (tmp_path / "h").mkdir()
    run = run_suite(tmp_path / "h", [HOST], "tests/test_cis_docker_audit.py::test_host")
    failed = [k for k, case in run.cases.items() if case.verdict != "pass"]
    overall = _document(tmp_path / "h")["run"]["overall"]
    assert overall == ("not compliant" if failed else "nothing checked"), failed
    assert f"overall: {overall.upper()}; scope: PARTIAL, 0 of 16 controls" in run.output


def test_xccdf_files_per_host_validate_and_open_in_openscap(kernel: KernelSandbox, tmp_path: Path) -> None:
    """Issue 22 item 14: a waiver made the file invalid for `oscap xccdf validate`; OpenSCAP's report
    of a fleet file shows only its last host, so each host has a file of its own."""
    kernel.make_path("/run/containerd", "dir")
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text("1.1.4:\n  justification: SEC-12 containerd audited elsewhere\n" + EXPIRES)
    other = "paramiko://127.0.0.1:1"
    run_suite(tmp_path, [HOST, other], "--controls=1.1.4,1.1.6", f"--waivers={waivers}")
    hosts = sorted((tmp_path / "results.xccdf.hosts").glob("*.xml"))
    assert [p.name for p in hosts] == ["local.xml", "paramiko_127.0.0.1_1.xml"]
    for path in [tmp_path / "results.xccdf.xml", *hosts]:
        assert oscap_validate(path) == (0, []), path
    for path, host in zip(hosts, (HOST, other), strict=True):
        report = subprocess.run(
            ["oscap", "xccdf", "generate", "report", str(path)], capture_output=True, text=True, check=True
        ).stdout
        assert host in report, path


def test_terminal_shows_each_failure_once_and_an_unreachable_host_in_one_line(
    kernel: KernelSandbox, tmp_path: Path
) -> None:
    """Issue 22 item 13: FAILURES never named host, control or check and printed each summary twice;
    an unreachable host printed one ERROR block per case."""
    kernel.make_path("/run/containerd", "dir")
    other = "paramiko://127.0.0.1:1"
    run = run_suite(tmp_path, [HOST, other], "--controls=1.1.4")
    failing = [case for (host, _, _), case in run.cases.items() if host == HOST and case.verdict == "fail"]
    assert failing, run.output[-3000:]
    for case in failing:
        assert f" {HOST} | {case.control_id} | {case.check} _" in run.output
        assert run.output.count(case.summary) == sum(c.summary == case.summary for c in failing), case.summary
    assert "ERROR at setup" not in run.output and "= FAILURES =" not in run.output
    lines = [line for line in run.output.splitlines() if line.startswith(f"{other}: cannot connect")]
    assert len(lines) == 1 and lines[0].endswith(f"(every check of the host: {len(HOST_CHECKS) + 2} errors)"), lines


def test_dry_run_shows_the_plan_per_host(kernel: KernelSandbox, tmp_path: Path) -> None:
    """Issue 22 item 12: the terminal showed no plan; reports said "applied run ...: dry-run"."""
    kernel.make_path("/etc/docker", "dir")
    run = run_suite(tmp_path, [HOST], "--remediate", "--dry-run", "--controls=1.1.6")
    assert "change per host (dry run: nothing was changed; the plan per host)" in run.output, run.output[-3000:]
    assert (
        f"{HOST}: remediation: dry run, nothing changed; the plan: CIS Docker Benchmark v1.7.0: add to " in run.output
    )
    assert "    would add: -w /etc/docker " in run.output
    changes = _document(tmp_path)["hosts"][0]["changes"]
    assert changes and changes[0].startswith("dry run, nothing changed: would add 1 rule(s) to "), changes
    assert "applied run" not in changes[0] and "would CIS" not in run.output
    assert run.verdict(HOST, "1.1.6", "live") == "fail"  # nothing was changed


def test_a_selection_of_no_case_replaces_earlier_reports(tmp_path: Path) -> None:
    """`-k nothing-matches` wrote no report, so an earlier run's COMPLIANT files stayed."""
    (tmp_path / "results.json").write_text('{"run": {"overall": "compliant"}}')
    (tmp_path / "results.xccdf.hosts").mkdir()
    (tmp_path / "results.xccdf.hosts" / "old.xml").write_text("<old/>")
    proc = run_pytest(
        "-k",
        "no-case-has-this-name",
        f"--results-json={tmp_path / 'results.json'}",
        f"--xccdf={tmp_path / 'results.xccdf.xml'}",
        f"--compliance-report={tmp_path / 'c.html'}",
        *("-p", "no:cacheprovider", f"--junitxml={tmp_path / 'junit.xml'}", f"--html={tmp_path / 't.html'}"),
    )
    assert proc.returncode == 5, proc.stdout[-2000:]  # pytest's "no tests ran"
    assert _document(tmp_path)["run"]["overall"] == "nothing checked"
    assert not list((tmp_path / "results.xccdf.hosts").iterdir())
    assert "overall: NOTHING CHECKED" in proc.stdout
