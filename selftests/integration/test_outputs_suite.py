"""The real suite on local:// writes waivers, results.json and XCCDF as a user would see them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from selftests.kernel import KernelSandbox
from selftests.suite_runner import REPO, run_suite

pytestmark = pytest.mark.kernel
HOST = "local://"


def test_waived_failure_does_not_fail_the_run(kernel: KernelSandbox, tmp_path: Path) -> None:
    kernel.make_path("/run/containerd", "dir")
    kernel.make_path("/etc/docker", "dir")
    kernel.kernel("-w /etc/docker -p rwxa -k docker")
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(
        "1.1.4:\n  justification: SEC-12 containerd socket audited elsewhere\n"
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
    record = next(r for r in document["results"] if r["control_id"] == "1.1.4" and r["check"] == "live")
    assert record["status"] == "waived" and record["waiver"]["applied"]
    assert document["hosts"][0]["facts"]["loader_mode"] in ("augenrules", "auditctl")
    xccdf = (tmp_path / "results.xccdf.xml").read_text()
    assert "<old-result>fail</old-result>" in xccdf and "SEC-12 containerd socket audited elsewhere" in xccdf
    assert "waived" in (tmp_path / "compliance.html").read_text()
    host_failures = [k for k, p in run.cases.items() if p.outcome in ("failure", "error")]
    assert run.returncode == (1 if host_failures else 0), host_failures


def test_malformed_waiver_file_is_a_usage_error(tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text("1.1.4:\n  justification: x\n  expiration_date: 30/06/2027\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", f"--waivers={waivers}", "--collect-only", "-q"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert f"--waivers: {waivers}:3: waiver 1.1.4: expiration_date must be YYYY-MM-DD" in proc.stderr
