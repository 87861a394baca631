"""JUnit testcases for the cases of aggregated items (cisaudit/plugin/aggregate.py), written as they
arrive so that memory does not grow with the fleet, then merged into the file pytest's junitxml
wrote, in place of the aggregated items' own testcases. Each testcase is what pytest writes for a
case's own item below the threshold (junit_family xunit1: name, classname, properties, outcome).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from cisaudit.model.verdict import Status
from cisaudit.outputs.record import CaseRecord

_OUTCOME = {Status.FAIL: "failures", Status.ERROR: "errors", Status.NOT_APPLICABLE: "skipped", Status.WAIVED: "skipped"}


def outcome(record: CaseRecord) -> str:
    """The testsuite counter the case adds to besides `tests`: failures, errors, skipped or none."""
    return _OUTCOME.get(record.status, "") if record.verdict != Status.NOT_RUN else "skipped"


def testcase(record: CaseRecord, classname: str, name: str, file: str, line: int) -> str:
    """One case as a `<testcase>` element (text)."""
    case = ET.Element(
        "testcase",
        classname=classname,
        name=name,
        file=file,
        line=str(line),
        time=f"{max(record.finished - record.started, 0):.3f}",
    )
    properties = ET.SubElement(case, "properties")
    for key, value in record.properties():
        ET.SubElement(properties, "property", name=key, value=value)
    text = "\n".join(filter(None, (record.summary, record.evidence)))
    kind = outcome(record)
    if kind == "failures":
        ET.SubElement(case, "failure", message=f"Failed: {text}").text = text
    elif kind == "errors":
        ET.SubElement(case, "error", message=f'failed on setup with "HostError: {record.summary}"').text = text
    elif kind == "skipped":
        summary = record.summary if record.verdict != Status.FAIL else f"waived: {record.waiver}"
        ET.SubElement(case, "skipped", type="pytest.skip", message=summary).text = f"{file}:{line}: {summary}"
    return ET.tostring(case, encoding="unicode")


class CaseSpool:
    """The testcases written so far, in a file beside the JUnit file, and their counts."""

    def __init__(self, junit: Path) -> None:
        self.path = junit.with_name(junit.name + ".cases.tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = self.path.open("w", encoding="utf-8")
        self.counts: Counter[str] = Counter()
        self.replaced: set[str] = set()  # the aggregated items' testcase names

    def add(self, cases: Iterable[tuple[CaseRecord, str]], nodeid: str, file: str, line: int) -> None:
        """An aggregated item's cases, each with the testcase name its own item would have had."""
        path, _, function = nodeid.partition("::")
        classname = path.removesuffix(".py").replace("/", ".")
        self.replaced.add(function)
        for record, name in cases:
            self._file.write(testcase(record, classname, name, file, line))
            self.counts["tests"] += 1
            if kind := outcome(record):
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
        with junit.open("w", encoding="utf-8") as out, self.path.open(encoding="utf-8") as cases:
            out.write('<?xml version="1.0" encoding="utf-8"?>' + head)
            while chunk := cases.read(1 << 20):
                out.write(chunk)
            out.write(tail)
        self.path.unlink()


_COUNTER = {"failure": "failures", "error": "errors", "skipped": "skipped"}
_PLACE = "cisaudit-cases"
