"""reports/results.xccdf.xml: an XCCDF 1.2 Benchmark with the catalogue's Rules and one TestResult
per host, which `oscap xccdf validate` accepts (a bare TestResult would need the Benchmark by reference).
`iter_xccdf(results, host)` is the same document with one host's TestResult: OpenSCAP's
`xccdf generate report` shows only the last TestResult of a file (it ignores --result-id), so the
report hook writes one such file per host beside the fleet file (README "Outputs").

One rule-result per (host, control), from its checks (live, persisted, events): error if any
errored, fail if any failed, notapplicable if all were, `fixed` if it passes because this run's
--remediate added its rule, pass otherwise. A control the run's selection left out is
`notselected` (the TestResult names the run's Profile, which selects only the controls checked);
one without every required check on the host is `notchecked`, so a partial run never reads pass.
A waived failure stays `fail` with role="unscored" (checked, reported, not scored) and the
justification as a message: OpenSCAP's schematron rejects an `<override>` in any TestResult where
another rule-result has none. A waiver with run: false is notchecked.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from operator import attrgetter

from cisaudit.model.catalogue import Control
from cisaudit.model.verdict import Status
from cisaudit.outputs.record import CaseRecord
from cisaudit.outputs.results import RunResults
from cisaudit.outputs.results_json import iso
from cisaudit.outputs.status import (
    PASSED,
    REQUIRED_CHECKS,
    SCORED,
    UNSCORED,
    XCCDF_RESULT,
    ControlResult,
    control_result,
)
from cisaudit.outputs.text import xml_safe

NS = "http://checklists.nist.gov/xccdf/1.2"
PREFIX = "xccdf_org.cisaudit"
_TEST_RESULTS = "@@cisaudit-test-results@@"  # where iter_xccdf writes each host's TestResult
_RULE_RESULTS = "@@cisaudit-rule-results@@"  # and in it, the host's rule-results


def rule_id(control_id: str) -> str:
    return f"{PREFIX}_rule_cis_docker_{control_id.replace('.', '_')}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    """Every text and attribute of the file goes through here: host text XML cannot hold is escaped."""
    element = ET.SubElement(parent, f"{{{NS}}}{tag}", {k.replace("_", "-"): xml_safe(v) for k, v in attrs.items()})
    element.text = None if text is None else xml_safe(text)
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


RUN_PROFILE = f"{PREFIX}_profile_this_run"


def _profiles(benchmark: ET.Element, catalogue: tuple[Control, ...], selected: set[str]) -> None:
    """CIS's profiles (Level 2 includes Level 1), then this run's selection (the controls it checked)."""
    profiles = [
        (f"{PREFIX}_profile_level{level}", f"Level {level}", {c.id for c in catalogue if c.level <= level})
        for level in sorted({c.level for c in catalogue})
    ]
    for name, title, ids in [*profiles, (RUN_PROFILE, "This run's selection", selected)]:
        profile = _sub(benchmark, "Profile", id=name)
        _sub(profile, "title", title)
        for control in catalogue:
            _sub(profile, "select", idref=rule_id(control.id), selected="true" if control.id in ids else "false")


def _rule_result(test: ET.Element, control_id: str, checks: list[CaseRecord], when: str) -> ControlResult:
    result = control_result(checks)
    if not checks:  # in the run's selection, but not checked on this host
        element = _sub(test, "rule-result", idref=rule_id(control_id), time=when, severity="medium")
        _sub(element, "result", XCCDF_RESULT[result])
        _sub(element, "message", "not checked on this host in this run", severity="info")
        return result
    unscored = result in UNSCORED
    element = _sub(
        test,
        "rule-result",
        idref=rule_id(control_id),
        **({"role": "unscored"} if unscored else {}),
        time=iso(max(c.finished for c in checks)),
        severity="medium",
    )
    _sub(element, "result", XCCDF_RESULT[result])
    audited = {c.audited for c in checks}
    shared = audited.pop() if len(audited) == 1 else ""  # the checks' one path: said once, not per check
    for case in checks:
        waived = f" (waived: {case.waiver}; {case.waiver_reference})" if case.status == Status.WAIVED else ""
        _sub(
            element,
            "message",
            f"{case.check}: {case.status}{waived}: {case.summary}"
            + (f" (audited: {case.audited})" if case.audited and not shared else ""),
            severity="error" if case.status in (Status.FAIL, Status.ERROR) else "info",
        )
    if shared:
        _sub(element, "message", f"audited: {shared}", severity="info")
    missing = sorted(REQUIRED_CHECKS - {c.check for c in checks})
    if missing:
        _sub(element, "message", f"not checked in this run: {', '.join(missing)}", severity="info")
    return result


def _test_result(benchmark: ET.Element, index: int, host: str, results: RunResults, rules: _RuleTexts) -> list[str]:
    """The host's TestResult in `benchmark`, its rule-results as a placeholder: their texts returned."""
    cases = results.by_host[host]
    by_control: dict[str, list[CaseRecord]] = {}
    for case in cases:
        by_control.setdefault(case.control_id, []).append(case)
    end = iso(max(c.finished for c in cases))
    test = _sub(
        benchmark,
        "TestResult",
        id=f"{PREFIX}_testresult_{index}",
        test_system="cisaudit",
        version=results.info.tool_version,
        start_time=iso(min(c.started for c in cases)),
        end_time=end,
    )
    _sub(test, "title", f"{results.info.benchmark.title} v{results.info.benchmark.version} on {host}")
    _sub(test, "remark", f"mode: {results.info.mode}; command: {results.info.command}")
    _sub(test, "remark", f"overall: {results.overall}; scope: {results.scope.describe()}")
    _sub(test, "profile", idref=RUN_PROFILE)
    _sub(test, "target", host)
    test.append(ET.Comment(_RULE_RESULTS))
    selected = {c.id for c in results.controls}
    scored = passed = 0
    texts = []
    for control in results.catalogue:
        result, text = rules.text(control.id, by_control.get(control.id, []) if control.id in selected else None, end)
        texts.append(text)
        scored += result in SCORED
        passed += result in PASSED
    _sub(test, "score", f"{passed:.1f}", system="urn:xccdf:scoring:flat", maximum=f"{scored:.1f}")
    return texts


class _RuleTexts:
    """Each distinct rule-result serialized once: a fleet's hosts mostly repeat them (the key: what
    the element says). Bounded: cleared at LIMIT entries."""

    LIMIT = 1 << 14
    _CHECK = attrgetter(
        "check", "verdict", "waiver", "waiver_approved_by", "waiver_ticket", "summary", "audited", "remediated"
    )

    def __init__(self) -> None:
        self.texts: dict[tuple[object, ...], tuple[ControlResult | None, str]] = {}

    def text(self, control_id: str, checks: list[CaseRecord] | None, end: str) -> tuple[ControlResult | None, str]:
        """(the result, or None when not selected; the rule-result's text); `checks` None: not in the selection."""
        when = iso(max(c.finished for c in checks)) if checks else end
        key = (control_id, when, None if checks is None else tuple(map(self._CHECK, checks)))
        found = self.texts.get(key)
        if found is None:
            if len(self.texts) >= self.LIMIT:
                self.texts.clear()
            found = self.texts[key] = self._made(control_id, checks, end)
        return found

    @staticmethod
    def _made(control_id: str, checks: list[CaseRecord] | None, end: str) -> tuple[ControlResult | None, str]:
        holder = ET.Element(f"{{{NS}}}TestResult")
        result: ControlResult | None = None
        if checks is None:
            element = _sub(holder, "rule-result", idref=rule_id(control_id), time=end, severity="medium")
            _sub(element, "result", "notselected")
        else:
            result = _rule_result(holder, control_id, checks, end)
        return result, ET.tostring(holder[0], encoding="unicode").replace(f' xmlns="{NS}"', "", 1)


def iter_xccdf(results: RunResults, host: str | None = None) -> Iterator[str]:
    """The document in pieces: each host's TestResult (or only `host`'s) is built, written and dropped in turn."""
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
    _profiles(benchmark, results.catalogue, {c.id for c in results.controls})
    for control in results.catalogue:
        _rule(benchmark, control)
    benchmark.append(ET.Comment(_TEST_RESULTS))
    ET.indent(benchmark, space=" ")
    head, _, tail = ET.tostring(benchmark, encoding="unicode").partition(f"<!--{_TEST_RESULTS}-->")
    yield '<?xml version="1.0" encoding="UTF-8"?>\n' + head.rstrip(" ")
    rules = _RuleTexts()
    for index, name in enumerate(results.hosts, 1):
        if host is not None and name != host:
            continue
        holder = ET.Element(f"{{{NS}}}Benchmark")  # the TestResult's parent while it is built
        texts = _test_result(holder, index, name, results, rules)  # one line per TestResult: no indent at fleet size
        text = ET.tostring(holder[0], encoding="unicode").replace(f' xmlns="{NS}"', "", 1)  # declared above
        yield " " + text.replace(f"<!--{_RULE_RESULTS}-->", "".join(texts), 1).rstrip() + "\n"
    yield tail.lstrip("\n") + "\n"


def render_xccdf(results: RunResults) -> str:
    return "".join(iter_xccdf(results))
