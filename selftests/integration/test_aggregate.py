"""Aggregated items (--aggregate-above, cisaudit/plugin/aggregate.py) against per-case items: the
same suite on this machine's real kernel, run both ways, must give the same JUnit testcases
(names, properties, outcomes), the same results.json records and the same exit code, under
-k, -m and --controls, and with a host that cannot be reached beside a good one."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cisaudit.model.verdict import HOST_CHECKS
from cisaudit.outputs.results_json import records
from selftests.kernel import KernelSandbox
from selftests.suite_runner import REPO, SuiteRun, run_suite, shown

pytestmark = pytest.mark.kernel
HOST = "local://"
UNREACHABLE = "paramiko://root@127.0.0.1:9"  # nothing listens on the discard port: refused at once


def _cases(run: SuiteRun) -> dict[tuple[str, str, str], tuple[object, ...]]:
    return {
        key: (
            case.name,
            case.classname,
            case.outcome,
            case.verdict,
            case.summary,
            case.evidence,
            case.status,
            case.audited,
        )
        for key, case in run.cases.items()
    }


def _records(path: Path) -> list[dict[str, object]]:
    document = json.loads((path / "results.json").read_text())
    return [{k: v for k, v in r.items() if k not in ("started", "finished")} for r in records(document)]


@pytest.mark.parametrize(
    "selection",
    [
        [],
        ["-k", "1.1.4 and not persisted"],
        ["-k", "not live"],
        ["-m", "level1"],
        ["-m", "level2 and not level1", "-k", "host or 1.1.1"],
        ["--controls=1.1.5,1.1.6"],
    ],
    ids=lambda s: " ".join(s) or "all",
)
def test_aggregated_items_report_every_case_as_per_case_items_do(
    kernel: KernelSandbox, tmp_path: Path, selection: list[str]
) -> None:
    kernel.make_path("/etc/docker", "dir")
    kernel.write_rules_d("60-cis-docker.rules", "-w /etc/docker -k docker\n")
    assert kernel.load().returncode == 0
    hosts = [HOST, UNREACHABLE]
    per_case = run_suite(tmp_path / "per-case", hosts, "--accept-new-host-keys", *selection)
    aggregated = run_suite(
        tmp_path / "aggregated", hosts, "--accept-new-host-keys", "--aggregate-above=0", "--fleet-reports", *selection
    )
    assert _cases(aggregated) == _cases(per_case)
    assert _records(tmp_path / "aggregated") == _records(tmp_path / "per-case")
    assert aggregated.returncode == per_case.returncode
    bad = [c for (host, _, _), c in aggregated.cases.items() if host == shown(UNREACHABLE)]
    assert bad and all(c.verdict == "error" and c.outcome == "error" for c in bad)


def _items(*args: str) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", "--collect-only", "-q", "--controls=1.1.4,1.1.5", *args]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, check=True).stdout
    return [line for line in out.splitlines() if "::" in line]


def test_the_threshold_counts_hosts() -> None:
    hosts = f"--hosts={HOST},{UNREACHABLE}"
    assert len(_items(hosts)) == 2 * (len(HOST_CHECKS) + 2 * 2)  # the host checks, 2 controls x (live, persisted)
    assert len(_items(hosts, "--aggregate-above=2")) == 2 * (len(HOST_CHECKS) + 2 * 2)
    assert sorted(_items(hosts, "--aggregate-above=1")) == sorted(
        f"tests/test_cis_docker_audit.py::{function}[{shown(spec)}|{control}|*]"
        for spec in (HOST, UNREACHABLE)
        for function, control in (("test_host", "host"), ("test_control", "*"))
    )


def test_above_the_threshold_the_outputs_that_grow_per_host_are_compact(tmp_path: Path) -> None:
    """Issue 26.3: without --fleet-reports, pytest-html and the per-host XCCDF files are off and JUnit
    has one testcase per host and test function; results.json and XCCDF still hold every case."""
    run = run_suite(tmp_path, [HOST, UNREACHABLE], "--accept-new-host-keys", "--aggregate-above=0", "--controls=1.1.4")
    assert run.cases == {}  # no testcase per case
    names = {c.get("name") for c in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")}
    assert names == {
        f"{f}[{shown(h)}|{c}|*]" for h in (HOST, UNREACHABLE) for f, c in (("test_host", "host"), ("test_control", "*"))
    }
    assert not (tmp_path / "report.html").exists() and not (tmp_path / "results.xccdf.hosts").exists()
    assert "not written above --aggregate-above (--fleet-reports writes them): --html" in run.output
    assert len(_records(tmp_path)) == 2 * (len(HOST_CHECKS) + 2)
