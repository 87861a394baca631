""".ci/run with stand-ins for setup, lint and pytest: the VM session runs beside unit and
integration (not after them), each prints its --durations, and any failure fails the run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Stands in for .venv/bin/python: one pytest session, named by what it was asked to run.
FAKE_PYTHON = """#!/bin/sh
case "$*" in *selftests/e2e*) name=e2e ;; *) name=rest ;; esac
case "$*" in *--durations=25*) ;; *) echo "no --durations=25: $*"; exit 9 ;; esac
echo "start $name" >> "$CI_LOG"
if [ "$name" = e2e ]; then  # ends only once the other session started (or after 20 s)
    for _ in $(seq 200); do grep -q "start rest" "$CI_LOG" && break; sleep 0.1; done
fi
echo "end $name" >> "$CI_LOG"
echo "$name session output"
eval "exit \\${FAIL_$name:-0}"
"""


def run_ci(tmp_path: Path, **fail: int) -> tuple[int, str, list[str]]:
    root = tmp_path / "clone"
    (root / ".ci").mkdir(parents=True)
    shutil.copy(REPO / ".ci" / "run", root / ".ci" / "run")
    (root / "scripts").mkdir()
    (root / "scripts" / "setup.sh").write_text("exit 0\n")
    (root / "scripts" / "lint.sh").write_text('echo "start lint" >> "$CI_LOG"; exit "${FAIL_lint:-0}"\n')
    python = root / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    log = tmp_path / "order.log"
    env = {"PATH": "/usr/bin:/bin", "CI_LOG": str(log), "TMPDIR": str(tmp_path)}
    env |= {f"FAIL_{name}": str(code) for name, code in fail.items()}
    proc = subprocess.run(["sh", str(root / ".ci" / "run")], capture_output=True, text=True, env=env, timeout=60)
    order = log.read_text().splitlines() if log.exists() else []
    return proc.returncode, proc.stdout, order


def test_the_vm_session_runs_beside_unit_and_integration(tmp_path: Path) -> None:
    rc, out, order = run_ci(tmp_path)
    assert rc == 0, out
    assert order.index("start rest") < order.index("end e2e"), order  # overlapped, not one after the other
    assert out.index("rest session output") < out.index("e2e session output"), out
    assert not list(tmp_path.glob("cisaudit-ci-e2e.*")), "the e2e log is left behind"


@pytest.mark.parametrize("failing", ["e2e", "rest"])
def test_either_session_failing_fails_the_run_and_both_report(tmp_path: Path, failing: str) -> None:
    rc, out, order = run_ci(tmp_path, **{failing: 1})
    assert rc != 0
    assert "rest session output" in out and "e2e session output" in out, out
    assert {"end e2e", "end rest"} <= set(order), order


def test_a_lint_failure_fails_before_the_host_tests(tmp_path: Path) -> None:
    rc, out, order = run_ci(tmp_path, lint=1)
    assert rc != 0
    assert "start rest" not in order and "rest session output" not in out, (order, out)
