"""The one status mapping (cisaudit/outputs/status.py) and the record's property round trip."""

from __future__ import annotations

import dataclasses
from enum import StrEnum

import pytest

from cisaudit.model.verdict import Check, Status
from cisaudit.outputs.record import CaseRecord, decode_records, encode_records
from cisaudit.outputs.status import (
    FLEET_STATUS,
    JUNIT_OUTCOME,
    LABEL,
    XCCDF_RESULT,
    ControlResult,
    _total,
    compliance,
    control_result,
    junit_outcome,
)

A = "ssh://root@a"
LIVE, PERSISTED = Check.LIVE, Check.PERSISTED


def rec(check: Check, verdict: Status, waiver: str = "", remediated: bool = False) -> CaseRecord:
    return CaseRecord(A, "1.1.6", check, verdict, waiver=waiver, remediated=remediated)


P, F, NA, E = Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.ERROR
# checks of one control on one host -> (its result, the fleet view's column, XCCDF's result)
CASES = [
    ([rec(LIVE, P), rec(PERSISTED, P)], ControlResult.PASS, P, "pass"),
    ([rec(LIVE, P, remediated=True), rec(PERSISTED, P, remediated=True)], ControlResult.FIXED, P, "fixed"),
    ([rec(LIVE, P), rec(PERSISTED, NA)], ControlResult.PASS, P, "pass"),
    ([rec(LIVE, NA), rec(PERSISTED, NA)], ControlResult.NOT_APPLICABLE, NA, "notapplicable"),
    ([rec(LIVE, P), rec(PERSISTED, F)], ControlResult.FAIL, F, "fail"),
    ([rec(LIVE, F), rec(PERSISTED, E)], ControlResult.ERROR, E, "error"),
    ([rec(LIVE, P), rec(PERSISTED, F, waiver="SEC-1")], ControlResult.WAIVED, Status.WAIVED, "fail"),
    (
        [rec(LIVE, Status.NOT_RUN, "SEC-2"), rec(PERSISTED, Status.NOT_RUN, "SEC-2")],
        ControlResult.NOT_RUN,
        Status.WAIVED,
        "notchecked",
    ),  # fmt: skip
    ([rec(LIVE, P)], ControlResult.NOT_CHECKED, P, "notchecked"),  # -k live: persisted left out
    ([], ControlResult.NOT_CHECKED, P, "notchecked"),
]


@pytest.mark.parametrize(("checks", "result", "fleet", "xccdf"), CASES)
def test_one_decision_per_host_and_control_every_output_maps(
    checks: list[CaseRecord], result: ControlResult, fleet: Status, xccdf: str
) -> None:
    assert control_result(checks) == result
    assert (FLEET_STATUS[result], XCCDF_RESULT[result]) == (fleet, xccdf)


def test_every_table_maps_every_member_and_a_missing_one_fails_at_load() -> None:
    for table, enum in ((FLEET_STATUS, ControlResult), (XCCDF_RESULT, ControlResult)):
        assert set(table) == set(enum)
    assert set(JUNIT_OUTCOME) == set(LABEL) == set(Status)

    class Colour(StrEnum):
        RED = "red"
        BLUE = "blue"

    with pytest.raises(ValueError, match="Colour has no label for blue"):
        _total(Colour, {Colour.RED: "r"})


def test_junit_outcome_of_a_waiver_that_skips_the_check() -> None:
    assert junit_outcome(rec(LIVE, Status.NOT_RUN, "SEC-2")) == "skipped"
    assert junit_outcome(rec(LIVE, F, "SEC-1")) == "skipped"
    assert [junit_outcome(rec(LIVE, s)) for s in (P, F, E, NA)] == ["", "failures", "errors", "skipped"]


def test_compliance_is_passed_over_passed_and_failed() -> None:
    assert compliance({"pass": 3, "fail": 1, "waived": 5, "error": 2}) == "75%"
    assert compliance({"not-applicable": 4}) == "n/a"


def _every_field_set() -> CaseRecord:
    """A record whose every property field differs from its default."""
    values: dict[str, object] = {}
    for f in dataclasses.fields(CaseRecord):
        kind = type(f.default) if f.default is not dataclasses.MISSING else None
        if f.name == "check":
            values[f.name] = Check.PERSISTED
        elif f.name == "verdict":
            values[f.name] = Status.FAIL
        elif kind is bool:
            values[f.name] = True
        elif kind is int:
            values[f.name] = 7
        elif kind is float:
            values[f.name] = 12.5
        else:
            values[f.name] = f"{f.name} value\nsecond line"
    return CaseRecord(**values)  # type: ignore[arg-type]


def test_every_field_survives_properties_and_back() -> None:
    record = _every_field_set()
    back = CaseRecord.from_properties(record.properties(), record.started, record.finished)
    assert back == record
    assert decode_records(encode_records([record])) == [record]
    assert {name for name, _ in record.properties()} == {f.name for f in dataclasses.fields(CaseRecord)} - {
        "started",
        "finished",
    }


def test_unknown_check_or_verdict_raises() -> None:
    props = dict(rec(LIVE, P).properties())
    with pytest.raises(ValueError):
        CaseRecord.from_properties({**props, "verdict": "passed"})
    with pytest.raises(ValueError):
        CaseRecord.from_properties({**props, "check": "liveness"})
