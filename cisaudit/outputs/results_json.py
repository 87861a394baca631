"""reports/results.json: one record per (host, control, check), per-host probe facts, the run.

The format is docs/results.schema.json; bump SCHEMA_VERSION's major number on any change that
breaks a reader (a renamed or removed field), the minor one when fields are added.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

from cisaudit.outputs.delta_report import json_member
from cisaudit.outputs.record import CaseRecord
from cisaudit.outputs.results import RunResults
from cisaudit.outputs.waiver_register import json_member as register_member

SCHEMA_VERSION = "1.4"  # 1.1: "audited" per record; 1.2: run.scope, overall "partial scope" / "nothing checked"
# 1.3: check reboot-proof and "reboot_proof" per record (--reboot-proof)
# 1.4: with --baseline, "baseline" and a "delta" class per record
_RESULTS = "@@cisaudit-results@@"  # where iter_json writes the records


def iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _waiver(case: CaseRecord) -> dict[str, object] | None:
    if not (case.waiver or case.waiver_expired):
        return None
    return {
        "justification": case.waiver or case.waiver_expired,
        "expiration_date": case.waiver_expiration or None,
        "applied": bool(case.waiver),
        "expired": bool(case.waiver_expired),
        "approved_by": case.waiver_approved_by or None,
        "ticket": case.waiver_ticket or None,
    }


def _record(case: CaseRecord) -> dict[str, object]:
    cited = case.citation()
    return {
        "host": case.host,
        "control_id": case.control_id,
        "check": case.check,
        "status": case.status,
        "verdict": case.verdict,
        "summary": case.summary,
        "evidence": case.evidence.splitlines(),
        "rule": cited[0] if cited else None,
        "location": cited[1] if cited else None,
        "audited": case.audited or None,
        "waiver": _waiver(case),
        "remediated": case.remediated,
        "change": case.change or None,
        "audit_keys": case.audit_keys or None,
        "reboot_proof": json.loads(case.reboot_proof) if case.reboot_proof else None,
        "started": iso(case.started),
        "finished": iso(case.finished),
    }


def iter_json(results: RunResults) -> Iterator[str]:
    """The document in pieces: every record is encoded only when written (memory stays flat)."""
    info = results.info
    document = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "cisaudit", "version": info.tool_version, "commit": info.commit},
        "benchmark": {"title": info.benchmark.title, "version": info.benchmark.version, "profile": results.profile},
        "run": {
            "command": info.command,
            "mode": info.mode,
            "require_all": info.require_all,
            "started": iso(info.started),
            "finished": iso(info.finished),
            "overall": results.overall,
            "scope": {
                "complete": results.scope.complete,
                "benchmark_controls": results.scope.benchmark_controls,
                "checked": list(results.scope.checked),
                "not_checked": list(results.scope.not_checked),
                "hosts_not_checked": list(results.scope.hosts_not_checked),
            },
        },
        "controls": [
            {"id": c.id, "title": c.title, "level": c.level, "assessment": c.assessment, "path": c.path}
            for c in results.controls
        ],
        "hosts": [
            {
                "host": h,
                "remote_commands": results.remote_commands.get(h, 0),
                "facts": results.host_facts.get(h),
                "counts": dict(results.counts(host=h)),
                "changes": results.changes(h),
            }
            for h in results.hosts
        ],
        "results": _RESULTS,
        "expired_waivers": [
            {"control_id": cid, "expiration_date": date, "justification": why}
            for cid, date, why in results.expired_waivers()
        ],
    }
    delta = results.delta
    if delta is not None:
        document["baseline"] = json_member(delta)
    if results.waivers:
        document["waivers"] = register_member(results)
    head, _, tail = json.dumps(document, indent=1).partition(json.dumps(_RESULTS))
    yield head + "["
    for n, case in enumerate(results.cases):  # one line per record, written as it is made
        record = _record(case)
        if delta is not None:
            record["delta"] = delta.of(case.host, case.control_id, case.check).value
        yield ("\n  " if n == 0 else ",\n  ") + json.dumps(record)
    yield ("\n ]" if results.cases else "]") + tail + "\n"


def render_json(results: RunResults) -> str:
    return "".join(iter_json(results))
