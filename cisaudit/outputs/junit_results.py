"""JUnit written from a RunResults (a merge of shards, `cisaudit.plugin.merge`): the file a single
run writes with pytest's junitxml, junit_family xunit1, each case its own testcase as in
`junit.testcase`, hosts in the results' order. Each case's test function, file and line are the
suite's (`SuiteTests`); what results.json does not keep is rebuilt (results_read.py)."""

from __future__ import annotations

import datetime as dt
import platform
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from cisaudit.model.verdict import Check, Status
from cisaudit.outputs.item_verdict import AGGREGATED, ALL, item_verdict
from cisaudit.outputs.junit import PUBLICATION_FILE, classname, item_testcase, module_classname, testcase
from cisaudit.outputs.record import HOST_CONTROL, CaseRecord
from cisaudit.outputs.results import RunResults
from cisaudit.outputs.status import junit_outcome


@dataclass(frozen=True)
class SuiteTests:
    """Where the suite's test functions are: the file (relative to pytest's rootdir, as in a
    node id) and each function's line as pytest reports it (0-based)."""

    file: str
    lines: Mapping[str, int]
    case_name: Callable[[str, str, str, str], str]  # (node id, host, control id, check) -> test name

    def function(self, record: CaseRecord) -> str:
        if record.check == Check.BACKOUT:
            return "test_backout"
        return "test_host" if record.control_id == HOST_CONTROL else "test_control"


def iter_junit(results: RunResults, tests: SuiteTests, compact: bool = False) -> Iterator[str]:
    """The file, hosts in the results' order. `compact`: as a run above --aggregate-above without
    --fleet-reports writes it, one testcase per host and aggregated test function (outputs/item_verdict.py);
    else one per case. Publication errors last, each its own testcase (outputs/junit.py JunitOutput)."""
    counts: Counter[str] = Counter()  # a first pass: the suite's head comes first, the cases stay unrendered
    for kind, _ in _testcases(results, tests, compact, render=False):
        counts.update(("tests", kind) if kind else ("tests",))
    info = results.info
    stamp = dt.datetime.fromtimestamp(info.started).astimezone().isoformat()
    suite = (
        f'<testsuite name="pytest" errors="{counts["errors"]}" failures="{counts["failures"]}" '
        f'skipped="{counts["skipped"]}" tests="{counts["tests"]}" time="{info.finished - info.started:.3f}" '
        f'timestamp="{stamp}" hostname="{platform.node()}">'
    )
    yield '<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">' + suite
    yield from (text for _, text in _testcases(results, tests, compact, render=True))
    yield "</testsuite></testsuites>"


def _testcases(results: RunResults, tests: SuiteTests, compact: bool, render: bool) -> Iterator[tuple[str, str]]:
    """(JUnit outcome or "", the testcase if `render`) of every host, then of each publication error."""
    for cases in results.by_host.values():
        yield from _host_testcases(cases, tests, compact, render)
    for record in (r for r in results.cases if r.check == Check.PUBLICATION):
        name = f"publication[{record.host}]"
        yield (
            junit_outcome(record),
            testcase(record, classname(PUBLICATION_FILE, record.host), name, "", 0) if render else "",
        )


def _host_testcases(
    cases: list[CaseRecord], tests: SuiteTests, compact: bool, render: bool
) -> Iterator[tuple[str, str]]:
    """One host's testcases: per case, or per aggregated item (`compact`)."""
    items: dict[str, list[CaseRecord]] = {}
    for record in cases:
        if record.check == Check.PUBLICATION:
            continue
        function = tests.function(record)
        if compact and function in AGGREGATED:
            items.setdefault(function, []).append(record)
            continue
        for function_of_item, records in items.items():  # the host's items run before its own cases'
            yield _item_testcase(function_of_item, records, tests, render)
        items.clear()
        if not render:
            yield junit_outcome(record), ""
            continue
        nodeid = f"{tests.file}::{function}"
        name = tests.case_name(nodeid, record.host, record.control_id, record.check)
        line = tests.lines.get(function, 0)
        yield junit_outcome(record), testcase(record, classname(nodeid, record.host), name, tests.file, line)
    for function, records in items.items():
        yield _item_testcase(function, records, tests, render)


def _item_testcase(function: str, records: list[CaseRecord], tests: SuiteTests, render: bool) -> tuple[str, str]:
    """The testcase pytest writes for the host's aggregated item of `function`."""
    host = records[0].host
    shown = item_verdict(host, records)
    if not render:
        return _KIND.get(shown.status, ""), ""
    nodeid = f"{tests.file}::{function}"
    name = tests.case_name(nodeid, host, HOST_CONTROL if function == "test_host" else ALL, ALL)
    seconds = max(max(r.finished for r in records) - min(r.started for r in records), 0.0)
    text = item_testcase(
        shown,
        module_classname(nodeid),
        name,
        tests.file,
        tests.lines.get(function, 0),
        seconds,
    )
    return _KIND.get(shown.status, ""), text


_KIND = {Status.ERROR: "errors", Status.FAIL: "failures", Status.NOT_APPLICABLE: "skipped"}
