""".ci/run with stand-ins for setup, lint and pytest: the two VM sessions (the scenario pass and
the other VM tests) run beside each other and beside unit and integration (not after them), each
prints its --durations, and any failure fails the run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Stands in for .venv/bin/python: one pytest session, named by what it was asked to run.
FAKE_PYTHON = """#!/bin/sh
case "$*" in
    *"-m not scenario_pass selftests/e2e"*) name=vms ;;
    *"-m scenario_pass selftests/e2e"*) name=pass ;;
    *selftests/e2e*) name=e2e ;;  # all VM tests in one session: not what CI runs
    *) name=rest ;;
esac
case "$*" in *--durations=25*) ;; *) echo "no --durations=25: $*"; exit 9 ;; esac
echo "start $name" >> "$CI_LOG"
if [ "$name" != rest ]; then  # ends only once the other sessions started (or after 20 s)
    for _ in $(seq 200); do
        [ "$(grep -c -e "start rest" -e "start pass" -e "start vms" "$CI_LOG")" -ge 3 ] && break
        sleep 0.1
    done
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


def test_the_vm_sessions_run_beside_each_other_and_unit_and_integration(tmp_path: Path) -> None:
    rc, out, order = run_ci(tmp_path)
    assert rc == 0, out
    assert "start e2e" not in order, order
    for vms in ("pass", "vms"):  # overlapped, not one after the other
        assert max(order.index(f"start {other}") for other in ("rest", "pass", "vms")) < order.index(f"end {vms}")
        assert out.index("rest session output") < out.index(f"{vms} session output"), out
    assert not list(tmp_path.glob("cisaudit-ci-e2e.*")), "an e2e log is left behind"


@pytest.mark.parametrize("failing", ["pass", "vms", "rest"])
def test_any_session_failing_fails_the_run_and_all_report(tmp_path: Path, failing: str) -> None:
    rc, out, order = run_ci(tmp_path, **{failing: 1})
    assert rc != 0
    assert all(f"{name} session output" in out for name in ("rest", "pass", "vms")), out
    assert {"end pass", "end vms", "end rest"} <= set(order), order


def test_a_lint_failure_fails_before_the_host_tests(tmp_path: Path) -> None:
    rc, out, order = run_ci(tmp_path, lint=1)
    assert rc != 0
    assert "start rest" not in order and "rest session output" not in out, (order, out)


def collected(*args: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", "selftests/pytest.ini", "--collect-only", "-q", *args, "selftests/e2e"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode in (0, 5), proc.stdout + proc.stderr  # 5: nothing selected
    return {line for line in proc.stdout.splitlines() if "::" in line}


def test_the_two_vm_sessions_split_the_vm_tests_between_them() -> None:
    """-m scenario_pass takes exactly the tests that read the scenario pass (so it is built once,
    in one session), and the two sessions together run every VM test once."""
    everything = collected()
    walks, others = collected("-m", "scenario_pass"), collected("-m", "not scenario_pass")
    assert walks == {
        "e2e/test_remediation_fleet.py::test_remediate_and_backout_every_state",
        "e2e/test_scenarios.py::test_every_scenario_gives_its_verdicts_in_parallel_and_serially",
        "e2e/test_ssm_fleet.py::test_ssm_gives_the_ssh_verdicts_and_remediates",
    }
    assert not walks & others and walks | others == everything
