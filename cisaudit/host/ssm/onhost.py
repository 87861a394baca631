"""The SSM remediate document's `action=remediate`, run ON the instance (remediation/
cisaudit-docker-remediate.ssm.json; host/ssm/bundle.py ships this package's own modules as a
zipapp): the suite's --remediate without the runner, each step the suite's code. Probe
(probe.PROBE_PIECES, marker from the run id as ssm-document.sh makes it) -> pure plan
(model/plan.make_plan) -> apply.sh (common.sh takes the host lock) -> re-probe.

Standard library only (Python 3.11+: tomllib, StrEnum): no boto3, testinfra or yaml here.
Its stdout, which ssm-wrapper.sh frames and host/ssm/document.py read_results splits:
  cisaudit-plan: mode=M target=T       then `cisaudit-plan-rule: ` / `cisaudit-plan-tmpfile: ` lines
  apply.sh's stdout (its `cisaudit-*:` block), absent when the plan adds nothing
  PROBE_SEPARATOR, then the re-probe's stdout (judged by the suite as an audit's)
Exit 0 when the host ends as planned, 1 when apply.sh did not, 2 for bad arguments or a probe
that cannot be read (one line on stderr).
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from cisaudit.host.probe import (
    PROBE_PIECES,
    ProbeError,
    parse_probe,
    parse_stat_output,
    probe_values,
    render_stat_script,
)
from cisaudit.host.remediation_io import parse_result, render_apply
from cisaudit.host.shell import compose
from cisaudit.model.catalogue import benchmark, controls, select
from cisaudit.model.decisions import OK_STATUSES
from cisaudit.model.evaluate import Assessment
from cisaudit.model.locate import resolve, unknown_paths
from cisaudit.model.plan import Plan, make_plan
from cisaudit.model.snapshot import Snapshot

PROBE_SEPARATOR = "cisaudit-document-probe:"


class OnHostError(Exception):
    """What stops the run before anything changed: one line for the instance's stderr."""


def _sh(script: str) -> tuple[int, str, str]:
    proc = subprocess.run(["/bin/sh", "-c", script], stdin=subprocess.DEVNULL, capture_output=True, check=False)
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


def probe(version: str, marker: str) -> tuple[str, Snapshot]:
    """(stdout, snapshot) of the probe the audit action runs, plus the stat of any path a config
    named that the probe could not foresee (as host/session.py HostSession.probe does)."""
    catalogue = controls(version)
    rc, out, err = _sh(compose({"M": marker, **probe_values(catalogue)}, *PROBE_PIECES))
    try:
        snap = parse_probe(out, marker, catalogue)
        missing = unknown_paths([resolve(c, snap) for c in catalogue])
        if missing:
            script, nonce = render_stat_script(missing)
            snap.paths.update(parse_stat_output(_sh(script)[1], nonce))
    except ProbeError as exc:
        raise OnHostError(f"the probe's output cannot be read: {exc}; exit {rc}: {err.strip()[-200:]}") from None
    return out, snap


def plan_lines(plan: Plan) -> str:
    """The plan as the document prints it (and the suite compares)."""
    lines = [f"cisaudit-plan: mode={plan.mode} target={plan.target}"]
    lines += [f"cisaudit-plan-rule: {rule}" for rule in plan.rule_lines]
    lines += [f"cisaudit-plan-tmpfile: {line}" for line in plan.tmpfiles]
    return "\n".join(lines) + "\n"


def remediate(version: str, key: str, run_id: str, control_ids: str, marker: str) -> tuple[int, str]:
    """(exit code, stdout): plan from the probe, apply it under the host lock, probe again."""
    try:
        selected = select(control_ids, version) if control_ids else list(controls(version))
    except ValueError as exc:
        raise OnHostError(f"controls: {exc}") from None
    _, snap = probe(version, marker)
    plan = make_plan(Assessment(snap, key), selected, benchmark(version))
    out, rc = plan_lines(plan), 0
    if plan.rules or plan.tmpfiles:
        script = render_apply(
            run_id, plan.mode, plan.target, plan.rule_lines, False, benchmark(version), tmpfiles=list(plan.tmpfiles)
        )
        applied = _sh(script)[1]
        out += applied if applied.endswith("\n") or not applied else applied + "\n"
        rc = 0 if parse_result(applied).status in OK_STATUSES else 1
    after, _ = probe(version, marker)
    return rc, out + PROBE_SEPARATOR + "\n" + after


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cisaudit.pyz", description="cisaudit SSM document, on the instance")
    parser.add_argument("action", choices=["remediate"])
    for name in ("--benchmark", "--key", "--run-id", "--marker"):
        parser.add_argument(name, required=True)
    parser.add_argument("--controls", default="")
    args = parser.parse_args(argv)
    try:
        rc, out = remediate(args.benchmark, args.key, args.run_id, args.controls, args.marker)
    except (OnHostError, ValueError) as exc:
        sys.stderr.write(f"cisaudit document: {exc}\n")
        return 2
    except Exception as exc:  # noqa: BLE001 - one line for the instance's output, never a traceback
        detail = " ".join(str(exc).split())[:300]
        sys.stderr.write(f"cisaudit document: remediate stopped: {type(exc).__name__}: {detail}\n")
        return 2
    sys.stdout.write(out)
    return rc
