"""Report hooks: the compliance report, results.json and XCCDF (written at session end), compliance
columns and evidence in pytest-html's report with a per-host summary on top, and terminal lines.
Works under xdist: everything rides on report.user_properties."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Generator
from dataclasses import replace
from html import escape
from typing import Any

import pytest
from pytest import TerminalReporter

from cisaudit.host.hostspec import redact_args
from cisaudit.model.catalogue import benchmark
from cisaudit.outputs import registry
from cisaudit.outputs.files import OutputError
from cisaudit.outputs.junit import CaseSpool, JunitOutput, capped, capped_properties, classname, failure_text
from cisaudit.outputs.record import CASES_PROPERTY, CaseRecord, decode_records
from cisaudit.outputs.registry import Output, Publisher
from cisaudit.outputs.results import Overall, RunInfo, RunResults, command_line, commit, describe_mode, tool_version
from cisaudit.outputs.status import compliance
from cisaudit.outputs.terminal import change_lines, error_lines, failure_blocks, overall_line
from cisaudit.outputs.text import terminal_safe
from cisaudit.outputs.waiver_register import unmatched_lines
from cisaudit.plugin import HOSTS_KEY, WAIVERS_KEY, aggregated, audit_keys, baseline
from cisaudit.plugin.aggregate import case_of
from cisaudit.plugin.cases import case_name, host_of_nodeid
from cisaudit.plugin.pytest_private import set_junit_classname
from cisaudit.publish.stream import HostPublisher, HostStream

UNWRITTEN_KEY = pytest.StashKey[dict[str, str]]()  # output name -> why it was not written
RESULTS_KEY = pytest.StashKey[RunResults]()  # what the outputs were made from (publication errors included)
OUTPUTS_KEY = pytest.StashKey[tuple[list[Publisher], list[Output]]]()  # built at configure (outputs/registry.py)
COLUMNS = ("control", "title", "level", "host", "check", "verdict", "evidence")


def _record(report: pytest.TestReport, started: float = 0.0) -> CaseRecord | None:
    """The case record this report decides (CaseRecord.decided_by), or None."""
    props = getattr(report, "user_properties", ())
    if not CaseRecord.in_properties(props):
        return None
    record = CaseRecord.from_properties(props, started or report.start, report.stop)
    return record if report.when == record.decided_by else None


HTML_OFF_KEY = pytest.StashKey[str]()  # pytest-html's path when it is off above --aggregate-above


def _fleet_html(config: pytest.Config, wanted: bool) -> None:
    """Above --aggregate-above, pytest-html's report (one row per item, 30 MB at 10,000 hosts) only
    with --fleet-reports: its report object is unregistered before the run, so it writes nothing."""
    path = config.getoption("htmlpath", None)
    if wanted or not path:
        return
    for plugin in config.pluginmanager.get_plugins():
        if type(plugin).__module__.startswith("pytest_html.") and hasattr(plugin, "pytest_sessionfinish"):
            config.pluginmanager.unregister(plugin)
            config.stash[HTML_OFF_KEY] = str(path)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Every output's options, from the registry (outputs/registry.py)."""
    reports = parser.getgroup("cisaudit-reports", "cisaudit outputs (an empty PATH writes none)")
    for option in registry.options():
        shape: dict[str, Any] = {"action": option.action} if option.action else {"metavar": option.metavar}
        shape |= {k: v for k, v in (("nargs", option.nargs), ("const", option.const), ("type", option.type)) if v}
        reports.addoption(option.flag, default=option.default, help=option.help, **shape)


@pytest.hookimpl(trylast=True)  # after pytest-html made its report object (_fleet_html)
def pytest_configure(config: pytest.Config) -> None:
    built: tuple[list[Publisher], list[Output]] = ([], [])
    if not hasattr(config, "workerinput"):  # the controller publishes and writes
        settings = registry.Settings(lambda dest: config.getoption(dest, None), aggregated(config))
        built = registry.build(settings)
        _fleet_html(config, registry.fleet_reports(settings))
    config.stash[OUTPUTS_KEY] = built
    spool = next((o.spool for o in built[1] if isinstance(o, JunitOutput)), None)
    tally = ComplianceTally(spool, config)
    tally.stream = _host_stream(config, built[0], tally)
    config.pluginmanager.register(tally, "cisaudit-tally")


def _host_stream(config: pytest.Config, publishers: list[Publisher], tally: ComplianceTally) -> HostStream | None:
    """Each host to the publishers that take one host at a time, as soon as its tests are over
    (publish/stream.py); not under xdist, whose workers' reports interleave hosts."""
    early = [p for p in publishers if isinstance(p, HostPublisher)]
    if not early or config.getoption("numprocesses", None):
        return None
    return HostStream(early, lambda: tally.run_info(config))


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
        self.stream: HostStream | None = None  # each host's records to the publishers, as the run goes

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected = self.deselected or any(case_of(item) is not None for item in items)

    @property
    def ran(self) -> bool:
        """Whether this run is the suite's: it has cases, or its selection left them all out
        (then the outputs say NOTHING CHECKED instead of an earlier run's files staying), or it is
        a --shard whose share of the fleet is empty (its outputs are still a shard's to merge)."""
        return bool(self.cases) or self.deselected or bool(self.config and self.config.getoption("shard", None))

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
        if self.config is not None:
            set_junit_classname(self.config, report, classname(report.nodeid, host_of_nodeid(report.nodeid)))

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
            if self.stream is not None:
                self.stream.add(self.cases[-1])

    def results(self, config: pytest.Config) -> RunResults:
        waivers = tuple(config.stash.get(WAIVERS_KEY, {}).values())
        return RunResults(self.run_info(config), self.cases, self.facts, dict(self.commands), waivers=waivers)

    def run_info(self, config: pytest.Config) -> RunInfo:
        option = config.getoption
        return RunInfo(
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
            _given_hosts(config),
            benchmark=benchmark(option("benchmark")),
        )


def _given_hosts(config: pytest.Config) -> tuple[str, ...]:
    hosts: list[str] = config.stash.get(HOSTS_KEY, [])
    return tuple(hosts)


def _tally(config: pytest.Config) -> ComplianceTally:
    tally = config.pluginmanager.get_plugin("cisaudit-tally")
    assert isinstance(tally, ComplianceTally)  # registered in pytest_configure
    return tally


@pytest.hookimpl(trylast=True)  # after junitxml wrote its file: the suite's cases go in it
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Publishers first (a host they fail for gets an ERROR record), then every file output."""
    config = session.config
    tally = _tally(config)
    if hasattr(config, "workerinput") or not tally.ran:  # xdist workers: the controller writes
        return
    if tally.stream is not None:
        tally.stream.close()  # the last host to the publishers too
    results = config.stash[RESULTS_KEY] = baseline.attach(config, tally.results(config))
    publishers, outputs = config.stash[OUTPUTS_KEY]
    published_ok = True
    for name, errors in registry.publish_all(publishers, results):
        registry.publication_errors(results, errors, name, time.time())
        published_ok = published_ok and not errors
    unwritten = config.stash[UNWRITTEN_KEY] = {}
    for output in outputs:
        try:
            output.write(results)
        except OutputError as exc:
            unwritten[output.name] = str(exc)
    baseline.exit_status(session, results, _unshown_failures(config, tally))
    if (unwritten or not published_ok) and session.exitstatus in (
        pytest.ExitCode.OK,
        pytest.ExitCode.NO_TESTS_COLLECTED,
    ):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # an output asked for is missing, or a host's publication


def _unshown_failures(config: pytest.Config, tally: ComplianceTally) -> int:
    """Failed or erred reports that carry no case of the suite (a user's test, a collection error)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    stats = getattr(reporter, "stats", {})
    return sum(1 for key in ("failed", "error") for r in stats.get(key, []) if id(r) not in tally.shown)


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
            f"<td>{compliance(counts)}</td><td>{tally.commands.get(host, 0)}</td><td>{changes}</td></tr>"
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
    results = config.stash.get(RESULTS_KEY, None) or tally.results(config)  # with publication errors
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
                f"compliance {compliance(counts)}, remote commands {tally.commands.get(host, 0)}"
            )
        )
    baseline.summary(terminalreporter, config)
    for line in unmatched_lines(results):
        write(terminal_safe(line), yellow=True)
    for cid, date, why in results.expired_waivers():
        write(f"expired waiver ignored: {cid} (expired {date}): {why}", yellow=True)
    colour = {Overall.COMPLIANT: "green", Overall.NOT_COMPLIANT: "red", Overall.ERRORS: "red"}.get(
        results.overall, "yellow"
    )
    write(overall_line(results), bold=True, **{colour: True})
    _written_lines(config, write)


def _written_lines(config: pytest.Config, write: Callable[..., None]) -> None:
    """Per file output: the file written, or why not (its option named)."""
    unwritten = config.stash.get(UNWRITTEN_KEY, {})
    for output in config.stash.get(OUTPUTS_KEY, ([], []))[1]:
        flag = next((o.flag for o in registry.entry(output.name).options), output.name)
        if output.name in unwritten:
            write(f"{flag}: {unwritten[output.name]}", red=True)
        elif isinstance(output, registry.FileOutput | registry.XccdfOutput):
            write(f"wrote {output.path}")
            if isinstance(output, registry.XccdfOutput) and output.per_host:
                write(f"wrote {registry.host_xccdf_dir(output.path)}/ (one XCCDF file per host)")
    skipped = [f"{flag} {config.stash[key]}" for flag, key in [("--html", HTML_OFF_KEY)] if key in config.stash]
    skipped += [
        f"the per-host XCCDF files ({registry.host_xccdf_dir(o.path)}/)"
        for o in config.stash.get(OUTPUTS_KEY, ([], []))[1]
        if isinstance(o, registry.XccdfOutput) and not o.per_host
    ]
    if skipped:
        write(f"not written above --aggregate-above (--fleet-reports writes them): {', '.join(skipped)}")
