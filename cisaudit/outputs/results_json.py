"""reports/results.json: one record per (host, control, check), per-host probe facts, the run.

The format is docs/results.schema.json; bump SCHEMA_VERSION's major number on any change that
breaks a reader (a renamed or removed field), the minor one when fields are added.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import fields
from functools import lru_cache
from operator import attrgetter
from typing import Any

from cisaudit.model.delta import Delta
from cisaudit.outputs.delta_report import json_member
from cisaudit.outputs.record import CaseRecord
from cisaudit.outputs.results import RunResults
from cisaudit.outputs.waiver_register import json_member as register_member

# 1.1: "audited" per record; 1.2: run.scope, overall "partial scope" / "nothing checked"; 2.0: each distinct
# outcome once (`outcomes`), `results` per host as [outcome index, started, finished] (10,000 hosts: 206 MB -> ~20 MB)
# 2.0 also: check reboot-proof and "reboot_proof" per outcome (--reboot-proof); with --baseline, "baseline"
# and a "delta" class per outcome; with --waivers, the register "waivers" and approved_by/ticket per waiver
SCHEMA_VERSION = "2.0"
_RESULTS = "@@cisaudit-results@@"  # where iter_json writes the records
_OUTCOMES = "@@cisaudit-outcomes@@"  # and then the outcomes they refer to


def iso(timestamp: float) -> str:
    """UTC, whole seconds (cut, not rounded)."""
    return _iso_second(math.floor(timestamp))


@lru_cache(maxsize=1 << 16)  # a fleet's records end in few distinct seconds
def _iso_second(second: int) -> str:
    return dt.datetime.fromtimestamp(second, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


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


def _outcome(case: CaseRecord, delta: Delta | None) -> dict[str, object]:
    """Everything of a record but its host and times: what hosts of a fleet mostly share."""
    cited = case.citation()
    outcome: dict[str, object] = {
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
    }
    if delta is not None:  # --baseline: a few classes, so outcomes stay shared
        outcome["delta"] = delta.of(case.host, case.control_id, case.check).value
    return outcome


def _run(results: RunResults) -> dict[str, object]:
    """The run: its command, mode, times, the overall verdict and what it checked."""
    info, scope = results.info, results.scope
    return {
        "command": info.command,
        "mode": info.mode,
        "require_all": info.require_all,
        "started": iso(info.started),
        "finished": iso(info.finished),
        "overall": results.overall,
        "scope": {
            "complete": scope.complete,
            "benchmark_controls": scope.benchmark_controls,
            "checked": list(scope.checked),
            "not_checked": list(scope.not_checked),
            "hosts_not_checked": list(scope.hosts_not_checked),
        },
    }


def _head(results: RunResults) -> dict[str, object]:
    """Every member but the records, which iter_json writes where the placeholders are."""
    info = results.info
    document: dict[str, object] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "cisaudit", "version": info.tool_version, "commit": info.commit},
        "benchmark": {"title": info.benchmark.title, "version": info.benchmark.version, "profile": results.profile},
        "run": _run(results),
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
        "outcomes": _OUTCOMES,
        "expired_waivers": [
            {"control_id": cid, "expiration_date": date, "justification": why}
            for cid, date, why in results.expired_waivers()
        ],
    }
    if results.delta is not None:
        document["baseline"] = json_member(results.delta)
    if results.waivers:
        document["waivers"] = register_member(results)
    return document


def iter_json(results: RunResults) -> Iterator[str]:
    """The document in pieces: every record is encoded only when written (memory stays flat)."""
    head, _, rest = json.dumps(_head(results), indent=1).partition(json.dumps(_RESULTS))
    middle, _, tail = rest.partition(json.dumps(_OUTCOMES))
    outcomes: dict[str, int] = {}  # an outcome's JSON text -> its index
    delta = results.delta
    known: dict[tuple[object, ...], int] = {}  # the fields an outcome is made of -> its index
    yield head + "["
    for n, (host, cases) in enumerate(results.by_host.items()):  # one line per host, written as it is made
        records = [[_index(c, delta, known, outcomes), iso(c.started), iso(c.finished)] for c in cases]
        yield ("\n  " if n == 0 else ",\n  ") + json.dumps({"host": host, "records": records}, separators=(",", ":"))
    yield ("\n ]" if results.cases else "]") + middle + "["
    yield ",\n  ".join(["", *outcomes])[1:] if outcomes else ""
    yield ("\n ]" if outcomes else "]") + tail + "\n"


# A record's fields but those of its host and its times: records equal in these have one outcome.
_OUTCOME_OF = attrgetter(
    *(
        f.name
        for f in fields(CaseRecord)
        if f.name not in ("host", "remote_commands", "host_facts", "started", "finished")
    )
)


def _index(
    case: CaseRecord, delta: Delta | None, known: dict[tuple[object, ...], int], outcomes: dict[str, int]
) -> int:
    """The index of the case's outcome, each distinct outcome encoded once."""
    key = (_OUTCOME_OF(case), delta.of(case.host, case.control_id, case.check) if delta is not None else None)
    index = known.get(key)
    if index is None:
        index = known[key] = outcomes.setdefault(json.dumps(_outcome(case, delta)), len(outcomes))
    return index


def records(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A results.json document's records, one object each (host, the outcome's fields, started,
    finished), in the document's order: schema 1.x's `results`."""
    outcomes = document["outcomes"]
    return [
        {"host": host["host"], **outcomes[index], "started": started, "finished": finished}
        for host in document["results"]
        for index, started, finished in host["records"]
    ]


def render_json(results: RunResults) -> str:
    return "".join(iter_json(results))
