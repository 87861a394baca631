"""--reboot-proof: the pure comparison (cisaudit/model/reboot_proof.py), the option rules
(cisaudit/plugin/options.py) and the host half's wait and reboot command (cisaudit/host/reboot.py)
on a fake session."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import pytest

from cisaudit.host.hostspec import RebootHow
from cisaudit.host.reboot import how_for, render_reboot, send_reboot, wait_for_new_boot
from cisaudit.host.shell import assignments, piece
from cisaudit.host.transport import HostError
from cisaudit.model.catalogue import benchmark
from cisaudit.model.reboot_proof import Proof, proof_verdict
from cisaudit.model.verdict import Check, Status, Verdict
from cisaudit.outputs.record import CaseRecord
from cisaudit.outputs.results import RunInfo, RunResults
from cisaudit.outputs.results_json import records, render_json
from cisaudit.outputs.status import XCCDF_RESULT, control_result
from cisaudit.plugin import options
from cisaudit.plugin.options import OptionError, RebootProof

OLD = "0b6b3b4c-1e0e-4a55-9a43-6c0b4d9c6f01"
NEW = "7f1e2d3c-4b5a-4968-8776-655443322110"
PASS, FAIL, NA = Verdict(Status.PASS, "rule"), Verdict(Status.FAIL, "no rule"), Verdict(Status.NOT_APPLICABLE, "absent")


def proof(before: Verdict, after: Verdict, boot_after: str = NEW) -> Proof:
    return Proof(OLD, boot_after, before, after)


@pytest.mark.parametrize(
    ("before", "after", "status"),
    [(PASS, PASS, Status.PASS), (FAIL, FAIL, Status.PASS), (NA, NA, Status.NOT_APPLICABLE)],
)
def test_a_prediction_the_boot_kept_agrees(before: Verdict, after: Verdict, status: Status) -> None:
    p = proof(before, after)
    assert p.agree and proof_verdict(p).status == status
    assert p.fields() == {
        "boot_id_before": OLD,
        "boot_id_after": NEW,
        "persisted_before": str(before.status),
        "live_after": str(after.status),
        "agree": True,
    }


@pytest.mark.parametrize("after", [FAIL, NA])
def test_a_persisted_pass_not_live_after_the_boot_fails_with_both_verdicts(after: Verdict) -> None:
    p = proof(PASS, after)
    verdict = proof_verdict(p)
    assert not p.agree and verdict.status == Status.FAIL
    assert "persisted PASS before the boot is not live after it" in verdict.summary
    assert f"persisted before the boot ({OLD}): pass: rule" in verdict.evidence
    assert f"live after the boot ({NEW}): {after.status}: {after.summary}" in verdict.evidence
    assert json.loads(p.encoded())["agree"] is False


def test_a_persisted_fail_that_the_boot_made_live_is_a_wrong_prediction_too() -> None:
    verdict = proof_verdict(proof(FAIL, PASS))
    assert verdict.status == Status.FAIL and "the prediction was wrong" in verdict.summary


@pytest.mark.parametrize("boot_after", [OLD, "", "not-a-boot"])
def test_no_new_boot_id_proves_nothing(boot_after: str) -> None:
    p = Proof(OLD, boot_after, PASS, PASS) if boot_after != "not-a-boot" else Proof("", NEW, PASS, PASS)
    assert not p.agree and proof_verdict(p).status == Status.ERROR


@pytest.mark.parametrize("broken", [Verdict(Status.ERROR, "x"), Verdict(Status.WAIVED, "x")])
def test_a_verdict_that_is_not_a_model_verdict_proves_nothing(broken: Verdict) -> None:
    assert proof_verdict(proof(PASS, broken)).status == Status.ERROR
    assert proof_verdict(proof(broken, PASS)).status == Status.ERROR


def given(reboot: bool = True, may: bool = False, require_all: bool = False, dry_run: bool = False) -> RebootProof:
    return RebootProof(reboot, may, require_all, dry_run)


@pytest.mark.parametrize(
    ("options_given", "hosts", "says"),
    [
        (given(), ["ssh://web1"], "add --require-all (golden image) or --i-may-reboot"),
        (given(reboot=False, may=True), ["ssh://web1"], "--i-may-reboot only permits --reboot-proof"),
        (given(require_all=True, dry_run=True), ["ssh://web1"], "--dry-run changes nothing"),
        (given(may=True), ["ssh://web1", "local://"], "cannot reboot local://, the machine running the suite"),
    ],
)
def test_reboot_proof_needs_permission_and_a_remote_host(
    options_given: RebootProof, hosts: list[str], says: str
) -> None:
    with pytest.raises(OptionError) as info:
        options.check_reboot_proof(options_given, hosts)
    assert says in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "options_given", [given(require_all=True), given(may=True), given(reboot=False), given(reboot=False, dry_run=True)]
)
def test_reboot_proof_permitted(options_given: RebootProof) -> None:
    options.check_reboot_proof(options_given, ["ssh://web1", "paramiko://web2", "ssm://i-0123456789abcdef0", "web3"])


def test_each_transport_reboots_its_own_way() -> None:
    assert how_for("ssh://root@web1") == how_for("paramiko://web1") == how_for("web1") == RebootHow.SYSTEMCTL
    assert how_for("ssm://i-0123456789abcdef0") == RebootHow.EXIT_194
    with pytest.raises(HostError):
        how_for("local://")
    script = render_reboot(OLD, RebootHow.EXIT_194)
    assert f"RB_BEFORE={OLD}\nRB_HOW=exit194\n" in script and "exit 194" in script


@dataclass
class FakeHost:
    """A session whose host answers the boot-id read with the next of `boots` (None: down)."""

    spec: str
    boots: list[str | None]
    reboot: object = None
    sent: list[str] = field(default_factory=list)
    unframed: list[str] = field(default_factory=list)

    def run(self, command: str, *, check_ok: bool = False) -> tuple[int, str, str]:
        if "RB_HOW=" in command:
            self.sent.append(command)
            raise HostError("connection lost")  # the host went down under the reboot command
        answer = self.boots.pop(0) if self.boots else None
        if answer is None:
            raise HostError("timed out")
        return 0, answer + "\n", ""

    def send_unframed(self, script: str) -> None:
        self.unframed.append(script)

    def drop_connection(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_wait_ends_at_the_first_new_boot_id() -> None:
    host, clock = FakeHost("ssh://web1", [OLD, None, None, NEW]), Clock()
    send_reboot(host, OLD)  # type: ignore[arg-type]
    assert len(host.sent) == 1 and not host.unframed  # a lost connection under the reboot is no error
    assert wait_for_new_boot(host, OLD, 60, clock, clock.sleep) == NEW  # type: ignore[arg-type]
    assert clock.now == 12


def test_a_host_that_never_comes_back_is_its_error_after_the_timeout() -> None:
    host, clock = FakeHost("ssh://web1", [OLD] * 100), Clock()
    with pytest.raises(HostError, match="did not answer with a new boot id within 10 s"):
        wait_for_new_boot(host, OLD, 10, clock, clock.sleep)  # type: ignore[arg-type]
    assert clock.now < 15


def test_ssm_sends_the_reboot_unframed() -> None:
    host = FakeHost("ssm://i-0123456789abcdef0", [])
    send_reboot(host, OLD)  # type: ignore[arg-type]
    assert not host.sent and len(host.unframed) == 1 and "RB_HOW=exit194" in host.unframed[0]


def test_every_output_carries_the_proof_and_a_broken_one_fails_the_rule() -> None:
    """results.json (schema 1.3) carries the proof's fields; XCCDF fails the control's rule."""
    broken = Proof(OLD, NEW, PASS, FAIL)
    host = "ssh://root@web1"
    cases = [
        CaseRecord(host, "1.1.6", Check.LIVE, Status.FAIL, summary="no rule", started=1.8e9, finished=1.8e9),
        CaseRecord(host, "1.1.6", Check.PERSISTED, Status.PASS, summary="rule", started=1.8e9, finished=1.8e9),
        CaseRecord(
            host,
            "1.1.6",
            Check.REBOOT_PROOF,
            proof_verdict(broken).status,
            summary=proof_verdict(broken).summary,
            reboot_proof=broken.encoded(),
            started=1.8e9,
            finished=1.8e9,
        ),
    ]
    assert CaseRecord.from_properties(cases[2].properties()).reboot_proof == broken.encoded()
    run = RunResults(
        RunInfo("pytest --reboot-proof", "audit", True, 1.8e9, 1.8e9, "0.1.0", "abc", benchmark=benchmark("1.7.0")),
        cases,
        {},
        {},
    )
    document = json.loads(render_json(run))
    schema = json.loads((Path(__file__).resolve().parents[2] / "docs" / "results.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(document)
    (record,) = [r for r in records(document) if r["check"] == "reboot-proof"]
    assert record["reboot_proof"] == broken.fields() and record["verdict"] == "fail"
    assert XCCDF_RESULT[control_result(cases)] == "fail"


def _script(tmp_path: Path, before: str, how: str) -> tuple[int, str, bool]:
    """Run reboot.sh here with a fake systemctl first on PATH (it only records that it ran). Never
    with this machine's boot id and `systemctl`: a PATH change must not reboot the test machine."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "systemctl").write_text(f'#!/bin/sh\necho "$*" > {tmp_path}/systemctl-called\n')
    (fake / "systemctl").chmod(0o755)
    script = assignments({"RB_BEFORE": before, "RB_HOW": how}) + piece("reboot.sh")
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, timeout=30)
    return proc.returncode, proc.stdout + proc.stderr, (tmp_path / "systemctl-called").exists()


def test_the_reboot_script_asks_once_and_only_in_the_boot_it_was_sent_for(tmp_path: Path) -> None:
    now = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert _script(tmp_path, now, "exit194")[0] == 194  # the SSM agent's reboot request
    rc, out, called = _script(tmp_path, OLD, "systemctl")  # e.g. the agent's re-run after the boot
    assert (rc, called) == (0, False) and f"booted {now}" in out
    rc, out, _ = _script(tmp_path, now, "halt")
    assert rc == 2 and "unknown way to reboot" in out
