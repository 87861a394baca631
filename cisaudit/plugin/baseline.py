"""--baseline FILE and --fail-on: this run against an earlier run's results.json (README "Baseline
delta"). The baseline is read on the controller at configure time (a bad file is a usage error,
exit 4, before any host is touched); report.py asks `attach` for the delta and `exit_status` for
the exit code."""

from __future__ import annotations

import pytest
from pytest import TerminalReporter

from cisaudit.model.delta import BaselineInfo, Delta, FailOn, StatusTable
from cisaudit.outputs.baseline import BaselineError, load_baseline
from cisaudit.outputs.delta_report import delta_of, terminal_lines
from cisaudit.outputs.results import RunResults
from cisaudit.outputs.results_json import SCHEMA_VERSION

BASELINE_KEY = pytest.StashKey[tuple[StatusTable, BaselineInfo]]()
DELTA_KEY = pytest.StashKey[Delta]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cisaudit")
    group.addoption(
        "--baseline",
        default=None,
        metavar="RESULTS_JSON",
        help="an earlier run's results.json: class every check (new failure, still failing, fixed, new host, "
        "host gone, regresses at next boot, waiver expired) in every output",
    )
    group.addoption(
        "--fail-on",
        default=FailOn.ANY.value,
        help="any (default): any unwaived failure or error fails the run; new: with --baseline, only new "
        "failures, new hosts' failures and newly expired waivers do",
    )


@pytest.hookimpl(trylast=True)  # after cisaudit.plugin's own usage errors
def pytest_configure(config: pytest.Config) -> None:
    fail_on = config.getoption("fail_on", FailOn.ANY)
    if fail_on not in set(FailOn):
        raise pytest.UsageError(f"--fail-on {fail_on!r}: give any or new")
    path = config.getoption("baseline", None)
    if path is None or hasattr(config, "workerinput"):
        return
    if not path.strip():
        raise pytest.UsageError("--baseline is empty (an unset variable?): give an earlier results.json")
    try:
        config.stash[BASELINE_KEY] = load_baseline(path, SCHEMA_VERSION)
    except BaselineError as exc:
        raise pytest.UsageError(f"--baseline: {path}: {exc}") from None


def attach(config: pytest.Config, results: RunResults) -> RunResults:
    """results with its delta against the baseline (computed once per run), if --baseline was given."""
    if BASELINE_KEY not in config.stash:
        return results
    if DELTA_KEY not in config.stash:
        config.stash[DELTA_KEY] = delta_of(results.cases, *config.stash[BASELINE_KEY])
    results.delta = config.stash[DELTA_KEY]
    return results


def exit_status(session: pytest.Session, results: RunResults, unshown: int) -> None:
    """--fail-on=new: a run whose failures are all known from the baseline passes. `unshown`: failed
    tests that are not the suite's cases (a user's own test), which always fail the run."""
    if session.config.getoption("fail_on") != FailOn.NEW or results.delta is None:
        return
    if session.exitstatus == pytest.ExitCode.TESTS_FAILED and not unshown and not results.delta.fails_run():
        session.exitstatus = pytest.ExitCode.OK


def summary(terminalreporter: TerminalReporter, config: pytest.Config) -> None:
    """One line per class with its count."""
    delta = config.stash.get(DELTA_KEY, None)
    if delta is None:
        return
    terminalreporter.write_sep("-", "baseline delta")
    for line in terminal_lines(delta):
        terminalreporter.write_line(line)
