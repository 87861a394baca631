"""The SSM Command document in remediation/ (schema 2.2), built from the scripts the suite sends,
and the reader of its output (`--ssm-document-results`).

The document runs, on an instance, without this runner: action `audit` runs the probe
(probe.PROBE_PIECES with the benchmark version's values, host/probe.py probe_values);
`backout` runs backout.sh (common.sh) for the run id. Its output is one header line
(`cisaudit-document: ...`) and the frame ssm-wrapper.sh prints, as for every SSM command.
The second document, remediation/cisaudit-docker-remediate.ssm.json, runs `action=remediate`:
aws:downloadContent fetches the zipapp of this package (host/ssm/bundle.py) from S3, the shell
step checks it against the bundleSha256 parameter, and host/ssm/onhost.py plans from the probe
with the suite's own model, applies under the host lock and probes again (README "AWS" says why
two documents). Regenerate after a script changes: `python -m cisaudit.host.ssm.document --write
remediation` (selftests/unit/test_ssm_document.py fails while a committed file differs).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from typing import Any

from cisaudit.host.shell import assignments, compose, joined
from cisaudit.model.catalogue import DEFAULT_KEY, DEFAULT_VERSION, VERSIONS, controls

ACTIONS = ("audit", "backout")
DOCUMENT_FILE = "cisaudit-docker.ssm.json"
HEADER = re.compile(
    r"^cisaudit-document: action=(?P<action>\S+) benchmark=(?P<benchmark>\S*) key=(?P<key>\S*)"
    r" run-id=(?P<run_id>\S+) sent-run-id=(?P<sent>\S*)$",
    re.M,
)
RUN_ID_PATTERN = "^[A-Za-z0-9._:-]{0,64}$"
KEY_PATTERN = "^[A-Za-z0-9_-]{1,31}$"
PARAMETERS: dict[str, tuple[str, dict[str, object]]] = {
    "action": ("CISAUDIT_DOC_ACTION", {"type": "String", "allowedValues": list(ACTIONS), "default": "audit"}),
    "benchmark": (
        "CISAUDIT_DOC_BENCHMARK",
        {"type": "String", "allowedValues": list(VERSIONS), "default": DEFAULT_VERSION},
    ),
    "auditKey": ("CISAUDIT_DOC_KEY", {"type": "String", "allowedPattern": KEY_PATTERN, "default": DEFAULT_KEY}),
    "runId": ("CISAUDIT_DOC_RUN_ID", {"type": "String", "allowedPattern": RUN_ID_PATTERN, "default": ""}),
}
_DESCRIPTIONS = {
    "action": "audit: run the cisaudit probe; backout: undo a cisaudit remediation (runId; empty: the latest)",
    "benchmark": "CIS Docker Benchmark version whose controls the probe looks at",
    "auditKey": "the audit key the rules must give (the suite judges with it)",
    "runId": "names this run (and the remediation to back out); empty: made on the instance",
}


@dataclass(frozen=True)
class Header:
    action: str
    benchmark: str
    key: str
    run_id: str  # this instance's (the runId parameter, or made on the instance when it was empty)
    sent: str  # the runId parameter as sent, the same on every instance: the nonces come from it


def nonces(run_id: str) -> tuple[str, str]:
    """(probe's public marker, frame nonce) from the runId sent, as ssm-runid.sh makes them."""
    digest = hashlib.sha256(run_id.encode()).hexdigest()
    return "@@cisaudit-" + digest[:16], digest[16:48]


def script_values() -> dict[str, str]:
    """What the document's script is made of: every version's probe values, the scripts whole."""
    from cisaudit.host.probe import PROBE_PIECES, probe_values
    from cisaudit.host.ssm import frame

    values = {"CISAUDIT_FRAME_MAGIC": frame.MAGIC, "CISAUDIT_FRAME_CHUNK": str(frame.CHUNK)}
    per_version = {version: assignments(probe_values(controls(version))) for version in VERSIONS}
    # The assignments all versions share, once (64 KB): a version's are COMMON followed by its own.
    common = os.path.commonprefix(list(per_version.values()))
    common = common[: common.rfind("\n") + 1]
    values["CISAUDIT_DOC_VALUES_COMMON"] = common
    for version, text in per_version.items():
        values["CISAUDIT_DOC_VALUES_" + version.replace(".", "_")] = text[len(common) :]
    values["CISAUDIT_DOC_PROBE"] = joined(("preamble.sh", *PROBE_PIECES), terse=True)
    values["CISAUDIT_DOC_BACKOUT"] = joined(("preamble.sh", "common.sh", "backout.sh"), terse=True)
    return values


def parameter_lines() -> str:
    """The document's parameters as shell assignments (each value checked by its pattern first)."""
    return "".join(f"{var}='{{{{ {name} }}}}'\n" for name, (var, _) in PARAMETERS.items())


def document_script(wrapper: str = "ssm-wrapper.sh") -> str:
    # Without the scripts' comment lines: the document is at most 64 KB (shell.without_comment_lines).
    return parameter_lines() + compose(script_values(), "ssm-runid.sh", "ssm-document.sh", wrapper, terse=True)


def build_document() -> dict[str, Any]:
    return {
        "schemaVersion": "2.2",
        "description": "cisaudit: CIS Docker Benchmark section 1.1 audit controls (audit, backout); "
        'the output is read back with `pytest --ssm-document-results=COMMAND_ID` (README "AWS")',
        "parameters": {name: spec | {"description": _DESCRIPTIONS[name]} for name, (_, spec) in PARAMETERS.items()},
        "mainSteps": [
            {
                "action": "aws:runShellScript",
                "name": "cisaudit",
                "precondition": {"StringEquals": ["platformType", "Linux"]},
                "inputs": {"timeoutSeconds": "600", "runCommand": document_script().splitlines()},
            }
        ],
    }


def render_document() -> str:
    return json.dumps(build_document(), indent=0) + "\n"  # no indent: SSM documents are at most 64 KB


def parse_header(stdout: str) -> Header | None:
    match = HEADER.search(stdout)
    return Header(**match.groupdict()) if match else None


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def main(argv: list[str] | None = None) -> int:
    """Print the audit/backout document; --write DIR: write both committed documents there;
    --bundle PATH: build the remediate document's zipapp and print its sha256."""
    import argparse
    from pathlib import Path

    from cisaudit.host.ssm import remediate_document

    parser = argparse.ArgumentParser(prog="python -m cisaudit.host.ssm.document")
    parser.add_argument("--write", metavar="DIR", type=Path, help="write both documents into DIR (remediation/)")
    parser.add_argument("--bundle", metavar="PATH", type=Path, help="build the remediate document's zipapp")
    args = parser.parse_args(argv)
    if args.bundle:
        from cisaudit.host.ssm.bundle import write_bundle

        print(write_bundle(args.bundle))
    if args.write:
        (args.write / DOCUMENT_FILE).write_text(render_document())
        (args.write / remediate_document.DOCUMENT_FILE).write_text(remediate_document.render())
    if not (args.bundle or args.write):
        sys.stdout.write(render_document())
    return 0


if __name__ == "__main__":
    sys.exit(main())


def read_results(
    command_id: str,
    instance_ids: list[str],
    spool: Any,
    version: str,
    keys: Any,
    region: str | None,
    profile: str | None,
) -> None:
    """Each instance's probe output of the document run `command_id` into the spool, as a fleet
    fan-out leaves its probe results (or the instance's one-line error); the spool's nonce is the
    run's probe marker. The run must be an audit, or a remediate (its re-probe after the change),
    of `version` with a key the suite judges with."""
    sent_ids: set[str] = set()  # the runId parameters sent (one per command)
    for instance in instance_ids:
        try:
            header, (rc, out, err) = _read_one(command_id, instance, region, profile)
        except RuntimeError as exc:
            spool.put_error(instance, f"ssm://{instance}: {exc}")
            continue
        problem = _mismatch(header, version, keys, sent_ids)
        if problem:
            spool.put_error(instance, f"ssm://{instance}: document run {command_id}: {problem}")
            continue
        sent_ids.add(header.sent)
        if header.action == "remediate":  # judge what the change left: its re-probe
            out, problem = _remediated_probe(out, err)
            if problem:
                spool.put_error(instance, f"ssm://{instance}: document run {command_id}: {problem}")
                continue
        spool.put_result(instance, rc, out, err)
        spool.publish(instance)  # the run is finished: its output is the instance's
    spool.set_nonce(nonces(next(iter(sent_ids)))[0] if sent_ids else "@@cisaudit-none")
    spool.finish()  # every instance has its result or error: no session waits for more


def _remediated_probe(out: bytes, err: bytes) -> tuple[bytes, str]:
    from cisaudit.host.ssm.remediate_document import probe_part

    probe, problem = probe_part(out.decode("utf-8", "replace"))
    said = err.decode("utf-8", "replace").strip().splitlines()
    return probe.encode(), problem + (f" ({said[-1][:300]})" if problem and said else "")


def _mismatch(header: Header, version: str, keys: Any, sent_ids: set[str]) -> str:
    if header.action not in ("audit", "remediate"):
        return f"action {header.action}, not audit or remediate: only those leave a probe to judge"
    if header.benchmark != version:
        return f"ran for benchmark {header.benchmark}; give --benchmark={header.benchmark}"
    if not keys.any and header.key not in keys.names:
        return f"ran with auditKey {header.key}; give --audit-key={header.key}"
    if sent_ids and header.sent not in sent_ids:
        return "its instances were sent different runId parameters: read one command's output"
    return ""


def _read_one(
    command_id: str, instance: str, region: str | None, profile: str | None
) -> tuple[Header, tuple[int, bytes, bytes]]:
    from botocore.exceptions import BotoCoreError, ClientError

    from cisaudit.host.ssm.backend import SsmBackend

    backend = SsmBackend(instance, region, profile)
    try:
        inv = backend.client.get_command_invocation(CommandId=command_id, InstanceId=instance)
    except (ClientError, BotoCoreError) as exc:
        raise RuntimeError(f"GetCommandInvocation {command_id}: {exc}") from None
    if inv.get("Status") not in ("Success", "Failed"):
        raise RuntimeError(f"document run {command_id} is {inv.get('Status')} ({inv.get('StatusDetails')})")
    header = parse_header(inv.get("StandardOutputContent", ""))
    if header is None:
        raise RuntimeError(f"{command_id}'s output has no cisaudit-document header: not this document's run")
    return header, backend._collect(inv, nonces(header.sent)[1], time.monotonic() + 600)
