"""Governed waivers in every output (issue 25 item 2): the waiver that applied, with its approver and
ticket, in results.json, XCCDF, JUnit properties and the compliance report; the exception register
and the waivers that match nothing."""

from __future__ import annotations

import datetime as dt
import json

import jsonschema

from cisaudit.model.waivers import parse_waivers
from cisaudit.outputs.compliance_html import render_html
from cisaudit.outputs.results_json import records, render_json
from cisaudit.outputs.waiver_register import register, unmatched_lines
from cisaudit.outputs.xccdf import render_xccdf
from selftests.suite_runner import REPO
from selftests.unit.test_outputs import A, B, case, results

WAIVERS = parse_waivers(
    """\
1.1.6:
  justification: SEC-12 accepted
  expiration_date: 2027-06-30
  approved_by: jane.doe@example.com
  ticket: SEC-12
  scope: {hosts: ["*10.0.0.10"]}
1.1.4:
  justification: nobody's host
  expiration_date: 2027-06-30
  scope: {instance_ids: [i-0123456789abcdef0]}
""",
    "w.yaml",
    {"1.1.4", "1.1.6"},
    dt.date(2027, 1, 1),
)
APPLIED = {"waiver": "SEC-12 accepted", "waiver_expiration": "2027-06-30"}
APPROVAL = {"waiver_approved_by": "jane.doe@example.com", "waiver_ticket": "SEC-12"}


def _run():
    run = results(
        case(A, "1.1.6", "live", "pass"),
        case(A, "1.1.6", "persisted", "fail", summary="no rule", **APPLIED, **APPROVAL),
        case(B, "1.1.6", "live", "pass"),
        case(B, "1.1.6", "persisted", "pass"),
        case(A, "1.1.4", "live", "pass"),
        hosts=(A, B),
    )
    run.waivers = tuple(WAIVERS.values())
    return run


def test_register_says_where_each_waiver_applied_and_which_match_nothing() -> None:
    entries = {e.waiver.control_id: e for e in register(_run())}
    assert entries["1.1.6"].applied_on == (A,) and not entries["1.1.6"].matches_nothing
    assert entries["1.1.4"].applied_on == () and entries["1.1.4"].matches_nothing
    assert unmatched_lines(_run()) == [
        "waiver of 1.1.4 (line 7, instances i-0123456789abcdef0) matches nothing in this run: its control was "
        "not checked or its scope names none of the hosts"
    ]


def test_every_output_carries_the_waiver_that_applied() -> None:
    run = _run()
    document = json.loads(render_json(run))
    schema = json.loads((REPO / "docs" / "results.schema.json").read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(document)
    waived = next(r for r in records(document) if r["status"] == "waived")
    assert (waived["waiver"]["approved_by"], waived["waiver"]["ticket"]) == ("jane.doe@example.com", "SEC-12")
    assert [(w["control_id"], w["applied_on"], w["matches_nothing"]) for w in document["waivers"]] == [
        ("1.1.4", [], True),
        ("1.1.6", [A], False),
    ]
    assert "waived: SEC-12 accepted; approved by jane.doe@example.com (SEC-12)" in render_xccdf(run)
    html = render_html(run)
    assert "<h2 id='exceptions'>Exception register</h2>" in html and "id='unmatched'" in html
    assert "approved by jane.doe@example.com (SEC-12)" in html
    properties = dict(run.cases[1].properties())  # JUnit's <property> elements
    assert (properties["waiver_approved_by"], properties["waiver_ticket"]) == ("jane.doe@example.com", "SEC-12")
