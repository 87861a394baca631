"""The SSM remediate document (remediation/cisaudit-docker-remediate.ssm.json, schema 2.2):
`action=remediate` on an instance without this runner, for a State Manager association.

Step 1, aws:downloadContent: the zipapp of this package (host/ssm/bundle.py) from S3
(bundleUrl) into BUNDLE_DIR. Step 2, aws:runShellScript: ssm-runid.sh, ssm-remediate.sh (checks
the bundle's sha256 against bundleSha256 and finds pythonPath) and ssm-wrapper.sh, which frames
host/ssm/onhost.py's run: plan from the probe (model/plan.py) -> apply.sh under the host lock
-> re-probe. Backing out is the audit document's `action=backout` with the same runId.
`--ssm-document-results` reads the output back (host/ssm/document.py read_results, split here).
"""

from __future__ import annotations

import json
from typing import Any

from cisaudit.host.remediation_io import parse_result
from cisaudit.host.shell import compose
from cisaudit.host.ssm.document import KEY_PATTERN, PARAMETERS, RUN_ID_PATTERN, script_values
from cisaudit.host.ssm.onhost import PROBE_SEPARATOR
from cisaudit.model.catalogue import DEFAULT_KEY, DEFAULT_VERSION, VERSIONS
from cisaudit.model.decisions import OK_STATUSES

DOCUMENT_FILE = "cisaudit-docker-remediate.ssm.json"
BUNDLE_DIR = "/var/lib/cisaudit/ssm"
BUNDLE_URL_PATTERN = r"^https://[A-Za-z0-9.-]+(/[A-Za-z0-9._-]+)+\.pyz$"
SPECS: dict[str, tuple[str, dict[str, object], str]] = {
    "action": (
        "CISAUDIT_DOC_ACTION",
        {"type": "String", "allowedValues": ["remediate"], "default": "remediate"},
        "remediate: plan from the probe, add the missing rules under the host lock, probe again "
        "(back out with the cisaudit-docker document's action=backout and this runId)",
    ),
    "benchmark": (
        "CISAUDIT_DOC_BENCHMARK",
        {"type": "String", "allowedValues": list(VERSIONS), "default": DEFAULT_VERSION},
        "CIS Docker Benchmark version whose rules are added",
    ),
    "auditKey": (
        "CISAUDIT_DOC_KEY",
        {"type": "String", "allowedPattern": KEY_PATTERN, "default": DEFAULT_KEY},
        "the key the added rules carry (the suite judges with it)",
    ),
    "runId": (
        "CISAUDIT_DOC_RUN_ID",
        {"type": "String", "allowedPattern": RUN_ID_PATTERN, "default": ""},
        "names this run and its journal (backout's runId); empty: made on the instance",
    ),
    "controls": (
        "CISAUDIT_DOC_CONTROLS",
        {"type": "String", "allowedPattern": r"^[0-9.,]{0,200}$", "default": ""},
        "control ids to remediate, comma-separated (as --controls); empty: all of the benchmark's",
    ),
    "bundleUrl": (
        "CISAUDIT_DOC_BUNDLE_URL",
        {"type": "String", "allowedPattern": BUNDLE_URL_PATTERN},
        "https URL of the S3 object holding the zipapp `python -m cisaudit.host.ssm.document --bundle` built",
    ),
    "bundleSha256": (
        "CISAUDIT_DOC_BUNDLE_SHA256",
        {"type": "String", "allowedPattern": "^[0-9a-f]{64}$"},
        "the sha256 that command printed: the bundle runs only if it matches",
    ),
    "pythonPath": (
        "CISAUDIT_DOC_PYTHON",
        {"type": "String", "allowedPattern": r"^[A-Za-z0-9._/-]{1,128}$", "default": "python3"},
        "Python 3.11 or later (Amazon Linux 2023: python3.11)",
    ),
}
assert set(PARAMETERS) <= set(SPECS)  # the audit document's parameters mean the same here


def document_script(wrapper: str = "ssm-wrapper.sh") -> str:
    params = "".join(f"{var}='{{{{ {name} }}}}'\n" for name, (var, _, _) in SPECS.items())
    values = {k: v for k, v in script_values().items() if k.startswith("CISAUDIT_FRAME_")}
    values["CISAUDIT_DOC_BUNDLE_DIR"] = BUNDLE_DIR
    return params + compose(values, "ssm-runid.sh", "ssm-remediate.sh", wrapper)


def build() -> dict[str, Any]:
    return {
        "schemaVersion": "2.2",
        "description": "cisaudit: add the missing CIS Docker Benchmark section 1.1 audit rules (remediate), "
        "planned on the instance by the suite's own code; read back with `pytest --ssm-document-results="
        'COMMAND_ID` (README "AWS")',
        "parameters": {name: spec | {"description": text} for name, (_, spec, text) in SPECS.items()},
        "mainSteps": [
            {
                "action": "aws:downloadContent",
                "name": "bundle",
                "precondition": {"StringEquals": ["platformType", "Linux"]},
                "inputs": {
                    "sourceType": "S3",
                    "sourceInfo": '{"path":"{{ bundleUrl }}"}',
                    "destinationPath": BUNDLE_DIR,
                },
            },
            {
                "action": "aws:runShellScript",
                "name": "cisaudit",
                "precondition": {"StringEquals": ["platformType", "Linux"]},
                "inputs": {"timeoutSeconds": "900", "runCommand": document_script().splitlines()},
            },
        ],
    }


def render() -> str:
    return json.dumps(build(), indent=0) + "\n"


def probe_part(stdout: str) -> tuple[str, str]:
    """(the re-probe's stdout, "") from a remediate run's framed stdout, or ("", why it cannot be
    judged): a plan that failed to apply is this host's error, not a verdict on what it left."""
    report, sep, probe = stdout.partition(PROBE_SEPARATOR + "\n")
    if not sep:
        return "", "the remediate run ended before its re-probe (see the instance's stderr)"
    applied = parse_result(report)
    if "cisaudit-result: " in report and applied.status not in OK_STATUSES:
        detail = "; ".join(applied.messages + applied.mismatches)[:300]
        return "", f"remediation {applied.status}: {detail}"
    return probe, ""
