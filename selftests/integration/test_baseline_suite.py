"""--baseline and --fail-on on this machine's kernel (issue 25 item 4): two runs with a change between
them, the delta in results.json and the terminal, the exit code under both --fail-on values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cisaudit.outputs.results_json import records
from selftests.kernel import KernelSandbox
from selftests.suite_runner import SuiteRun, run_suite

pytestmark = pytest.mark.kernel
HOST = "local://"
RULE = "-w /etc/docker -p rwxa -k docker\n"


def _run(tmp_path: Path, name: str, *args: str) -> tuple[SuiteRun, dict]:
    (tmp_path / name).mkdir()
    run = run_suite(tmp_path / name, [HOST], "--controls=1.1.6", *args)
    return run, json.loads((tmp_path / name / "results.json").read_text())


def _classes(document: dict) -> dict[tuple[str, str], str]:
    return {(r["control_id"], r["check"]): r["delta"] for r in records(document)}


def test_fail_on_new_passes_a_run_whose_failures_the_baseline_had(kernel: KernelSandbox, tmp_path: Path) -> None:
    kernel.make_path("/etc/docker", "dir")
    kernel.write_rules_d("60-cis-docker.rules", RULE)
    assert kernel.load().returncode == 0
    first, _ = _run(tmp_path, "a")
    assert first.verdict(HOST, "1.1.6", "live") == first.verdict(HOST, "1.1.6", "persisted") == "pass"
    baseline = f"--baseline={tmp_path / 'a' / 'results.json'}"

    kernel.write_rules_d("60-cis-docker.rules", "# the rule was dropped from the boot's rules\n")
    for fail_on in ("any", "new"):  # the next boot loses the rule: a new failure under both
        run, document = _run(tmp_path, f"b-{fail_on}", baseline, f"--fail-on={fail_on}")
        assert run.verdict(HOST, "1.1.6", "persisted") == "fail", run.output[-3000:]
        assert _classes(document)[("1.1.6", "persisted")] == "regresses at next boot"
        assert _classes(document)[("1.1.6", "live")] == "unchanged"
        assert "regresses at next boot: 1" in run.output and "Changes since" in run.output
        assert run.returncode == 1, run.output[-3000:]
    html = (tmp_path / "b-new" / "compliance.html").read_text()
    assert html.index("id='changes'") < html.index("id='controls'")

    again = f"--baseline={tmp_path / 'b-new' / 'results.json'}"  # nothing changed since
    run, document = _run(tmp_path, "c-any", again, "--fail-on=any")
    assert _classes(document)[("1.1.6", "persisted")] == "still failing"
    assert run.returncode == 1, run.output[-3000:]
    run, document = _run(tmp_path, "c-new", again, "--fail-on=new")
    new = {k: v for k, v in _classes(document).items() if v in ("new failure", "waiver expired", "new host")}
    assert run.returncode == (1 if new else 0), (new, run.output[-3000:])
    assert not new, new  # the same host and rules: only the persisted failure, still failing
