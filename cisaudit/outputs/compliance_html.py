"""reports/compliance.html: the compliance report, one self-contained file.

The first screen is plain HTML (header, per-control fleet view, per-host table), so it shows
at once at 1,000 hosts. The per-(host, control, check) detail rides as one JSON blob with every
distinct string stored once (fleets repeat the same evidence), and a small script renders a
host's detail only when it is opened.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterator
from html import escape
from operator import attrgetter

from cisaudit.model.verdict import Status
from cisaudit.outputs.delta_report import changes_html
from cisaudit.outputs.record import HOST_CONTROL, CaseRecord
from cisaudit.outputs.results import Overall, RunResults
from cisaudit.outputs.status import LABEL, STATUSES, compliance
from cisaudit.outputs.waiver_register import register_html

OVERALL_CLASS = {
    Overall.COMPLIANT: "ok",
    Overall.NOT_COMPLIANT: "bad",
    Overall.ERRORS: "err",
    Overall.PARTIAL: "part",
    Overall.NOTHING_CHECKED: "part",
}

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.4em 0 .4em}
#overall{display:inline-block;padding:.25em .8em;border-radius:4px;font-weight:bold;font-size:1.3em;color:#fff}
#overall.ok{background:#1a7f37}#overall.bad{background:#c62828}#overall.err{background:#8a5300}
#overall.part{background:#55606e}
dl{display:grid;grid-template-columns:max-content auto;gap:.15em 1em;margin:.6em 0}dt{font-weight:bold}dd{margin:0}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.n{text-align:right}.fail,.error{color:#c62828;font-weight:bold}.waived{color:#6a4c93}
.warn{background:#fff4e5;border:1px solid #f0b429;padding:.4em .8em}pre{margin:0;white-space:pre-wrap;font-size:12px}
details summary{cursor:pointer}code{font-size:12px}
"""

SCRIPT = """
const data = JSON.parse(document.getElementById('cases').textContent), s = data.s;
function esc(t) { const d = document.createElement('div'); d.textContent = t; return d.innerHTML; }
function show() {
  const m = location.hash.match(/^#h(\\d+)$/), out = document.getElementById('detail');
  if (!m) { out.hidden = true; return; }
  const [host, cases] = data.h[+m[1]];
  const rows = cases.map(([control, title, check, status, summary, evidence, change, waiver]) =>
    `<tr><td>${esc(s[control])}</td><td>${esc(s[title])}</td><td>${esc(s[check])}</td>` +
    `<td class="${esc(s[status])}">${esc(s[status])}</td>` +
    `<td><pre>${esc(s[summary] + (s[evidence] ? '\\n' + s[evidence] : ''))}</pre></td>` +
    `<td>${esc(s[waiver])}</td><td>${esc(s[change])}</td></tr>`).join('');
  out.innerHTML = `<h2>${esc(s[host])}</h2><table><tr><th>control</th><th>title</th><th>check</th>` +
    `<th>verdict</th><th>evidence</th><th>waiver</th><th>change</th></tr>${rows}</table>`;
  out.hidden = false;
}
window.addEventListener('hashchange', show);
show();
document.body.dataset.renderedMs = Math.round(performance.now());
"""


class _Strings:
    """Each distinct string once; cases refer to them by index."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        return self.index.setdefault(text, len(self.index))


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _header(results: RunResults) -> str:
    info, hosts, totals = results.info, results.hosts, results.counts()
    expired = "".join(
        f"<li>{escape(cid)} (expired {escape(date)}): {escape(why)}</li>"
        for cid, date, why in results.expired_waivers()
    )
    facts = {
        "Benchmark": f"{info.benchmark.title} v{info.benchmark.version}, {results.profile}",
        "Hosts in scope": f"{len(hosts)}",
        "Scope": ("complete: " if results.scope.complete else "PARTIAL: ") + results.scope.describe(),
        "Date": f"{_when(info.started)} ({info.finished - info.started:.0f} s)",
        "Tool": f"cisaudit {info.tool_version}, commit {info.commit}",
        "Command": info.command,
        "Mode": info.mode,
        "Checks": ", ".join(f"{totals.get(s, 0)} {LABEL[s]}" for s in STATUSES),
    }
    return (
        f"<h1>CIS Docker audit compliance report</h1><p><span id='overall' class='{OVERALL_CLASS[results.overall]}'>"
        f"{results.overall.upper()}</span></p><dl>"
        + "".join(
            f"<dt>{k}</dt><dd>{escape(v) if k != 'Command' else f'<code>{escape(v)}</code>'}</dd>"
            for k, v in facts.items()
        )
        + "</dl>"
        + (
            f"<div class='warn' id='expired'><b>Expired waivers, ignored:</b><ul>{expired}</ul></div>"
            if expired
            else ""
        )
    )


def _fleet(results: RunResults, anchors: dict[str, str]) -> str:
    per_control: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for (host, cid), status in results.control_status.items():
        per_control[cid][status].append(host)
    rows = []
    for control in results.controls:
        cells = []
        for status in STATUSES:
            found = per_control[control.id][status]  # control_status() follows the cases, hosts in order
            if status in (Status.FAIL, Status.ERROR, Status.WAIVED) and found:
                links = " ".join(f"<a href='#{anchors[h]}'>{escape(h)}</a>" for h in found)
                cells.append(f"<td class='n {status}'><details><summary>{len(found)}</summary>{links}</details></td>")
            else:
                cells.append(f"<td class='n'>{len(found)}</td>")
        rows.append(
            f"<tr id='c{escape(control.id)}'><td>{escape(control.id)}</td><td>{escape(control.title)}</td>"
            f"<td>{control.level}</td><td>{control.assessment.capitalize()}</td>{''.join(cells)}</tr>"
        )
    head = "".join(f"<th>{LABEL[s]}</th>" for s in STATUSES)
    return (
        "<h2>Per control: hosts</h2><table id='controls'><tr><th>control</th><th>title</th><th>level</th>"
        f"<th>assessment</th>{head}</tr>{''.join(rows)}</table>"
        "<p>A host fails a control when any of its checks fails (live, persisted, events); click a count for "
        "the hosts.</p>"
    )


def _hosts(results: RunResults, anchors: dict[str, str]) -> str:
    status = results.control_status
    rows = []
    for host in results.hosts:
        counts = results.counts(host=host)
        bad = (Status.FAIL, Status.ERROR)
        failing = " ".join(c.id for c in results.controls if status.get((host, c.id)) in bad)
        host_failures = ", ".join(
            c.check for c in results.by_host[host] if c and c.control_id == HOST_CONTROL and c.status in bad
        )
        rows.append(
            f"<tr><td><a href='#{anchors[host]}'>{escape(host)}</a></td>"
            + "".join(f"<td class='n'>{counts[s]}</td>" for s in STATUSES)
            + f"<td class='n'>{compliance(counts)}</td><td class='fail'>{escape(failing)}</td>"
            f"<td class='fail'>{escape(host_failures)}</td>"
            f"<td class='n'>{results.remote_commands.get(host, 0)}</td>"
            f"<td>{escape('; '.join(results.changes(host)))}</td></tr>"
        )
    head = "".join(f"<th>{LABEL[s]}</th>" for s in STATUSES)
    return (
        "<h2>Per host: checks</h2><table id='hosts'><tr><th>host</th>"
        + head
        + "<th>compliance</th><th>failing controls</th><th>failing host checks</th><th>remote commands</th>"
        f"<th>changes</th></tr>{''.join(rows)}</table>"
        "<p>compliance = passed / (passed + failed) checks; waived, not applicable and errors are excluded. "
        "Click a host for every check with its evidence.</p>"
    )


def _shown_status(case: CaseRecord) -> str:
    return f"{Status.WAIVED} ({LABEL[Status.NOT_RUN]})" if case.verdict == Status.NOT_RUN else case.status


# What a case's detail row shows: cases equal in these share one row of string indices.
_ROW_OF = attrgetter(
    "control_id",
    "title",
    "check",
    "verdict",
    "waiver",
    "summary",
    "audited",
    "evidence",
    "change",
    "waiver_approved_by",
    "waiver_ticket",
)


def _detail_row(c: CaseRecord, strings: _Strings) -> list[int]:
    return [
        strings(v)
        for v in (
            c.control_id,
            c.title,
            c.check,
            _shown_status(c),
            c.summary,
            (f"audited: {c.audited}\n" if c.audited else "") + c.evidence,
            c.change,
            c.waiver and f"{c.waiver}; {c.waiver_reference}",
        )
    ]


def _detail_data(results: RunResults) -> Iterator[str]:
    """The detail's JSON in pieces (100 MB at 100,000 hosts: one copy, not three)."""
    strings = _Strings()
    rows: dict[tuple[object, ...], list[int]] = {}  # a fleet's hosts mostly repeat the same rows

    def row(c: CaseRecord) -> list[int]:
        key = _ROW_OF(c)
        found = rows.get(key)
        if found is None:
            found = rows[key] = _detail_row(c, strings)
        return found

    hosts = [[strings(host), [row(c) for c in cases]] for host, cases in results.by_host.items()]
    # json.dumps({"s": strings, "h": hosts}) with compact separators, the hosts encoded 1,000 at a time
    yield _safe('{"s":' + _compact(list(strings.index)) + ',"h":[')
    for n in range(0, len(hosts), 1000):
        yield _safe(("," if n else "") + _compact(hosts[n : n + 1000])[1:-1])
    yield "]}"


def _safe(text: str) -> str:
    return text.replace("<", "\\u003c")  # no "</script>" inside the script element


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def render_html(results: RunResults) -> str:
    return "".join(iter_html(results))


def iter_html(results: RunResults) -> Iterator[str]:
    """The report in pieces, its detail data as it is encoded (fleet size: no whole copies)."""
    anchors = {host: f"h{i}" for i, host in enumerate(results.hosts)}
    yield (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>CIS Docker compliance: {results.overall}</title><style>{STYLE}</style></head><body>"
        + _header(results)
        + changes_html(results)  # --baseline: first, before the fleet's tables
        + "<section id='detail' hidden></section>"  # near the top: a host's detail shows where one looks
        + _fleet(results, anchors)
        + _hosts(results, anchors)
        + register_html(results)  # --waivers: the exception register
        + "<noscript>Per-host detail needs JavaScript; "
        "results.json holds every record.</noscript>" + "<script type='application/json' id='cases'>"
    )
    yield from _detail_data(results)
    yield f"</script><script>{SCRIPT}</script></body></html>\n"
