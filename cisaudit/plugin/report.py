"""Report hooks: the compliance report, results.json and XCCDF (written at session end), compliance
columns and evidence in pytest-html's report with a per-host summary on top, and terminal lines.
Works under xdist: everything rides on report.user_properties."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Generator, Iterable
from dataclasses import replace
from html import escape
from pathlib import Path
from typing import Any

import pytest
from _pytest.junitxml import xml_key
from _pytest.terminal import TerminalReporter

from cisaudit.host.hostspec import redact_args
from cisaudit.model.catalogue import DEFAULT_VERSION, benchmark
from cisaudit.outputs.compliance_html import render_html
from cisaudit.outputs.files import replaced
from cisaudit.outputs.junit import CaseSpool, capped, capped_properties, classname, failure_text
from cisaudit.outputs.record import CASES_PROPERTY, CaseRecord, decode_records
from cisaudit.outputs.results import Overall, RunInfo, RunResults, command_line, commit, describe_mode, tool_version
from cisaudit.outputs.results_json import iter_json
from cisaudit.outputs.terminal import change_lines, error_lines, failure_blocks, overall_line
from cisaudit.outputs.text import terminal_safe
from cisaudit.outputs.xccdf import iter_xccdf
from cisaudit.plugin import HOSTS_KEY, aggregated, audit_keys
from cisaudit.plugin.aggregate import case_of
from cisaudit.plugin.cases import case_name, host_of_nodeid
from cisaudit.plugin.publish import junit_spool, publication_errors

UNWRITTEN_KEY = pytest.StashKey[dict[str, str]]()  # output option -> why it was not written
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
    config.pluginmanager.register(ComplianceTally(spool, config), "cisaudit-tally")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    report = (yield).get_result()
    if report.when == "teardown":  # the reports have an aggregated item's records now; the item keeps none
        item.user_properties[:] = [p for p in item.user_properties if p[0] != CASES_PROPERTY]
    if report.skipped and isinstance(report.longrepr, tuple) and CaseRecord.in_properties(item.user_properties):
        path, line, reason = report.longrepr  # the SKIPPED line and JUnit's message: host text
        report.longrepr = (path, line, terminal_safe(capped(reason)))
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

    def __init__(self, junit: CaseSpool | None = None, config: pytest.Config | None = None) -> None:
        self.started = time.time()
        self.cases: list[CaseRecord] = []
        self.commands: dict[str, int] = defaultdict(int)
        self.facts: dict[str, dict[str, object]] = {}
        self.junit = junit
        self.config = config
        self._setup_start: dict[str, float] = {}
        self.shown: set[int] = set()  # id() of the failed reports whose cases the terminal shows itself
        self.deselected = False  # the selection left every case of the suite out: still "nothing checked"

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected = self.deselected or any(case_of(item) is not None for item in items)

    @property
    def ran(self) -> bool:
        """Whether this run is the suite's: it has cases, or its selection left them all out
        (then the outputs say NOTHING CHECKED instead of an earlier run's files staying)."""
        return bool(self.cases) or self.deselected

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
                self.shown.add(id(report))
                if self.junit is not None:
                    file, line, _ = report.location
                    named = [(r, case_name(report.nodeid, r.host, r.control_id, r.check)) for r in records]
                    self.junit.add(named, report.nodeid, file, line or 0)
            return
        if CaseRecord.in_properties(report.user_properties):
            self._junit_case(report)
        record = _record(report, self._setup_start.get(report.nodeid, 0.0))
        if record is not None:
            self._setup_start.pop(report.nodeid, None)
            self._add([record])
            if report.failed:  # JUnit's message and text: the record's, capped
                report.longrepr = failure_text(record)
                self.shown.add(id(report))

    def _junit_case(self, report: pytest.TestReport) -> None:
        """A case's own testcase: capped properties, the host's classname (outputs/junit.py)."""
        report.user_properties = capped_properties(list(report.user_properties))
        junitxml = self.config.stash.get(xml_key, None) if self.config else None  # pytest's, with --junitxml
        if junitxml is not None:  # as record_xml_attribute does, without its warning per test
            name = classname(report.nodeid, host_of_nodeid(report.nodeid))
            junitxml.node_reporter(report).add_attribute("classname", name)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: TerminalReporter) -> Generator[None]:
        """pytest's FAILURES, ERRORS and short summary without the suite's cases: report.py prints
        each failure once, headed HOST | CONTROL | CHECK, and one line per host for its errors."""
        stats = terminalreporter.stats
        kept = {key: list(stats.get(key, [])) for key in ("failed", "error")}
        for key, reports in kept.items():
            if key in stats:
                stats[key] = [r for r in reports if id(r) not in self.shown]
        try:
            return (yield)
        finally:
            for key, reports in kept.items():
                if key in stats:
                    stats[key] = reports

    def _add(self, records: list[CaseRecord]) -> None:
        for record in records:
            self.commands[record.host] = max(self.commands[record.host], record.remote_commands)
            if record.host_facts:
                self.facts[record.host] = json.loads(record.host_facts)
            self.cases.append(replace(record, host_facts="") if record.host_facts else record)

    def results(self, config: pytest.Config) -> RunResults:
        option = config.getoption
        info = RunInfo(
            command_line(redact_args(config.invocation_params.args)),
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
            _given_hosts(config),
        )
        return RunResults(info, self.cases, self.facts, dict(self.commands))


def _given_hosts(config: pytest.Config) -> tuple[str, ...]:
    hosts: list[str] = config.stash.get(HOSTS_KEY, [])
    return tuple(hosts)


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
    if hasattr(config, "workerinput") or not tally.ran:  # xdist workers: the controller writes
        return
    published = publication_errors(config, tally.results(config))  # AWS, before the writers (plugin/publish.py)
    if published:
        tally.junit = junit_spool(config, tally.junit, published)
        tally._add(published)
        if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if tally.junit is not None and Path(config.getoption("xmlpath")).exists():
        tally.junit.merge_into(Path(config.getoption("xmlpath")))
    results = tally.results(config)
    writers: dict[str, Callable[[RunResults], Iterable[str]]] = {
        "compliance_report": lambda r: (render_html(r),),
        "results_json": iter_json,  # in pieces: at fleet size the whole text would double the peak
        "xccdf": iter_xccdf,
    }
    unwritten = config.stash[UNWRITTEN_KEY] = {}
    for option, render in writers.items():
        path = config.getoption(option)
        if path:
            try:
                _write(Path(path), render(results))
            except OSError as exc:  # checked at start (plugin/preflight.py); a full disk still ends here
                unwritten[option] = f"cannot write {path}: {exc.strerror or exc}"
                with contextlib.suppress(OSError):  # no truncated file for a consumer to read
                    Path(path).unlink()
    if config.getoption("xccdf") and "xccdf" not in unwritten:
        directory = host_xccdf_dir(Path(config.getoption("xccdf")))
        try:
            _write_host_xccdf(directory, results)
        except OSError as exc:
            unwritten["xccdf"] = f"cannot write {directory}/: {exc.strerror or exc}"
    if unwritten and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # an output asked for is missing


def _write(path: Path, pieces: Iterable[str]) -> None:
    with replaced(path) as out:
        out.writelines(pieces)


def host_xccdf_dir(xccdf: Path) -> Path:
    """reports/results.xccdf.xml -> reports/results.xccdf.hosts/: one XCCDF file per host."""
    return xccdf.with_name(xccdf.name.removesuffix(".xml") + ".hosts")


def _write_host_xccdf(directory: Path, results: RunResults) -> None:
    """HOST.xml per host (the host's `/`, `:` and `@` as `_`), an earlier run's files removed."""
    for old in directory.glob("*.xml") if directory.is_dir() else ():
        old.unlink()
    names: set[str] = set()
    for host in results.hosts:
        name = re.sub(r"[^A-Za-z0-9.-]+", "_", host).strip("_") or "host"
        while name in names:
            name += "_"
        names.add(name)
        _write(directory / f"{name}.xml", iter_xccdf(results, host))


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
        f"<p id='overall'><b>{escape(overall_line(results))}</b></p>"
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
    if not tally.ran:
        return
    results = tally.results(config)
    write = terminalreporter.write_line
    if config.option.tbstyle != "no":
        blocks = list(failure_blocks(results))
        if blocks:
            terminalreporter.write_sep("=", "failures (HOST | CONTROL | CHECK)", red=True)
        for head, lines in blocks:
            terminalreporter.write_sep("_", head, red=True, bold=True)
            for line in lines:
                write(line)
        errors = list(error_lines(results))
        if errors:
            terminalreporter.write_sep("=", "errors (one line per host and reason)", red=True)
        for line in errors:
            write(line, red=True)
    if config.getoption("remediate", False) or config.getoption("backout", False):
        dry = " (dry run: nothing was changed; the plan per host)" if config.getoption("dry_run", False) else ""
        terminalreporter.write_sep("-", f"change per host{dry}")
        for line in change_lines(results):
            write(line)
    terminalreporter.write_sep("-", "compliance per host")
    keys = audit_keys(config)
    meaning = "an access recorded with any key counts" if keys.any else "a rule must give one of them"
    terminalreporter.write_line(f"audit keys: {keys.mode} ({meaning})")
    for host in results.hosts:
        counts = results.counts(host)
        write(
            terminal_safe(
                f"{host}: {counts['pass']} passed, {counts['fail']} failed, {counts['waived']} waived, "
                f"{counts['not-applicable']} not applicable, {counts['error']} errors, "
                f"compliance {_compliance(counts)}, remote commands {tally.commands.get(host, 0)}"
            )
        )
    for cid, date, why in results.expired_waivers():
        write(f"expired waiver ignored: {cid} (expired {date}): {why}", yellow=True)
    colour = {Overall.COMPLIANT: "green", Overall.NOT_COMPLIANT: "red", Overall.ERRORS: "red"}.get(
        results.overall, "yellow"
    )
    write(overall_line(results), bold=True, **{colour: True})
    unwritten = config.stash.get(UNWRITTEN_KEY, {})
    for option in ("compliance_report", "results_json", "xccdf"):
        if option in unwritten:
            write(f"--{option.replace('_', '-')}: {unwritten[option]}", red=True)
        elif config.getoption(option) and not hasattr(config, "workerinput"):
            write(f"wrote {config.getoption(option)}")
    if config.getoption("xccdf") and "xccdf" not in unwritten and not hasattr(config, "workerinput"):
        write(f"wrote {host_xccdf_dir(Path(config.getoption('xccdf')))}/ (one XCCDF file per host)")
