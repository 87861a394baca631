"""JUnit as CI reads it: the suite's report hooks on synthetic cases (no host), read back by a real
JUnit library (junitparser, requirements-dev.txt): one classname per host, text capped at TEXT_CAP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import junitparser

from cisaudit.outputs.junit import TEXT_CAP
from selftests.suite_runner import REPO

ENV = {**os.environ, "PYTHONPATH": str(REPO), "PY_COLORS": "0"}
HOSTS = ("paramiko://root@10.0.0.2", "paramiko://root@10.0.0.10")
TESTS = """
import pytest

HOSTS = %r
CASES = [(h, c, k) for h in HOSTS for c in ("1.1.4", "1.1.6") for k in ("live", "persisted")]


@pytest.mark.parametrize("case", CASES, ids=["|".join(c) for c in CASES])
def test_control(request, case):
    host, control_id, check = case
    fails = control_id == "1.1.6"
    hostile = "/etc/docker\\x1b[2J\\x1b]0;owned\\x07"  # a path as a hostile host could report it
    evidence = "\\n".join(f"/etc/audit/rules.d/{n:04d}.rules:1: -w /x/{n} -p wa -k other" for n in range(900))
    request.node.user_properties += [
        ("host", host), ("control_id", control_id), ("check", check),
        ("verdict", "fail" if fails else "pass" if check == "live" else "not-applicable"),
        ("summary", "no rule for /etc/docker" if fails else f"not applicable: {hostile} does not exist"),
        ("evidence", evidence + "\\n" + hostile if fails else ""),
        ("benchmark", "CIS Docker Benchmark v1.7.0"), ("change", ""), ("remote_commands", "1"),
    ]
    if fails:
        pytest.fail("no rule for /etc/docker\\n" + evidence, pytrace=False)
    if check == "persisted":
        pytest.skip(f"not applicable: {hostile} does not exist")
"""


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    tests = tmp_path / "tests" / "test_cis_docker_audit.py"
    tests.parent.mkdir()
    tests.write_text(TESTS % (HOSTS,))
    junit = tmp_path / "junit.xml"
    cmd = [sys.executable, "-m", "pytest", str(tests), "-p", "cisaudit.plugin", "-p", "no:cacheprovider"]
    cmd += [
        "-c",
        "/dev/null",
        "--noconftest",
        f"--rootdir={tmp_path}",
        f"--junitxml={junit}",
        "-o",
        "junit_family=xunit1",
    ]
    cmd += [f"--{o}=" for o in ("compliance-report", "results-json", "xccdf")]
    proc = subprocess.run([*cmd, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=ENV)
    assert junit.exists(), proc.stdout + proc.stderr
    return proc, junit


def test_junit_groups_by_host_and_caps_text_for_a_junit_library(tmp_path: Path) -> None:
    """Issue 22 item 15: every case had classname tests.test_cis_docker_audit, and a failing case's
    evidence (here 45 KB) went whole into a property, the failure message and its text."""
    proc, junit = _run(tmp_path)
    assert proc.returncode == 1, proc.stdout[-2000:]
    cases = [case for suite in junitparser.JUnitXml.fromfile(str(junit)) for case in suite]
    assert len(cases) == 8
    by_class: dict[str, list[str]] = {}
    for case in cases:
        by_class.setdefault(case.classname, []).append(case.name)
    assert sorted(by_class) == [
        "tests.test_cis_docker_audit.paramiko://root@10_0_0_10",
        "tests.test_cis_docker_audit.paramiko://root@10_0_0_2",
    ]
    assert all(len(names) == 4 for names in by_class.values())
    for case in cases:
        props = [p for ps in case.iterchildren(junitparser.Properties) for p in ps.iterchildren(junitparser.Property)]
        assert {p.name for p in props} >= {"host", "control_id", "check", "verdict", "evidence"}
        for prop in props:
            assert len(prop.value) <= TEXT_CAP, (case.name, prop.name, len(prop.value))
        for result in case.result:
            assert len(result.message or "") <= TEXT_CAP and len(result.text or "") <= TEXT_CAP
    failed = [c for c in cases if c.result and isinstance(c.result[0], junitparser.Failure)]
    assert len(failed) == 4
    text = failed[0].result[0].text
    assert text.startswith("no rule for /etc/docker\n/etc/audit/rules.d/0000.rules:1:")
    assert text.endswith("more characters; results.json has the whole text]")


def test_host_text_reaches_the_terminal_escaped(tmp_path: Path) -> None:
    """Issue 21 item 14: a host's text (evidence, a path in a skip reason) printed raw could clear
    the screen or set the terminal's title; the failure blocks and SKIPPED lines escape it."""
    proc, _ = _run(tmp_path, "-rs")
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    assert "/etc/docker\\x1b[2J\\x1b]0;owned\\x07 does not exist" in proc.stdout  # SKIPPED [2] ...
    assert f"_ {HOSTS[0]} | 1.1.6 | live _" in proc.stdout
