"""--audit-key on the real suite (local://): several keys, `any`, and every output saying which."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cisaudit.outputs.results_json import records
from selftests.kernel import KernelSandbox
from selftests.suite_runner import run_pytest, run_suite

HOST = "local://"


@pytest.mark.kernel
@pytest.mark.parametrize(
    ("args", "mode", "verdict"),
    [
        ((), "docker", "fail"),
        (("--audit-key=docker", "--audit-key=cis-etc"), "docker,cis-etc", "pass"),
        (("--audit-key=docker,cis-etc",), "docker,cis-etc", "pass"),
        (("--audit-key=any",), "any", "pass"),
    ],
    ids=["default", "repeated", "comma", "any"],
)
def test_audit_key_modes(kernel: KernelSandbox, tmp_path: Path, args: tuple[str, ...], mode: str, verdict: str) -> None:
    kernel.make_path("/etc/docker", "dir")
    kernel.kernel("-w /etc/docker -p rwxa -k cis-etc")
    run = run_suite(tmp_path, [HOST], "--controls=1.1.6", *args)
    live = run.case(HOST, "1.1.6", "live")
    assert (live.verdict, live.audit_keys) == (verdict, mode), live.summary
    record = next(
        r
        for r in records(json.loads((tmp_path / "results.json").read_text()))
        if (r["control_id"], r["check"]) == ("1.1.6", "live")
    )
    assert record["audit_keys"] == mode
    assert f"audit keys: {mode} (" in run.output


@pytest.mark.kernel
@pytest.mark.parametrize("keys", ["any", "docker,cis-etc"])
def test_verify_events_with_several_keys_or_any(kernel: KernelSandbox, tmp_path: Path, keys: str) -> None:
    """The events check finds the accesses recorded with another accepted key, or with any key."""
    kernel.make_path("/etc/docker", "dir")
    kernel.kernel("-w /etc/docker -p rwxa -k cis-etc")
    run = run_suite(tmp_path, [HOST], "--controls=1.1.6", f"--audit-key={keys}", "--verify-events")
    events = run.case(HOST, "1.1.6", "events")
    assert events.verdict == "pass", events.summary + "\n" + events.evidence


@pytest.mark.parametrize("value", ["any,docker", "docker,,x", ""])
def test_bad_audit_key_is_a_usage_error(value: str) -> None:
    proc = run_pytest(f"--audit-key={value}", "--collect-only", "-q")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "--audit-key" in proc.stderr and "Traceback" not in proc.stderr
