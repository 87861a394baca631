"""The baseline delta (model/delta.py) in the outputs: this run's StatusTable, the compliance report's
"Changes since BASELINE" section, results.json's `baseline` member and the terminal's lines."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from cisaudit.model.delta import BaselineInfo, Delta, DeltaClass, StatusTable, code, lines
from cisaudit.outputs.record import CaseRecord
from cisaudit.outputs.results import RunResults

SHOWN = 50  # cases listed per class in the report (results.json has every one)


def current_table(cases: Iterable[CaseRecord], baseline: StatusTable) -> StatusTable:
    """This run's statuses, sharing the baseline's (control, check) index."""
    table = StatusTable(baseline.index)
    for case in cases:
        table.put(case.host, case.control_id, case.check, code(case.status, bool(case.waiver_expired)))
    return table


def delta_of(cases: Iterable[CaseRecord], baseline: StatusTable, info: BaselineInfo) -> Delta:
    return Delta(current_table(cases, baseline), baseline, info)


def heading(info: BaselineInfo) -> str:
    return f"Changes since {info.path} ({info.started}, commit {info.commit})"


def terminal_lines(delta: Delta) -> list[str]:
    return [heading(delta.info), *(f"  {line}" for line in lines(delta.counted))]


def json_member(delta: Delta) -> dict[str, object]:
    """results.json's `baseline` (schema 1.3)."""
    info = delta.info
    return {
        "path": info.path,
        "schema_version": info.schema_version,
        "started": info.started,
        "commit": info.commit,
        "counts": {cls.value: n for cls, n in sorted(delta.counted.items())},
        "hosts_gone": sorted({host for host, _, _ in delta.gone()}),
    }


def _listed(results: RunResults, delta: Delta) -> dict[DeltaClass, list[str]]:
    listed: dict[DeltaClass, list[str]] = {}
    for case in results.cases:
        found = delta.of(case.host, case.control_id, case.check)
        if found != DeltaClass.UNCHANGED and len(listed.setdefault(found, [])) < SHOWN:
            listed[found].append(f"{case.host} | {case.control_id} | {case.check}")
    for host, control_id, check in delta.gone():
        if len(listed.setdefault(DeltaClass.HOST_GONE, [])) < SHOWN:
            listed[DeltaClass.HOST_GONE].append(f"{host} | {control_id} | {check}")
    return listed


def changes_html(results: RunResults) -> str:
    """The compliance report's first section; empty without --baseline."""
    delta = results.delta
    if delta is None:
        return ""
    counts, listed = delta.counted, _listed(results, delta)
    rows = "".join(
        f"<tr><td>{escape(cls.value)}</td><td class='n'>{counts.get(cls, 0)}</td><td>"
        + "<br>".join(escape(item) for item in listed.get(cls, []))
        + ("<br>..." if counts.get(cls, 0) > SHOWN else "")
        + "</td></tr>"
        for cls in DeltaClass
        if cls != DeltaClass.UNCHANGED
    )
    return (
        f"<h2 id='changes'>{escape(heading(delta.info))}</h2><table id='delta'><tr><th>class</th>"
        f"<th>checks</th><th>host | control | check (the first {SHOWN})</th></tr>{rows}</table>"
        f"<p>{counts.get(DeltaClass.UNCHANGED, 0)} checks unchanged. results.json has the class of every check.</p>"
    )
