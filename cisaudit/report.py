"""Report hooks: compliance columns and evidence in the HTML report, a per-host summary on
top, and terminal lines. Works under xdist: everything rides on report.user_properties."""

from __future__ import annotations

from collections import defaultdict
from html import escape

import pytest

COLUMNS = ("control", "title", "level", "host", "check", "verdict", "evidence")


def _props(report: pytest.TestReport) -> dict[str, str]:
    return dict(getattr(report, "user_properties", ()))


def _decides(report: pytest.TestReport, props: dict[str, str]) -> bool:
    """The report that carries a case's verdict: setup for errors, call otherwise."""
    return "verdict" in props and report.when == ("setup" if props["verdict"] == "error" else "call")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(ComplianceTally(), "cisaudit-tally")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = (yield).get_result()
    props = dict(item.user_properties)
    if not _decides(report, props):
        return
    evidence = props.get("evidence", "")
    body = escape(props.get("summary", "") + ("\n\n" + evidence if evidence else ""))
    report.extras = [*getattr(report, "extras", []),
                     {"name": "Evidence", "format_type": "html", "extension": "html",
                      "content": f"<pre>{body}</pre>", "mime_type": None}]


class ComplianceTally:
    """Verdicts, remote commands and changes per host, gathered on the controller."""

    def __init__(self) -> None:
        self.verdicts: dict[tuple[str, str, str], str] = {}
        self.commands: dict[str, int] = defaultdict(int)
        self.changes: dict[str, list[str]] = defaultdict(list)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = _props(report)
        if not _decides(report, props):
            return
        host = props["host"]
        self.commands[host] = max(self.commands[host], int(props.get("remote_commands", 0)))
        if props.get("change"):
            self.changes[host].append(props["change"])
        self.verdicts[(host, props["control_id"], props["check"])] = props["verdict"]


def _tally(config: pytest.Config) -> ComplianceTally:
    return config.pluginmanager.get_plugin("cisaudit-tally")


def host_summary(verdicts: dict) -> dict[str, dict[str, int]]:
    per_host: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (host, _control, _check), status in verdicts.items():
        per_host[host][status] += 1
    return per_host


def _compliance(counts: dict[str, int]) -> str:
    applicable = counts.get("pass", 0) + counts.get("fail", 0)
    return f"{100 * counts.get('pass', 0) / applicable:.0f}%" if applicable else "n/a"


def pytest_html_results_summary(prefix: list, summary: list, postfix: list, session: pytest.Session) -> None:
    tally = _tally(session.config)
    rows = []
    for host, counts in sorted(host_summary(tally.verdicts).items()):
        changes = "<br>".join(escape(c) for c in tally.changes.get(host, [])) or "none"
        rows.append(
            f"<tr><td>{escape(host)}</td><td>{counts.get('pass', 0)}</td><td>{counts.get('fail', 0)}</td>"
            f"<td>{counts.get('not-applicable', 0)}</td><td>{counts.get('error', 0)}</td>"
            f"<td>{_compliance(counts)}</td><td>{tally.commands.get(host, 0)}</td><td>{changes}</td></tr>")
    prefix.append(
        "<h2>Compliance per host</h2><table id='host-summary' border='1' cellpadding='4'>"
        "<tr><th>host</th><th>passed</th><th>failed</th><th>not applicable</th><th>errors</th>"
        "<th>compliance</th><th>remote commands</th><th>changes</th></tr>" + "".join(rows) + "</table>"
        "<p>compliance = passed / (passed + failed); not applicable and errors are excluded; "
        "any error or failure makes the run fail.</p>")


def pytest_html_results_table_header(cells: list) -> None:
    cells[1:1] = [f'<th class="sortable" data-column-type="{c}">{c.capitalize()}</th>' for c in COLUMNS]


def pytest_html_results_table_row(report: pytest.TestReport, cells: list) -> None:
    props = _props(report)
    values = [props.get("control_id", ""), props.get("title", ""), props.get("level", ""),
              props.get("host", ""), props.get("check", ""), props.get("verdict", ""),
              props.get("summary", "")]
    cells[1:1] = [f'<td class="col-{c}">{escape(v)}</td>' for c, v in zip(COLUMNS, values, strict=True)]


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    tally = _tally(config)
    if not tally.verdicts:
        return
    terminalreporter.write_sep("-", "compliance per host")
    for host, counts in sorted(host_summary(tally.verdicts).items()):
        terminalreporter.write_line(
            f"{host}: {counts.get('pass', 0)} passed, {counts.get('fail', 0)} failed, "
            f"{counts.get('not-applicable', 0)} not applicable, {counts.get('error', 0)} errors, "
            f"compliance {_compliance(counts)}, remote commands {tally.commands.get(host, 0)}")
