"""Render the host-side remediation scripts and parse what they print.

Python decides WHAT to add (a plan of rule lines, a loader mode, a target file);
cisaudit/host/scripts/apply.sh and cisaudit/host/scripts/backout.sh do it on the host, safely and
reversibly. Each script goes to the host as ONE shell command (cisaudit/host/shell.py
compose): `NAME='value'` assignments, preamble.sh, common.sh, then the script; run it with
`sh -c` as root. The scripts end their stdout with a block of `cisaudit-*:` lines that
parse_result() reads.
"""

from __future__ import annotations

from cisaudit.host.shell import SCRIPTS, compose
from cisaudit.model.catalogue import Benchmark
from cisaudit.model.decisions import ChangeStatus, RemediationResult
from cisaudit.model.loader import AUDIT_RULES

SCRIPT_DIR = SCRIPTS
MODES = ("augenrules", "auditctl")
_LISTS = {
    "cisaudit-added: ": "added",
    "cisaudit-removed: ": "removed",
    "cisaudit-restored: ": "restored",
    "cisaudit-message: ": "messages",
    "cisaudit-mismatch: ": "mismatches",
}
_RESULT = "cisaudit-result: "


def render_apply(
    run_id: str,
    mode: str,
    target: str,
    rules: list[str],
    dry_run: bool,
    benchmark: Benchmark,
    *,
    journal_root: str | None = None,
    tmpfiles: list[str] | None = None,
) -> str:
    """The apply command: add `rules` to `target` (persisted) and to the live kernel; the files it
    writes name `benchmark`, the version the rules implement."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    for rule in [*rules, *(tmpfiles or ()), benchmark.title, benchmark.version]:
        if "\n" in rule or "\r" in rule:
            raise ValueError(f"line spans lines: {rule!r}")
    values = {
        "CISAUDIT_RUN_ID": run_id,
        "CISAUDIT_MODE": mode,
        "CISAUDIT_TARGET": target,
        "CISAUDIT_RULES": "\n".join(rules),
        "CISAUDIT_TMPFILES": "\n".join(tmpfiles or ()),
        "CISAUDIT_DRY_RUN": "1" if dry_run else "0",
        "CISAUDIT_AUDIT_RULES": AUDIT_RULES,
        "CISAUDIT_BENCHMARK": f"{benchmark.title} v{benchmark.version}",
    }
    if journal_root is not None:
        values["CISAUDIT_JOURNAL_ROOT"] = journal_root
    return compose(values, "common.sh", "apply.sh")


def render_backout(run_id: str | None, dry_run: bool, *, journal_root: str | None = None, force: bool = False) -> str:
    """The backout command: undo `run_id`, or (None) the latest run not yet backed out."""
    values = {
        "CISAUDIT_RUN_ID": run_id or "",
        "CISAUDIT_DRY_RUN": "1" if dry_run else "0",
        "CISAUDIT_FORCE": "1" if force else "0",
    }
    if journal_root is not None:
        values["CISAUDIT_JOURNAL_ROOT"] = journal_root
    return compose(values, "common.sh", "backout.sh")


def _parse_fields(text: str) -> dict[str, str]:
    """`status=x run_id=y journal=/a b` -> dict; a word without `=` continues the last value."""
    fields: dict[str, str] = {}
    last = ""
    for word in text.split(" "):
        key, sep, value = word.partition("=")
        if sep and key.isidentifier():
            fields[key] = value
            last = key
        elif last:
            fields[last] += " " + word
    return fields


def parse_result(stdout: str) -> RemediationResult:
    """Read the `cisaudit-*:` lines; status "unknown" when no result line came (killed run)."""
    result = RemediationResult(status=ChangeStatus.UNKNOWN, run_id="")
    for line in stdout.splitlines():
        if line.startswith(_RESULT):
            result.fields = _parse_fields(line[len(_RESULT) :])
            status = result.fields.get("status", "")
            known = status in set(ChangeStatus)
            result.status = ChangeStatus(status) if known else ChangeStatus.UNKNOWN
            if not known:
                result.messages.append(f"result status {status[:40]!r} is not one this version knows")
            run_id = result.fields.get("run_id", "")
            result.run_id = "" if run_id == "-" else run_id
            continue
        for prefix, name in _LISTS.items():
            if line.startswith(prefix):
                getattr(result, name).append(line[len(prefix) :])
                break
    if not result.fields:
        result.messages.append("no cisaudit-result line: the script did not finish")
    return result
