"""results.json read back (outputs/results_read.py), as the merge reads each shard: written again,
it is the same file; each record carries its host's facts and commands."""

from __future__ import annotations

import json
from pathlib import Path

from cisaudit.model.catalogue import benchmark
from cisaudit.model.verdict import Check, Status
from cisaudit.outputs.record import HOST_CONTROL, CaseRecord
from cisaudit.outputs.results import RunInfo, RunResults
from cisaudit.outputs.results_json import render_json
from cisaudit.outputs.results_read import read_results

T = 1_700_000_000.0


def _run() -> RunResults:
    cases = []
    for n, host in enumerate(["ssm://i-2", "ssm://i-10", "ssm://i-1"]):
        cases += [
            CaseRecord(host, HOST_CONTROL, Check.AUDITD_RUNNING, Status.PASS, "running", started=T, finished=T + n),
            CaseRecord(host, "1.1.3", Check.LIVE, Status.FAIL, "no rule", "a\nb", started=T, finished=T + 1),
            CaseRecord(host, "1.1.3", Check.PERSISTED, Status.FAIL, "no rule", waiver="accepted", started=T),
            CaseRecord(host, "1.1.4", Check.LIVE, Status.ERROR, f"{host}: probe failed", started=T, finished=T),
        ]
    info = RunInfo("pytest --shard=1/2", "audit", False, T, T + 9, "1", "abc", benchmark=benchmark("1.7.0"))
    facts = {"ssm://i-2": {"kernel": "6.1"}, "ssm://i-10": {"kernel": "6.2"}}
    return RunResults(info, cases, facts, {"ssm://i-2": 3, "ssm://i-10": 4, "ssm://i-1": 5})


def test_a_results_file_read_back_writes_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(render_json(_run()))
    again = read_results(path)
    assert render_json(again) == path.read_text()
    facts = {(c.host, c.check): (json.loads(c.host_facts) if c.host_facts else None) for c in again.cases}
    assert facts[("ssm://i-10", Check.AUDITD_RUNNING)] == {"kernel": "6.2"}
    assert facts[("ssm://i-10", Check.LIVE)] is None and facts[("ssm://i-1", Check.AUDITD_RUNNING)] is None
    assert {c.host: c.remote_commands for c in again.cases} == {"ssm://i-2": 3, "ssm://i-10": 4, "ssm://i-1": 5}
