"""reports/results.xccdf.xml: an XCCDF 1.2 Benchmark with the catalogue's Rules and one TestResult
per host, which `oscap xccdf validate` accepts (a bare TestResult would need the Benchmark by reference).

One rule-result per (host, control), from its checks (live, persisted, events): error if any
errored, fail if any failed, notapplicable if all were, `fixed` if it passes because this run's
--remediate added its rule, pass otherwise. A waived failure is `pass` with an <override> whose
old-result is fail and whose remark is the justification; a waiver with run: false is notchecked.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

from cisaudit.model.catalogue import Control
from cisaudit.model.verdict import Status
from cisaudit.outputs.record import CaseRecord
from cisaudit.outputs.results import RunResults
from cisaudit.outputs.results_json import iso

NS = "http://checklists.nist.gov/xccdf/1.2"
PREFIX = "xccdf_org.cisaudit"
_TEST_RESULTS = "@@cisaudit-test-results@@"  # where iter_xccdf writes each host's TestResult


def rule_id(control_id: str) -> str:
    return f"{PREFIX}_rule_cis_docker_{control_id.replace('.', '_')}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{NS}}}{tag}", {k.replace("_", "-"): v for k, v in attrs.items()})
    element.text = text
    return element


def _rule(parent: ET.Element, control: Control) -> None:
    rule = _sub(parent, "Rule", id=rule_id(control.id), selected="true", severity="medium")
    _sub(rule, "title", f"{control.id} {control.title}")
    _sub(
        rule,
        "description",
        f"Profile Applicability: Level {control.level}. Assessment Status: "
        f"{control.assessment.capitalize()}. Rule: {control.rule_text(control.path)}",
    )


def _profiles(benchmark: ET.Element, catalogue: tuple[Control, ...]) -> None:
    """CIS's profiles: Level 2 includes Level 1."""
    for level in sorted({c.level for c in catalogue}):
        profile = _sub(benchmark, "Profile", id=f"{PREFIX}_profile_level{level}")
        _sub(profile, "title", f"Level {level}")
        for control in catalogue:
            _sub(profile, "select", idref=rule_id(control.id), selected="true" if control.level <= level else "false")


def rule_result(checks: list[CaseRecord]) -> tuple[str, list[CaseRecord]]:
    """The rule's result from its checks, and the waived checks that make it an override."""
    verdicts = {c.status for c in checks}
    waived = [c for c in checks if c.status == Status.WAIVED and c.verdict == "fail"]
    if "error" in verdicts:
        return "error", []
    if "fail" in verdicts:
        return "fail", []
    if verdicts == {"not-applicable"}:
        return "notapplicable", []
    if any(c.verdict == "not-run" for c in checks):
        return "notchecked", []
    return ("fixed" if not waived and any(c.remediated for c in checks) else "pass"), waived


def _test_result(benchmark: ET.Element, index: int, host: str, results: RunResults) -> None:
    cases = results.by_host[host]
    by_control: dict[str, list[CaseRecord]] = {}
    for case in cases:
        by_control.setdefault(case.control_id, []).append(case)
    test = _sub(
        benchmark,
        "TestResult",
        id=f"{PREFIX}_testresult_{index}",
        test_system="cisaudit",
        version=results.info.tool_version,
        start_time=iso(min(c.started for c in cases)),
        end_time=iso(max(c.finished for c in cases)),
    )
    _sub(test, "title", f"{results.info.benchmark.title} v{results.info.benchmark.version} on {host}")
    _sub(test, "remark", f"mode: {results.info.mode}; command: {results.info.command}")
    _sub(test, "target", host)
    scored = passed = 0
    for control in results.controls:
        checks = by_control.get(control.id, [])
        if not checks:
            continue
        result, waived = rule_result(checks)
        element = _sub(
            test,
            "rule-result",
            idref=rule_id(control.id),
            time=iso(max(c.finished for c in checks)),
            severity="medium",
            weight="1.0",
        )
        _sub(element, "result", result)
        for case in waived:
            override = _sub(element, "override", time=iso(case.finished), authority="cisaudit --waivers")
            _sub(override, "old-result", "fail")
            _sub(override, "new-result", result)
            _sub(override, "remark", f"{case.check}: {case.waiver}")
        for case in checks:
            _sub(
                element,
                "message",
                f"{case.check}: {case.status}: {case.summary}"
                + (f" (audited: {case.audited})" if case.audited else ""),
                severity="error" if case.status in ("fail", "error") else "info",
            )
        scored += result in ("pass", "fixed", "fail", "error")
        passed += result in ("pass", "fixed")
    _sub(test, "score", f"{passed:.1f}", system="urn:xccdf:scoring:flat", maximum=f"{scored:.1f}")


def iter_xccdf(results: RunResults) -> Iterator[str]:
    """The document in pieces: each host's TestResult is built, written and dropped in turn."""
    ET.register_namespace("", NS)
    info = results.info
    benchmark = ET.Element(
        f"{{{NS}}}Benchmark",
        {
            "id": f"{PREFIX}_benchmark_cis_docker_{info.benchmark.version.replace('.', '_')}",
            "resolved": "1",
            "{http://www.w3.org/XML/1998/namespace}lang": "en",
        },
    )
    _sub(benchmark, "status", "accepted")
    _sub(benchmark, "title", f"{info.benchmark.title} v{info.benchmark.version}, section 1.1 (audit rules)")
    _sub(benchmark, "version", info.benchmark.version)
    _profiles(benchmark, results.catalogue)
    for control in results.catalogue:
        _rule(benchmark, control)
    benchmark.append(ET.Comment(_TEST_RESULTS))
    ET.indent(benchmark, space=" ")
    head, _, tail = ET.tostring(benchmark, encoding="unicode").partition(f"<!--{_TEST_RESULTS}-->")
    yield '<?xml version="1.0" encoding="UTF-8"?>\n' + head.rstrip(" ")
    for index, host in enumerate(results.hosts, 1):
        holder = ET.Element(f"{{{NS}}}Benchmark")  # the TestResult's parent while it is built
        _test_result(holder, index, host, results)
        ET.indent(holder, space=" ")
        text = ET.tostring(holder[0], encoding="unicode").replace(f' xmlns="{NS}"', "", 1)  # declared above
        yield " " + text.rstrip() + "\n"
    yield tail.lstrip("\n") + "\n"


def render_xccdf(results: RunResults) -> str:
    return "".join(iter_xccdf(results))
