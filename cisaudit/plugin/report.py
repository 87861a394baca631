"""Report hooks: the compliance report, results.json and XCCDF (written at session end), compliance
columns and evidence in pytest-html's report with a per-host summary on top, and terminal lines.
Works under xdist: everything rides on report.user_properties."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Generator, Iterable
from dataclasses import replace
from html import escape
from pathlib import Path
from typing import Any

import pytest
from _pytest.terminal import TerminalReporter

from cisaudit.model.catalogue import DEFAULT_VERSION, benchmark
from cisaudit.outputs.compliance_html import render_html
from cisaudit.outputs.junit import CaseSpool
from cisaudit.outputs.record import CASES_PROPERTY, CaseRecord, decode_records
from cisaudit.outputs.results import RunInfo, RunResults, command_line, commit, describe_mode, tool_version
from cisaudit.outputs.results_json import iter_json
from cisaudit.outputs.xccdf import iter_xccdf
from cisaudit.plugin import aggregated, audit_keys
from cisaudit.plugin.cases import case_name

COLUMNS = ("control", "title", "level", "host", "check", "verdict", "evidence")


def _record(report: pytest.TestReport, started: float = 0.0) -> CaseRecord | None:
    """The case record this report decides (CaseRecord.decided_by), or None."""
    props = getattr(report, "user_properties", ())
    if not CaseRecord.in_properties(props):
        return None
    record = CaseRecord.from_properties(props, started or report.start, report.stop)
    return record if report.when == record.decided_by else None


def pytest_configure(config: pytest.Config) -> None:
    junit = config.getoption("xmlpath", None)
    spool = CaseSpool(Path(junit)) if junit and aggregated(config) and not hasattr(config, "workerinput") else None
    config.pluginmanager.register(ComplianceTally(spool), "cisaudit-tally")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    report = (yield).get_result()
    if report.when == "teardown":  # the reports have an aggregated item's records now; the item keeps none
        item.user_properties[:] = [p for p in item.user_properties if p[0] != CASES_PROPERTY]
    record = _record(report)
    if record is None:
        return
    body = escape(record.summary + ("\n\n" + record.evidence if record.evidence else ""))
    report.extras = [
        *getattr(report, "extras", []),
        {
            "name": "Evidence",
            "format_type": "html",
            "extension": "html",
            "content": f"<pre>{body}</pre>",
            "mime_type": None,
        },
    ]


class ComplianceTally:
    """Every case's result, remote commands and probe facts per host, gathered on the controller.
    An aggregated item's records (plugin/aggregate.py) are taken off its reports once read, and
    written to JUnit as their own testcases (outputs/junit.py)."""

    def __init__(self, junit: CaseSpool | None = None) -> None:
        self.started = time.time()
        self.cases: list[CaseRecord] = []
        self.commands: dict[str, int] = defaultdict(int)
        self.facts: dict[str, dict[str, object]] = {}
        self.junit = junit
        self._setup_start: dict[str, float] = {}

    @pytest.hookimpl(tryfirst=True)  # before junitxml and pytest-html keep the reports
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "setup":  # the verdict is computed in setup: a case starts there
            self._setup_start[report.nodeid] = report.start
        batch = dict(report.user_properties).get(CASES_PROPERTY)
        if batch is not None:
            report.user_properties = [p for p in report.user_properties if p[0] != CASES_PROPERTY]
            # An aggregated item errors in setup when a case errors (fixtures.py), else its call decides.
            if report.when == "call" or report.failed:
                records = decode_records(str(batch))
                self._add(records)
                if self.junit is not None:
                    file, line, _ = report.location
                    named = [(r, case_name(report.nodeid, r.host, r.control_id, r.check)) for r in records]
                    self.junit.add(named, report.nodeid, file, line or 0)
            return
        record = _record(report, self._setup_start.get(report.nodeid, 0.0))
        if record is not None:
            self._setup_start.pop(report.nodeid, None)
            self._add([record])

    def _add(self, records: list[CaseRecord]) -> None:
        for record in records:
            self.commands[record.host] = max(self.commands[record.host], record.remote_commands)
            if record.host_facts:
                self.facts[record.host] = json.loads(record.host_facts)
            self.cases.append(replace(record, host_facts="") if record.host_facts else record)

    def results(self, config: pytest.Config) -> RunResults:
        option = config.getoption
        info = RunInfo(
            command_line(config.invocation_params.args),
            describe_mode(
                option("remediate", False),
                option("backout", False),
                option("dry_run", False),
                option("require_all", False),
            ),
            option("require_all", False),
            self.started,
            time.time(),
            tool_version(),
            commit(),
            benchmark(option("benchmark", DEFAULT_VERSION)),
        )
        return RunResults(info, self.cases, self.facts, dict(self.commands))


def _tally(config: pytest.Config) -> ComplianceTally:
    tally = config.pluginmanager.get_plugin("cisaudit-tally")
    assert isinstance(tally, ComplianceTally)  # registered in pytest_configure
    return tally


def _compliance(counts: Counter[str]) -> str:
    applicable = counts["pass"] + counts["fail"]
    return f"{100 * counts['pass'] / applicable:.0f}%" if applicable else "n/a"


@pytest.hookimpl(trylast=True)  # after junitxml wrote its file: the cases of aggregated items go in it
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    tally = _tally(config)
    if hasattr(config, "workerinput") or not tally.cases:  # xdist workers: the controller writes
        return
    if tally.junit is not None and Path(config.getoption("xmlpath")).exists():
        tally.junit.merge_into(Path(config.getoption("xmlpath")))
    results = tally.results(config)
    writers: dict[str, Callable[[RunResults], Iterable[str]]] = {
        "compliance_report": lambda r: (render_html(r),),
        "results_json": iter_json,  # in pieces: at fleet size the whole text would double the peak
        "xccdf": iter_xccdf,
    }
    for option, render in writers.items():
        path = config.getoption(option)
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            with Path(path).open("w", encoding="utf-8") as out:
                out.writelines(render(results))


def pytest_html_results_summary(
    prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
) -> None:
    tally = _tally(session.config)
    results = tally.results(session.config)
    rows = []
    for host in results.hosts:
        counts = results.counts(host)
        changes = "<br>".join(escape(c) for c in results.changes(host)) or "none"
        rows.append(
            f"<tr><td>{escape(host)}</td><td>{counts['pass']}</td><td>{counts['fail']}</td>"
            f"<td>{counts['waived']}</td><td>{counts['not-applicable']}</td><td>{counts['error']}</td>"
            f"<td>{_compliance(counts)}</td><td>{tally.commands.get(host, 0)}</td><td>{changes}</td></tr>"
        )
    prefix.append(
        "<h2>Compliance per host</h2><table id='host-summary' border='1' cellpadding='4'>"
        "<tr><th>host</th><th>passed</th><th>failed</th><th>waived</th><th>not applicable</th><th>errors</th>"
        "<th>compliance</th><th>remote commands</th><th>changes</th></tr>" + "".join(rows) + "</table>"
        "<p>compliance = passed / (passed + failed); waived, not applicable and errors are excluded; "
        "any error or unwaived failure makes the run fail. The compliance report is "
        "reports/compliance.html (--compliance-report).</p>"
    )


def pytest_html_results_table_header(cells: list[str]) -> None:
    cells[1:1] = [f'<th class="sortable" data-column-type="{c}">{c.capitalize()}</th>' for c in COLUMNS]


def pytest_html_results_table_row(report: pytest.TestReport, cells: list[str]) -> None:
    props = dict(getattr(report, "user_properties", ()))  # any phase's report: the row's
    values = [
        str(props.get(name, "")) for name in ("control_id", "title", "level", "host", "check", "verdict", "summary")
    ]
    cells[1:1] = [f'<td class="col-{c}">{escape(v)}</td>' for c, v in zip(COLUMNS, values, strict=True)]


def pytest_terminal_summary(terminalreporter: TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    tally = _tally(config)
    if not tally.cases:
        return
    results = tally.results(config)
    terminalreporter.write_sep("-", "compliance per host")
    keys = audit_keys(config)
    meaning = "an access recorded with any key counts" if keys.any else "a rule must give one of them"
    terminalreporter.write_line(f"audit keys: {keys.mode} ({meaning})")
    for host in results.hosts:
        counts = results.counts(host)
        terminalreporter.write_line(
            f"{host}: {counts['pass']} passed, {counts['fail']} failed, {counts['waived']} waived, "
            f"{counts['not-applicable']} not applicable, {counts['error']} errors, "
            f"compliance {_compliance(counts)}, remote commands {tally.commands.get(host, 0)}"
        )
    for cid, date, why in results.expired_waivers():
        terminalreporter.write_line(f"expired waiver ignored: {cid} (expired {date}): {why}", yellow=True)
    for option in ("compliance_report", "results_json", "xccdf"):
        if config.getoption(option) and not hasattr(config, "workerinput"):
            terminalreporter.write_line(f"wrote {config.getoption(option)}")
