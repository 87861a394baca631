"""The self-tests that read this machine's paths, run again as on a machine with docker.io, containerd
and runc installed (selftests/docker_root.py), so they hold with Docker and without it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from selftests import docker_root
from selftests.suite_runner import require

pytestmark = pytest.mark.kernel
# Every self-test that looks at this machine's own Docker paths or rules files.
PATH_DEPENDENT = [
    "selftests/unit",
    "selftests/integration/test_local_suite.py",
    "selftests/integration/test_outputs_suite.py",
    "selftests/integration/test_remediation_scripts.py",
]


def test_self_tests_pass_with_docker_installed(tmp_path: Path) -> None:
    require(docker_root.available(), "needs Docker's files unpacked: sh scripts/setup.sh --test")
    probe = docker_root.run_with_docker(
        ["sh", "-c", "ls /usr/sbin/dockerd /lib/systemd/system/docker.service /etc/containerd/config.toml"],
        tmp_path / "probe",
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    run = docker_root.run_with_docker(
        [sys.executable, "-m", "pytest", "-c", "selftests/pytest.ini", "-q", "-p", "no:randomly", *PATH_DEPENDENT],
        tmp_path / "run",
        timeout=1500,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "skipped" not in run.stdout.splitlines()[-1], run.stdout[-2000:]
