"""Run the compliance suite as a user would (a pytest subprocess from the repo root) and read
its verdicts back from the JUnit XML it writes."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, fields
from pathlib import Path

import pytest

from cisaudit.host.hostspec import parse_spec
from cisaudit.outputs.record import CaseRecord

REPO = Path(__file__).resolve().parents[1]


def require(capability: bool, reason: str) -> None:
    """Skip where a capability is missing on a laptop; under CI=true it is a failure."""
    if capability:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI needs this capability: {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class SuiteRun:
    returncode: int
    output: str
    cases: dict[tuple[str, str, str], JunitCase]  # (host, control_id, check) -> its case

    def case(self, host: str, control_id: str, check: str) -> JunitCase:
        """The case of host (a spec as passed to --hosts; reports show it redacted)."""
        return self.cases[(shown(host), control_id, check)]

    def verdict(self, host: str, control_id: str, check: str) -> str:
        return self.case(host, control_id, check).verdict

    def verdicts(self, host: str | None = None) -> dict[tuple[str, str], str]:
        wanted = None if host is None else shown(host)
        return {(c, k): p.verdict for (h, c, k), p in self.cases.items() if wanted in (None, h)}


def shown(spec: str) -> str:
    """How the suite shows spec in test ids and reports (identity-file path redacted)."""
    return parse_spec(spec).display


@dataclass(frozen=True)
class JunitCase(CaseRecord):
    """A case record as JUnit carried it, with the test's outcome and name."""

    outcome: str = "passed"  # passed, failure, error or skipped
    name: str = ""
    classname: str = ""  # one per host (cisaudit/outputs/junit.py)


def parse_junit(path: Path) -> dict[tuple[str, str, str], JunitCase]:
    cases = {}
    for testcase in ET.parse(path).getroot().iter("testcase"):
        props = [(p.get("name", ""), p.get("value", "")) for p in testcase.iter("property")]
        if not CaseRecord.in_properties(props):
            continue
        outcome = next((child.tag for child in testcase if child.tag in ("failure", "error", "skipped")), "passed")
        record = CaseRecord.from_properties(props)
        case = JunitCase(
            **{f.name: getattr(record, f.name) for f in fields(record)},
            outcome=outcome,
            name=testcase.get("name", ""),
            classname=testcase.get("classname", ""),
        )
        cases[(case.host, case.control_id, case.check)] = case
    return cases


def output_args(directory: Path) -> list[str]:
    """Every output of a run into `directory`: JUnit, pytest-html and the suite's three reports."""
    return [
        f"--junitxml={directory / 'junit.xml'}",
        f"--html={directory / 'report.html'}",
        f"--compliance-report={directory / 'compliance.html'}",
        f"--results-json={directory / 'results.json'}",
        f"--xccdf={directory / 'results.xccdf.xml'}",
    ]


def run_pytest(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """The one way the self-tests run the suite: `python -m pytest ARGS` from the checkout's root
    (its pytest.ini loads the plugin), output captured as text, `env` over this process's."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=check,
    )


def run_suite(
    tmp_path: Path, hosts: list[str], *args: str, timeout: float = 900, env: dict[str, str] | None = None
) -> SuiteRun:
    """run_pytest with every output in tmp_path, the verdicts read back from its JUnit XML."""
    junit = tmp_path / "junit.xml"
    proc = run_pytest(
        *([f"--hosts={','.join(hosts)}"] if hosts else []), *output_args(tmp_path), *args, timeout=timeout, env=env
    )
    output = proc.stdout + proc.stderr
    assert junit.exists(), f"suite wrote no JUnit XML:\n{output[-3000:]}"
    return SuiteRun(proc.returncode, output, parse_junit(junit))
