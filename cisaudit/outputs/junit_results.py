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

from cisaudit.model.verdict import Check
from cisaudit.outputs.junit import classname, testcase
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


def iter_junit(results: RunResults, tests: SuiteTests) -> Iterator[str]:
    counts: Counter[str] = Counter(tests=len(results.cases))
    counts.update(kind for case in results.cases if (kind := junit_outcome(case)))
    info = results.info
    stamp = dt.datetime.fromtimestamp(info.started).astimezone().isoformat()
    suite = (
        f'<testsuite name="pytest" errors="{counts["errors"]}" failures="{counts["failures"]}" '
        f'skipped="{counts["skipped"]}" tests="{counts["tests"]}" time="{info.finished - info.started:.3f}" '
        f'timestamp="{stamp}" hostname="{platform.node()}">'
    )
    yield '<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">' + suite
    for cases in results.by_host.values():
        for record in cases:
            function = tests.function(record)
            nodeid = f"{tests.file}::{function}"
            name = tests.case_name(nodeid, record.host, record.control_id, record.check)
            yield testcase(record, classname(nodeid, record.host), name, tests.file, tests.lines.get(function, 0))
    yield "</testsuite></testsuites>"
