"""The kernel self-tests start from a known /etc/audit, whatever earlier runs left there.

Each prior state is laid over a copy of this machine's /etc/audit on a tmpfs mounted in a private
mount namespace (the real /etc/audit is never touched), and the same tests run there with it. They
must pass in every state: before the kernel fixtures put the rules files in a known state
(selftests.kernel.known_etc_audit), the dry-run backout test failed where an audit.rules.prev equal
to audit.rules was left behind, and a rules.d file left by a remediation changed verdicts.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from selftests.suite_runner import REPO, require

pytestmark = pytest.mark.kernel

PRIOR_STATES = {
    "as-shipped": "true",
    "leftovers": " && ".join(
        [
            "cp -p audit.rules audit.rules.prev",  # augenrules run again with nothing changed
            "printf '%s\\n' '-w /etc/docker -p wa -k docker' >rules.d/60-cis-docker.rules",  # never backed out
            "printf '%s\\n' '-w /tmp/stale -k docker' >rules.d/50-cis-docker-selftest.rules",  # a killed self-test
            "printf '%s\\n' '-a never,task' >rules.d/zz-site.rules",
        ]
    ),
}
TESTS = [
    "selftests/integration/test_remediation_scripts.py::test_dry_runs_change_nothing",
    "selftests/integration/test_remediation_scripts.py::test_augenrules_apply_then_backout_restores_files_and_kernel",
    "selftests/integration/test_local_suite.py::test_benchmark_rules_pass_where_paths_exist",
]


@pytest.mark.parametrize("prior", PRIOR_STATES)
def test_kernel_tests_pass_whatever_etc_audit_held(prior: str, tmp_path: Path) -> None:
    require(os.geteuid() == 0, "needs root for a private mount namespace")
    require(shutil.which("unshare") is not None, "needs unshare (util-linux)")
    copy = tmp_path / "etc-audit"
    pytest_cmd = [sys.executable, "-m", "pytest", "-c", "selftests/pytest.ini", "-q", f"--basetemp={tmp_path / 't'}"]
    script = " && ".join(
        [
            f"cp -a /etc/audit/. {copy}/",
            "mount -t tmpfs -o mode=0750 cisaudit-etc-audit /etc/audit",
            f"cp -a {copy}/. /etc/audit/",
            f"cd /etc/audit && {PRIOR_STATES[prior]}",
            f"cd {shlex.quote(str(REPO))}",
            "exec " + shlex.join([*pytest_cmd, *TESTS]),
        ]
    )
    copy.mkdir()
    run = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
    )
    last = run.stdout.strip().splitlines()[-1:] or [""]
    assert run.returncode == 0 and last[0].startswith(f"{len(TESTS)} passed"), run.stdout[-4000:] + run.stderr[-2000:]
