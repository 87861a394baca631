"""The exception register: each waiver of --waivers, where it applied, when it expires, and the
waivers that match nothing in the run (compliance report, results.json, terminal)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from html import escape

from cisaudit.model.waivers import Waiver, unmatched
from cisaudit.outputs.results import RunResults, natural_key


@dataclass(frozen=True)
class Entry:
    waiver: Waiver
    applied_on: tuple[str, ...]  # hosts whose failure it waived, or whose check it kept from running
    expired: bool
    matches_nothing: bool


def register(results: RunResults) -> list[Entry]:
    applied: dict[str, set[str]] = {}
    expired: set[str] = set()
    for case in results.cases:
        if case.waiver:
            applied.setdefault(case.control_id, set()).add(case.host)
        if case.waiver_expired:
            expired.add(case.control_id)
    hosts = list(dict.fromkeys([*results.info.hosts, *results.hosts]))
    checked = {c.control_id for c in results.cases}
    idle = {w.control_id for w in unmatched({w.control_id: w for w in results.waivers}, hosts, checked)}
    today = dt.datetime.fromtimestamp(results.info.started, dt.UTC).date()
    return [
        Entry(
            w,
            tuple(sorted(applied.get(w.control_id, ()), key=natural_key)),
            w.control_id in expired or w.expired(today),
            w.control_id in idle,
        )
        for w in sorted(results.waivers, key=lambda w: natural_key(w.control_id))
    ]


def unmatched_lines(results: RunResults) -> list[str]:
    """One warning per waiver that matches nothing."""
    return [
        f"waiver of {e.waiver.control_id} (line {e.waiver.line}, {e.waiver.scope()}) matches nothing in this run: "
        "its control was not checked or its scope names none of the hosts"
        for e in register(results)
        if e.matches_nothing
    ]


def json_member(results: RunResults) -> list[dict[str, object]]:
    """results.json's `waivers` (schema 1.3)."""
    return [
        {
            "control_id": e.waiver.control_id,
            "justification": e.waiver.justification,
            "expiration_date": str(e.waiver.expiration_date or ""),
            "approved_by": e.waiver.approved_by or None,
            "ticket": e.waiver.ticket or None,
            "scope": e.waiver.scope(),
            "line": e.waiver.line,
            "applied_on": list(e.applied_on),
            "expired": e.expired,
            "matches_nothing": e.matches_nothing,
        }
        for e in register(results)
    ]


def register_html(results: RunResults) -> str:
    """The compliance report's exception register; empty without --waivers."""
    entries = register(results)
    if not entries:
        return ""
    rows = "".join(
        f"<tr><td>{escape(e.waiver.control_id)}</td><td>{escape(e.waiver.justification)}</td>"
        f"<td>{escape(e.waiver.reference())}</td><td>{escape(e.waiver.scope())}</td>"
        f"<td>{escape(str(e.waiver.expiration_date))}{' (expired: ignored)' if e.expired else ''}</td>"
        f"<td>{escape(', '.join(e.applied_on)) or ('matches nothing' if e.matches_nothing else 'none')}</td></tr>"
        for e in entries
    )
    warnings = "".join(f"<li>{escape(line)}</li>" for line in unmatched_lines(results))
    return (
        "<h2 id='exceptions'>Exception register</h2><table id='waivers'><tr><th>control</th><th>justification</th>"
        f"<th>approval</th><th>scope</th><th>expires</th><th>applied on</th></tr>{rows}</table>"
        + (
            f"<div class='warn' id='unmatched'><b>Waivers that match nothing:</b><ul>{warnings}</ul></div>"
            if warnings
            else ""
        )
    )
