"""The compliance report of a 1,000-host fleet (bench/synth: 1,000 hosts x 16 controls x 2
checks, run through pytest and cisaudit.plugin.report as a user's run is), opened in real headless
Chromium from the distribution's packages."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from selftests.suite_runner import REPO, require

HOSTS = 1000
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def fleet_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fleet")
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "bench/synth/test_synthetic_report.py",
        "-p",
        "cisaudit.plugin",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        "-c",
        "/dev/null",
        "--noconftest",
        "-q",
        "--tb=no",
        "--rootdir=bench/synth",
        f"--compliance-report={out / 'compliance.html'}",
        f"--results-json={out / 'results.json'}",
        f"--xccdf={out / 'results.xccdf.xml'}",
    ]
    subprocess.run(cmd, cwd=REPO, env={**os.environ, "SYNTH_HOSTS": str(HOSTS)}, capture_output=True, timeout=600)
    return out / "compliance.html"


@pytest.fixture
def chromium() -> Iterator[list[str]]:
    require(shutil.which("chromium") is not None, "needs Chromium (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        yield ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]


def test_fleet_report_is_under_10_mb(fleet_report: Path) -> None:
    assert fleet_report.stat().st_size < 10 * 2**20, fleet_report.stat().st_size


def test_first_screen_in_chromium(fleet_report: Path, chromium: list[str], tmp_path: Path) -> None:
    started = time.monotonic()
    dom = subprocess.run(
        [*chromium, "--dump-dom", fleet_report.as_uri()], capture_output=True, text=True, timeout=60
    ).stdout
    wall = time.monotonic() - started
    rendered_ms = int(re.search(r'data-rendered-ms="(\d+)"', dom).group(1))  # the page's scripts ran
    assert rendered_ms < 3000 and wall < 10, (rendered_ms, wall)
    assert ">ERRORS</span>" in dom  # overall verdict: the synthetic fleet has unreachable hosts
    assert "CIS Docker Benchmark v1.7.0, Level 1 + 2" in dom and "<dd>1000</dd>" in dom
    hosts = dom[dom.index('id="hosts"') :]
    assert hosts.index(">paramiko://root@10.0.0.2<") < hosts.index(">paramiko://root@10.0.0.10<")
    row = re.search(r"<tr id=\"c1\.1\.5\">.*?</tr>", dom).group(0)  # 1.1.5 fails on 247 hosts, one click away
    assert '<td class="n fail"><details><summary>247</summary>' in row and 'href="#h1"' in row
    shot = tmp_path / "report.png"
    subprocess.run(
        [*chromium, f"--screenshot={shot}", "--window-size=1400,1000", fleet_report.as_uri()],
        capture_output=True,
        timeout=60,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000  # a blank page is ~6 KB


def test_host_detail_renders_on_click(fleet_report: Path, chromium: list[str]) -> None:
    """Opening a host (its #h anchor) renders every check of it with its evidence, lazily."""
    dom = subprocess.run(
        [*chromium, "--dump-dom", fleet_report.as_uri() + "#h1"], capture_output=True, text=True, timeout=60
    ).stdout
    detail = dom[dom.index('id="detail"') : dom.index('id="controls"')]
    assert "<h2>paramiko://root@10.0.0.2</h2>" in detail
    assert detail.count("<tr>") == 1 + 32
    assert "no rule for /usr/bin/tool5 with key 'docker'" in detail and "-w /usr/bin/tool5.old -p wa -k other" in detail
