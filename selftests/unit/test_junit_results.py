"""An aggregated item's outcome from its cases' records (outputs/item_verdict.py) and the JUnit
testcase a merge of shards writes for it (outputs/junit.py item_testcase), against what the
installed pytest's junitxml writes for the same error, failure, skip and pass under --tb=line."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from cisaudit.host.transport import HostError
from cisaudit.model.catalogue import benchmark
from cisaudit.model.verdict import Check, Status, Verdict
from cisaudit.outputs import junit
from cisaudit.outputs.item_verdict import item_verdict, shown_status
from cisaudit.outputs.junit_results import SuiteTests, iter_junit
from cisaudit.outputs.record import HOST_CONTROL, CaseRecord
from cisaudit.outputs.results import RunInfo, RunResults
from cisaudit.plugin.cases import case_name
from selftests.suite_runner import REPO

H = "ssm://i-1"


def _rec(control: str, check: Check, verdict: Status, summary: str = "s", **more: str) -> CaseRecord:
    return CaseRecord(H, control, check, verdict, summary, **more)  # type: ignore[arg-type]


def test_an_item_errors_fails_skips_or_passes_as_its_cases() -> None:
    ok, na = _rec("1.1.3", Check.LIVE, Status.PASS), _rec("1.1.4", Check.LIVE, Status.NOT_APPLICABLE)
    failed = _rec("1.1.5", Check.PERSISTED, Status.FAIL, "no rule")
    waived = _rec("1.1.6", Check.LIVE, Status.FAIL, "no rule", waiver="accepted")
    skipped = _rec("1.1.7", Check.LIVE, Status.NOT_RUN, "not run (waiver): x")
    error = _rec("1.1.8", Check.LIVE, Status.ERROR, "probe\x1b failed")
    assert item_verdict(H, [ok, error, failed]) == Verdict(
        Status.ERROR, f"{H}: 1 of 3 checks could not be judged: probe\\x1b failed"
    )
    assert item_verdict(H, [ok, failed, waived]) == Verdict(
        Status.FAIL, "1 of 3 checks failed: 1.1.5 persisted", ("no rule",)
    )
    assert item_verdict(H, [na, waived, skipped]).status == Status.NOT_APPLICABLE
    assert item_verdict(H, [ok, na]) == Verdict(Status.PASS, "2 checks")
    assert [shown_status(r) for r in (waived, skipped, failed)] == [Status.WAIVED, Status.WAIVED, Status.FAIL]


def test_the_host_error_is_the_fixtures_exception() -> None:
    assert f"{HostError.__module__}.{HostError.__qualname__}" == junit.HOST_ERROR


VERDICTS = {
    "test_error": Verdict(Status.ERROR, f'{H}: 1 of 2 checks could not be judged: a "quoted" <b>\nsecond line'),
    "test_fail": Verdict(Status.FAIL, "2 of 37 checks failed: 1.1.3 live, host auditd", ("x & <y>", "z\n" * 300)),
    "test_skip": Verdict(Status.NOT_APPLICABLE, "each of the 5 checks is not applicable or waived"),
    "test_pass": Verdict(Status.PASS, "5 checks"),
}
SUITE = """
import pytest
from cisaudit.host.transport import HostError

@pytest.fixture
def error():
    raise HostError({error!r})

def test_error(error):
    pass

def test_fail():
    pytest.fail({fail!r}, pytrace=False)

def test_skip():
    pytest.skip({skip!r})

def test_pass():
    pass
"""


def _children(case: ET.Element) -> list[tuple[str, dict[str, str], str | None]]:
    """A testcase's outcome elements; a skip's text without its FILE:LINE (where pytest.skip ran)."""
    return [(c.tag, dict(c.attrib), c.text.partition(": ")[2] if c.tag == "skipped" else c.text) for c in case]


def test_item_testcases_are_what_pytest_writes(tmp_path: Path) -> None:
    failure = VERDICTS["test_fail"]
    (tmp_path / "test_items.py").write_text(
        SUITE.format(
            error=VERDICTS["test_error"].summary,
            fail="\n".join((failure.summary, *failure.evidence)),
            skip=VERDICTS["test_skip"].summary,
        )
    )
    args = ["-p", "no:cacheprovider", "-p", "no:cisaudit.plugin", "--tb=line", "--junitxml=j.xml", "-q"]
    args += ["-o", "junit_family=xunit1"]
    subprocess.run(
        [sys.executable, "-m", "pytest", "-c", "/dev/null", f"--rootdir={tmp_path}", *args],
        cwd=tmp_path,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
        check=False,
    )
    written = {c.get("name"): c for c in ET.parse(tmp_path / "j.xml").getroot().iter("testcase")}
    for name, verdict in VERDICTS.items():
        ours = ET.fromstring(junit.item_testcase(verdict, "test_items", name, "test_items.py", 0, 0.0))
        assert _children(ours) == _children(written[name]), name


def test_compact_junit_has_a_testcase_per_host_and_function_then_the_backout_and_publication_cases() -> None:
    cases = [
        _rec(HOST_CONTROL, Check.AUDITD_RUNNING, Status.PASS),
        _rec("1.1.3", Check.LIVE, Status.FAIL, "no rule"),
        _rec("1.1.3", Check.BACKOUT, Status.PASS),
        _rec(HOST_CONTROL, Check.PUBLICATION, Status.ERROR, "denied"),
    ]
    info = RunInfo("pytest", "audit", False, 0.0, 1.0, hosts=(H,), benchmark=benchmark("1.7.0"))
    tests = SuiteTests("tests/t.py", {"test_host": 1, "test_control": 2, "test_backout": 3}, case_name)
    suite = ET.fromstring("".join(iter_junit(RunResults(info, cases), tests, compact=True))).find("testsuite")
    assert suite is not None
    assert [c.get("name") for c in suite] == [
        f"test_host[{H}|host|*]",
        f"test_control[{H}|*|*]",
        f"test_backout[{H}|1.1.3|backout]",
        f"publication[{H}]",
    ]
    assert [suite.get(k) for k in ("tests", "failures", "errors", "skipped")] == ["4", "1", "1", "0"]
