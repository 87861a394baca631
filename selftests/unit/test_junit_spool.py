"""cisaudit.outputs.junit: the cases of aggregated items merged into the file pytest's junitxml wrote."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from cisaudit.model.verdict import Check, Status
from cisaudit.outputs.junit import CaseSpool
from cisaudit.outputs.record import CaseRecord

PYTEST_FILE = (
    '<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">'
    '<testsuite name="pytest" errors="0" failures="2" skipped="0" tests="3" time="1.0">'
    '<testcase classname="tests.test_cis_docker_audit" name="test_control[h1|*|*]" time="0.5">'
    '<failure message="Failed: 1 of 2 checks failed">x</failure></testcase>'
    '<testcase classname="tests.test_cis_docker_audit" name="test_host[h1|host|*]" time="0.1" />'
    '<testcase classname="tests.test_mine" name="test_users_own" time="0.1"><failure message="no">y</failure>'
    "</testcase></testsuite></testsuites>"
)


def record(check: Check, verdict: Status, control_id: str = "1.1.6", **kw: str) -> CaseRecord:
    return CaseRecord("h1", control_id, check, verdict, summary=f"{check} {verdict}", **kw)


def test_aggregated_testcases_are_replaced_by_their_cases(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(PYTEST_FILE)
    spool = CaseSpool(junit)
    node = "tests/test_cis_docker_audit.py::test_control[h1|*|*]"
    spool.add(
        [
            (record(Check.LIVE, Status.PASS), "test_control[h1|1.1.6|live]"),
            (record(Check.PERSISTED, Status.FAIL, evidence="a\x01b"), "test_control[h1|1.1.6|persisted]"),
            (record(Check.LIVE, Status.NOT_APPLICABLE, "1.1.3"), "test_control[h1|1.1.3|live]"),
        ],
        node,
        "tests/test_cis_docker_audit.py",
        24,
    )
    spool.add(
        [(record(Check.LOAD_HEALTH, Status.ERROR, "host"), "test_host[h1|host|load-health]")],
        "tests/test_cis_docker_audit.py::test_host[h1|host|*]",
        "tests/test_cis_docker_audit.py",
        20,
    )
    spool.merge_into(junit)
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    names = [c.get("name") for c in suite.iter("testcase")]
    assert names == [
        "test_users_own",
        "test_control[h1|1.1.6|live]",
        "test_control[h1|1.1.6|persisted]",
        "test_control[h1|1.1.3|live]",
        "test_host[h1|host|load-health]",
    ]
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "5",
        "failures": "2",
        "errors": "1",
        "skipped": "1",
    }
    persisted = suite.findall("testcase")[2]
    assert persisted.get("classname") == "tests.test_cis_docker_audit.h1" and persisted.get("line") == "24"
    props = {p.get("name"): p.get("value") for p in persisted.iter("property")}
    assert props["verdict"] == "fail" and props["evidence"] == "a#x01b"  # escaped as pytest escapes it
    failure = persisted.find("failure")
    assert failure is not None and failure.text == "persisted fail\na#x01b"
    assert not spool.path.exists()
