"""The real suite over `docker://` (cisaudit/host/hostspec.py TRANSPORTS), without Docker: a
stand-in `docker` client runs `docker exec web sh -c ...` on this machine, which is what a
container started with `--pid=host --privileged` sees of the kernel. Read-only: nothing is changed.

Inside a container the kernel's rules are the host's and the files are the container's, so every
check that reads files is an error that says why, and the kernel's checks are judged. A test
against a real container needs Docker on the runner, an image with auditd's userspace (auditctl,
ausyscall) and `docker run -d --pid=host --cap-add AUDIT_CONTROL --name web IMAGE sleep infinity`;
the verdicts it must give are the ones asserted here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cisaudit.host.hostspec import TRANSPORTS
from cisaudit.model.evaluate import READS_HOST_FILES
from cisaudit.model.verdict import Check, Status
from selftests.suite_runner import REPO, require, run_suite

HOST = "docker://web"


def _fake_docker(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "docker"
    fake.write_text('#!/bin/sh\n[ "$1 $2" = "exec web" ] || exit 99\nshift 2\nexec "$@"\n')
    fake.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def test_a_container_s_file_checks_say_why_they_are_not_judged(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "auditctl -l needs root")
    run = run_suite(tmp_path, [HOST], "--verify-events", env=_fake_docker(tmp_path))
    refused = f"not checked: {TRANSPORTS['docker'].blind}"
    assert run.cases, run.output[-2000:]
    for (_, control, check), case in run.cases.items():
        if check in READS_HOST_FILES:
            assert (case.verdict, case.summary) == (Status.ERROR, refused), (control, check)
        else:
            assert not case.summary.startswith("not checked"), (control, check, case.summary)
    judged = {check for (_, _, check) in run.cases if check not in READS_HOST_FILES}
    assert judged == {Check.LIVE, Check.AUDIT_ENABLED, Check.AUDITD_RUNNING}


def test_remediating_a_container_is_a_usage_error(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "pytest", f"--hosts={HOST}", "--remediate"]
    env = {**os.environ, **_fake_docker(tmp_path)}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 4
    assert proc.stderr.startswith(f"ERROR: --remediate: {HOST} cannot be changed through its transport")
    assert "Traceback" not in proc.stdout + proc.stderr
