"""Every host-side script, as the suite renders and sends it, passes `shellcheck -s sh`
(POSIX sh: hosts may have dash or busybox). Files on disk are checked by scripts/lint.sh."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cisaudit.host import events, probe, remediation_io
from cisaudit.host.ssm import frame
from cisaudit.model.catalogue import benchmark, controls
from cisaudit.model.decisions import Accesses
from selftests.suite_runner import require

RENDERED = {
    "probe": lambda: probe.render_probe(controls("1.7.0"), ["/srv/x y"])[0],
    "probe-stat": lambda: probe.render_stat_script(["/etc/docker", "/a b"])[0],
    "apply": lambda: remediation_io.render_apply(
        "20261202T000000Z-abcdef",
        "augenrules",
        "/etc/audit/rules.d/50-cisaudit-docker.rules",
        ["-w /etc/docker -k docker"],
        False,
        benchmark("1.8.0"),
        tmpfiles=["d /run/containerd 0711 root root -"],
    ),
    "backout": lambda: remediation_io.render_backout(None, False),
    "events": lambda: events.render_script([Accesses("/etc/docker", "rwa", True)], "docker"),
    "ssm-wrapper": lambda: frame.wrapper_script("auditctl -l", "n0nce"),
    "ssm-fetch": lambda: frame.fetch_script("/tmp/cisaudit-ssm.AbCdEf12", "n0nce", 1, True),
}


@pytest.mark.parametrize("name", RENDERED)
def test_rendered_script_passes_shellcheck(name: str, tmp_path: Path) -> None:
    require(shutil.which("shellcheck") is not None, "needs shellcheck (apt-get install shellcheck)")
    script = tmp_path / f"{name}.sh"
    script.write_text(RENDERED[name]())
    proc = subprocess.run(
        ["shellcheck", "-s", "sh", "-S", "warning", "-f", "gcc", str(script)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout
