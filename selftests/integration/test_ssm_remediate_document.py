"""The SSM remediate document in remediation/ run by the SSM emulator on this machine's kernel:
aws:downloadContent brings the zipapp (host/ssm/bundle.py) from an S3 store, the shell step
checks its sha256 and runs it, and it makes the same plan, writes the same files and loads the
same rules as the suite's own `--remediate`; `--ssm-document-results` judges what it left with
the suite's verdicts, and the audit document's backout restores files and kernel exactly; a
forged bundle does not run, and a change apply.sh refuses is the host's error when read back."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from cisaudit.host.ssm import frame
from cisaudit.host.ssm.bundle import build_bundle
from cisaudit.host.ssm.document import nonces, parse_header
from cisaudit.host.ssm.remediate_document import BUNDLE_DIR
from selftests.kernel import AUDIT_DIR, KernelSandbox, sh
from selftests.s3_store import MotoS3
from selftests.ssm_emulator import SsmEmulator
from selftests.suite_runner import REPO, run_suite

pytestmark = pytest.mark.kernel
ID = "i-00000000000000007"
HOST = f"ssm://{ID}"
CONTROLS = "1.1.4,1.1.6,1.1.10"
URL = "https://s3.us-east-1.amazonaws.com/cisaudit-bundles/v1/cisaudit.pyz"
DOCUMENTS = {
    name: json.loads((REPO / "remediation" / f"{name}.ssm.json").read_text())
    for name in ("cisaudit-docker", "cisaudit-docker-remediate")
}


def _send(emu: SsmEmulator, document: str, parameters: dict[str, list[str]]) -> tuple[str, Any]:
    ssm: Any = boto3.client("ssm", endpoint_url=emu.endpoint_url, **_AWS)
    sent = ssm.send_command(InstanceIds=[ID], DocumentName=document, Parameters=parameters)
    command_id = str(sent["Command"]["CommandId"])
    deadline = time.monotonic() + 300
    while (inv := emu.commands[command_id][ID]).status not in ("Success", "Failed"):
        assert time.monotonic() < deadline, "the document run did not end"
        time.sleep(0.2)
    return command_id, inv


_AWS = {"region_name": "us-east-1", "aws_access_key_id": "emulator", "aws_secret_access_key": "emulator"}


def _files(run_id: str) -> dict[str, str]:
    """/etc/audit's files, each with the run's id and times taken out (the two runs' differ)."""

    def text(path: Path) -> str:
        return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "TIME", path.read_text().replace(run_id, "RUN"))

    return {str(p): text(p) for p in sorted(AUDIT_DIR.rglob("*")) if p.is_file()}


def _listing() -> list[str]:
    return sh("auditctl -l").stdout.splitlines()


def _plan_lines(stdout: str) -> list[str]:
    return [line.removeprefix("cisaudit-plan-rule: ") for line in stdout.splitlines() if "cisaudit-plan-rule: " in line]


def _unframed(stdout: str, sent_run_id: str) -> str:
    header = frame.read_result(stdout, nonces(sent_run_id)[1])
    assert header.size == len(header.first), "the frame did not fit in one response"
    return frame.decode(header.first, header.sha256, 10 << 20)[1].decode()


def _suite_run_id(summary: str) -> str:
    match = re.search(r"\d{8}T\d{6}Z-[0-9a-f]{6}", summary)
    assert match, summary
    return match.group(0)


def test_the_documents_remediate_is_the_suites(kernel: KernelSandbox, tmp_path: Path) -> None:
    for path, kind in (("/run/containerd", "dir"), ("/etc/docker", "dir"), ("/etc/default/docker", "file")):
        kernel.make_path(path, kind)
    kernel.write_rules_d("60-cis.rules", "-a exit,always -F path=/run/containerd -F perm=war -k docker\n")
    kernel.load()
    files_before, kernel_before = _files("-"), _listing()
    bundle = build_bundle()
    with (
        MotoS3("cisaudit-bundles") as s3,
        SsmEmulator({ID: "local://"}, s3_endpoint=s3.endpoint_url, documents=DOCUMENTS) as emu,
    ):
        s3.client().put_object(Bucket="cisaudit-bundles", Key="v1/cisaudit.pyz", Body=bundle)
        base = [f"--controls={CONTROLS}", "--ssm-region=us-east-1"]
        own = run_suite(tmp_path / "own", [HOST], *base, "--remediate", env=emu.environ)
        remediation = own.case(HOST, "host", "remediation")
        assert remediation.verdict == "pass", own.output[-3000:]
        own_files, own_kernel = _files(_suite_run_id(remediation.summary + remediation.evidence)), _listing()
        assert (
            run_suite(tmp_path / "undo", [HOST], *base, "--backout", env=emu.environ).verdict(HOST, "host", "backout")
            == "pass"
        )
        assert _files("-") == files_before and _listing() == kernel_before

        # as a State Manager association sends it: no runId (each instance makes its own)
        parameters = {"controls": [CONTROLS], "bundleUrl": [URL]}
        sha = hashlib.sha256(bundle).hexdigest()
        command_id, inv = _send(emu, "cisaudit-docker-remediate", parameters | {"bundleSha256": [sha]})
        assert inv.status == "Success", inv.stderr
        header = parse_header(inv.stdout)
        assert header is not None and header.sent == "", inv.stdout[:300]
        run_id = header.run_id
        doc_files, doc_kernel = _files(run_id), _listing()
        read = run_suite(tmp_path / "doc", [HOST], *base, f"--ssm-document-results={command_id}", env=emu.environ)
        plan = _plan_lines(_unframed(inv.stdout, ""))
        _, backout = _send(emu, "cisaudit-docker", {"action": ["backout"], "runId": [run_id]})
        restored_files, restored_kernel = _files("-"), _listing()
        _, forged = _send(emu, "cisaudit-docker-remediate", parameters | {"bundleSha256": ["0" * 64]})
        # a run id is used once per host: apply.sh refuses it, and the suite says so, not a verdict
        again, _ = _send(emu, "cisaudit-docker-remediate", parameters | {"bundleSha256": [sha], "runId": [run_id]})
        refused = run_suite(tmp_path / "again", [HOST], *base, f"--ssm-document-results={again}", env=emu.environ)
        unchanged = _files("-") == files_before and _listing() == kernel_before
    shutil.rmtree(BUNDLE_DIR, ignore_errors=True)
    assert doc_files == own_files and doc_kernel == own_kernel  # the same rules, files and kernel
    assert plan and all(f": {rule}" in remediation.summary for rule in plan), (plan, remediation.summary)
    assert len(plan) == len(re.findall(r"1\.1\.\d+: -", remediation.summary.split("; placed first")[0]))
    assert read.verdicts() == {k: v for k, v in own.verdicts().items() if k != ("host", "remediation")}
    assert read.verdict(HOST, "1.1.6", "live") == "pass" and read.verdict(HOST, "1.1.10", "persisted") == "pass"
    assert backout.status == "Success" and restored_files == files_before and restored_kernel == kernel_before
    assert forged.status == "Failed" and "sha256 is not bundleSha256" in forged.stderr, forged.stderr
    case = refused.case(HOST, "1.1.6", "live")
    assert case.verdict == "error" and "remediation failed" in case.summary and "already used" in case.summary, case
    assert unchanged
