"""JUnit for the suite's cases. The text a case puts in JUnit, capped (TEXT_CAP); its classname,
one per host (`classname`), so that a CI test view groups the cases by host.

The cases of aggregated items (cisaudit/plugin/aggregate.py) are written as they arrive, so that
memory does not grow with the fleet, then merged into the file pytest's junitxml wrote, in place
of the aggregated items' own testcases. Each testcase is what pytest writes for a case's own item
below the threshold (junit_family xunit1: name, classname, properties, outcome): the report hooks
give those the same capped text and classname (cisaudit/plugin/report.py).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO
from xml.sax.saxutils import escape, quoteattr

from cisaudit.model.verdict import Check, Status, Verdict
from cisaudit.outputs.files import OutputError, replaced, scratch
from cisaudit.outputs.record import CaseRecord
from cisaudit.outputs.results import RunResults
from cisaudit.outputs.status import junit_outcome

# Characters of one property value, and of a failure's, error's or skip's message and text; more is
# cut with a note (results.json and the compliance report keep the whole text). README "Outputs".
TEXT_CAP = 4096


# pytest's junitxml conventions for what it writes itself (_pytest/junitxml.py, pytest 9.2), so that a
# case of an aggregated item reads as its own item's testcase would; selftests/unit/test_pytest_private.py
# compares both with pytest's.
MESSAGE_BUDGET = 500  # characters of a failure's `message` attribute
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\u007e\u0080-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def bin_xml_escape(text: str) -> str:
    """Characters XML cannot hold (and DEL) as visible `#xAB` text, as pytest's junitxml writes them."""
    return _NOT_XML.sub(lambda m: f"#x{ord(m[0]):02X}" if ord(m[0]) <= 0xFF else f"#x{ord(m[0]):04X}", text)


def shorten_message(msg: str, budget: int = MESSAGE_BUDGET) -> str:
    """The `message` attribute as pytest's junitxml shortens it: whole lines within the budget, a
    note of what was left out (the element's text has it all)."""
    lines = msg.splitlines() or [""]
    kept: list[str] = []
    for line in lines:
        if kept and sum(len(k) + 1 for k in kept) + len(line) + 1 > budget:
            break
        kept.append(line)
    shortened = "\n".join(kept)
    cut = len(shortened) > budget
    shortened = shortened[:budget] + "..." if cut else shortened
    left = len(lines) - len(kept)
    if not left and not cut:
        return msg
    note = f"+{left} more line{'s' if left > 1 else ''}" if left else "truncated"
    return f"{shortened}\n[{note}; full report in element text]"


def capped(text: str, cap: int = TEXT_CAP) -> str:
    """`text`, or its first characters and how many more there were (results.json has them)."""
    if len(text) <= cap:
        return text
    kept = cap - 80  # the note fits in the rest
    return text[:kept] + f" [... {len(text) - kept} more characters; results.json has the whole text]"


def capped_properties(props: list[tuple[str, object]]) -> list[tuple[str, object]]:
    return [(name, capped(value) if isinstance(value, str) else value) for name, value in props]


def module_classname(nodeid: str) -> str:
    """`tests.test_cis_docker_audit`: the classname pytest gives a test function of the module."""
    return nodeid.partition("::")[0].removesuffix(".py").replace("/", ".")


def classname(nodeid: str, host: str) -> str:
    """`tests.test_cis_docker_audit.HOST`, the host's dots as `_` (CI views split a classname at dots)."""
    return module_classname(nodeid) + "." + host.replace(".", "_")


def failure_text(record: CaseRecord) -> str:
    """What a failing or erroring case's JUnit element says, capped: its summary, then its evidence."""
    return capped("\n".join(filter(None, (record.summary, record.evidence))))


@lru_cache(maxsize=1 << 16)  # a fleet repeats the same values across hosts
def _quoted(value: str) -> str:
    return quoteattr(bin_xml_escape(value))


def _attrs(**values: str) -> str:
    return "".join(f" {name}={_quoted(value)}" for name, value in values.items())


@lru_cache(maxsize=1 << 16)  # most of a case's properties are the same on every host
def _property(key: str, value: str) -> str:
    return f"<property{_attrs(name=key, value=capped(value))} />"


def testcase(record: CaseRecord, classname: str, name: str, file: str, line: int) -> str:
    """One case as a `<testcase>` element (text; characters XML cannot hold escaped as pytest does)."""
    seconds = f"{max(record.finished - record.started, 0):.3f}"
    parts = [f"<testcase{_attrs(classname=classname, name=name, file=file, line=str(line), time=seconds)}><properties>"]
    parts += [_property(key, value) for key, value in record.properties()]
    parts.append("</properties>")
    text = failure_text(record)
    kind = junit_outcome(record)
    if kind == "failures":
        parts.append(f"<failure{_attrs(message=shorten_message(text))}>{escape(bin_xml_escape(text))}</failure>")
    elif kind == "errors":
        message = shorten_message(f'failed on setup with "{text}"')  # as pytest's junitxml shortens it
        parts.append(f"<error{_attrs(message=message)}>{escape(bin_xml_escape(text))}</error>")
    elif kind == "skipped":
        summary = capped(record.summary if record.verdict != Status.FAIL else f"waived: {record.waiver}")
        body = escape(bin_xml_escape(f"{file}:{line}: {summary}"))
        parts.append(f"<skipped{_attrs(type='pytest.skip', message=summary)}>{body}</skipped>")
    return "".join(parts) + "</testcase>"


# An aggregated item's error: the exception its fixture raises (cisaudit.host.transport.HostError;
# outputs/ may not import host/, selftests/unit/test_junit_results.py checks the name).
HOST_ERROR = "cisaudit.host.transport.HostError"


def item_testcase(verdict: Verdict, classname: str, name: str, file: str, line: int, seconds: float) -> str:
    """An aggregated item's `<testcase>` as pytest's junitxml writes it with the suite's --tb=line
    (pytest.ini): its fixture's HostError, its test's pytest.fail(pytrace=False) or pytest.skip."""
    head = f"<testcase{_attrs(classname=classname, name=name, file=file, line=str(line), time=f'{seconds:.3f}')}"
    if verdict.status == Status.ERROR:
        first, *rest = f"{HOST_ERROR}: {verdict.summary}".split("\n")
        text = "\n".join([f"E   {first}", *(f"    {more}" for more in rest)]).strip()  # str(longrepr) strips
        message = shorten_message(f'failed on setup with "{HOST_ERROR}: {verdict.summary}"')
        return f"{head}><error{_attrs(message=message)}>{escape(bin_xml_escape(text))}</error></testcase>"
    if verdict.status == Status.FAIL:
        text = "\n".join((verdict.summary, *verdict.evidence))
        message = shorten_message(f"Failed: {text}")
        return f"{head}><failure{_attrs(message=message)}>{escape(bin_xml_escape(text.strip()))}</failure></testcase>"
    if verdict.status == Status.NOT_APPLICABLE:
        body = escape(bin_xml_escape(f"{file}:{line}: {verdict.summary}"))
        return f"{head}><skipped{_attrs(type='pytest.skip', message=verdict.summary)}>{body}</skipped></testcase>"
    return f"{head} />"


class CaseSpool:
    """The testcases written so far, in a file beside the JUnit file, and their counts."""

    def __init__(self, junit: Path) -> None:
        self._file: IO[str]
        self._file, self.path = scratch(junit, "cases")
        self.counts: Counter[str] = Counter()
        self.replaced: set[str] = set()  # the aggregated items' testcase names

    def add(self, cases: Iterable[tuple[CaseRecord, str]], nodeid: str, file: str, line: int) -> None:
        """An aggregated item's cases, each with the testcase name its own item would have had."""
        self.replaced.add(nodeid.partition("::")[2])
        for record, name in cases:
            self._file.write(testcase(record, classname(nodeid, record.host), name, file, line))
            self.counts["tests"] += 1
            if kind := junit_outcome(record):
                self.counts[kind] += 1

    def add_case(self, record: CaseRecord, classname: str, name: str) -> None:
        """A case no pytest item ran (a publication error), as its own testcase."""
        self._file.write(testcase(record, classname, name, "", 0))
        self.counts["tests"] += 1
        if kind := junit_outcome(record):
            self.counts[kind] += 1

    def merge_into(self, junit: Path) -> None:
        """Replace the aggregated items' testcases in pytest's file by every case's, counts updated."""
        self._file.close()
        tree = ET.parse(junit)
        suite = tree.getroot().find("testsuite")
        if suite is None:
            raise ValueError(f"{junit}: no <testsuite> element")
        counts = Counter(self.counts)
        for case in [c for c in suite.iter("testcase") if c.get("name") in self.replaced]:
            suite.remove(case)
            counts["tests"] -= 1
            for child in case:
                if child.tag in _COUNTER:
                    counts[_COUNTER[child.tag]] -= 1
        for kind in ("failures", "errors", "skipped", "tests"):
            suite.set(kind, str(int(suite.get(kind, "0")) + counts[kind]))
        ET.SubElement(suite, _PLACE)
        head, _, tail = ET.tostring(tree.getroot(), encoding="unicode").partition(f"<{_PLACE} />")
        with replaced(junit) as out, self.path.open(encoding="utf-8") as cases:
            out.write('<?xml version="1.0" encoding="utf-8"?>' + head)
            while chunk := cases.read(1 << 20):
                out.write(chunk)
            out.write(tail)
        self.path.unlink()


@dataclass
class JunitOutput:
    """The suite's part of pytest's JUnit file: the cases of aggregated items (`spool`, written as
    they arrived) and the records no pytest item ran (publication errors), merged in at the end."""

    name: str
    path: Path
    spool: CaseSpool | None = None

    def write(self, results: RunResults) -> None:
        added = [r for r in results.cases if r.check == Check.PUBLICATION]
        if (self.spool is None and not added) or not self.path.exists():
            return
        spool = self.spool or CaseSpool(self.path)
        for record in added:
            spool.add_case(record, classname(PUBLICATION_FILE, record.host), f"publication[{record.host}]")
        try:
            spool.merge_into(self.path)
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None


PUBLICATION_FILE = "cisaudit/publication"  # the classname's file part of a publication error
_COUNTER = {"failure": "failures", "error": "errors", "skipped": "skipped"}
_PLACE = "cisaudit-cases"
