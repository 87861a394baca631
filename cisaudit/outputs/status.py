"""The one status mapping every output uses.

A case's own status is `Status` (cisaudit/model/verdict.py). A control's result on one host is
decided here, once, from its checks (`control_result`); each output only looks its label up in a
table below: the compliance report's fleet view (`FLEET_STATUS`), XCCDF's rule-result
(`XCCDF_RESULT`), JUnit's outcome per case (`JUNIT_OUTCOME`), the words a person reads
(`LABEL`). Every table covers every member of its enum, checked when this module loads. The
compliance percentage (`compliance`) is computed here too.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from enum import Enum, StrEnum
from typing import Protocol, TypeVar

from cisaudit.model.verdict import CONTROL_CHECKS, Check, Status

E = TypeVar("E", bound=Enum)
V = TypeVar("V")

REQUIRED_CHECKS = frozenset(CONTROL_CHECKS)  # what a complete run checks per control on each host
STATUSES = (Status.PASS, Status.FAIL, Status.WAIVED, Status.NOT_APPLICABLE, Status.ERROR)  # report order


class Checked(Protocol):
    """What the mapping reads of a case (CaseRecord has it)."""

    @property
    def check(self) -> Check: ...
    @property
    def verdict(self) -> Status: ...
    @property
    def status(self) -> Status: ...
    @property
    def remediated(self) -> bool: ...


class ControlResult(StrEnum):
    """A control's result on one host, from its checks (live, persisted, events); the worst wins."""

    ERROR = "error"  # a check could not be judged
    FAIL = "fail"  # an unwaived failure
    WAIVED = "waived"  # a failure an unexpired waiver covers
    NOT_RUN = "not-run"  # a waiver with run: false skipped the control
    NOT_APPLICABLE = "not-applicable"  # every check found the audited path absent
    NOT_CHECKED = "not-checked"  # a required check did not run on the host
    FIXED = "fixed"  # passes because this run's --remediate added its rule
    PASS = "pass"


def control_result(checks: Collection[Checked], required: frozenset[Check] = REQUIRED_CHECKS) -> ControlResult:
    """The one decision: a control's result on a host from the checks of it that ran there."""
    statuses = {c.status for c in checks}
    if not checks:
        return ControlResult.NOT_CHECKED
    if Status.ERROR in statuses:
        return ControlResult.ERROR
    if Status.FAIL in statuses:
        return ControlResult.FAIL
    if any(c.status == Status.WAIVED and c.verdict == Status.FAIL for c in checks):
        return ControlResult.WAIVED
    if statuses == {Status.NOT_APPLICABLE}:
        return ControlResult.NOT_APPLICABLE
    if any(c.verdict == Status.NOT_RUN for c in checks):
        return ControlResult.NOT_RUN
    if not {c.check for c in checks} >= required:
        return ControlResult.NOT_CHECKED
    return ControlResult.FIXED if any(c.remediated for c in checks) else ControlResult.PASS


def _total(enum: type[E], table: Mapping[E, V]) -> Mapping[E, V]:
    """`table`, after checking that it maps every member of `enum` (a new member fails at import)."""
    missing = [m.value for m in enum if m not in table]
    if missing:
        raise ValueError(f"{enum.__name__} has no label for {', '.join(missing)}")
    return table


# The compliance report's fleet view counts hosts per control in the case statuses' columns.
# A control one of whose checks the selection left out counts by the checks that ran (the run's
# scope line says PARTIAL).
FLEET_STATUS: Mapping[ControlResult, Status] = _total(
    ControlResult,
    {
        ControlResult.ERROR: Status.ERROR,
        ControlResult.FAIL: Status.FAIL,
        ControlResult.WAIVED: Status.WAIVED,
        ControlResult.NOT_RUN: Status.WAIVED,
        ControlResult.NOT_APPLICABLE: Status.NOT_APPLICABLE,
        ControlResult.NOT_CHECKED: Status.PASS,
        ControlResult.FIXED: Status.PASS,
        ControlResult.PASS: Status.PASS,
    },
)

# XCCDF 1.2 rule-result values. A waived failure stays `fail`, unscored (cisaudit/outputs/xccdf.py).
XCCDF_RESULT: Mapping[ControlResult, str] = _total(
    ControlResult,
    {
        ControlResult.ERROR: "error",
        ControlResult.FAIL: "fail",
        ControlResult.WAIVED: "fail",
        ControlResult.NOT_RUN: "notchecked",
        ControlResult.NOT_APPLICABLE: "notapplicable",
        ControlResult.NOT_CHECKED: "notchecked",
        ControlResult.FIXED: "fixed",
        ControlResult.PASS: "pass",
    },
)
UNSCORED = frozenset({ControlResult.WAIVED})  # XCCDF role="unscored": checked, reported, not scored
SCORED = frozenset({ControlResult.ERROR, ControlResult.FAIL, ControlResult.FIXED, ControlResult.PASS})
PASSED = frozenset({ControlResult.FIXED, ControlResult.PASS})

# The testsuite counter a case adds to besides `tests` (pytest's junitxml names); "" for none.
JUNIT_OUTCOME: Mapping[Status, str] = _total(
    Status,
    {
        Status.PASS: "",
        Status.FAIL: "failures",
        Status.ERROR: "errors",
        Status.NOT_APPLICABLE: "skipped",
        Status.WAIVED: "skipped",
        Status.NOT_RUN: "skipped",
    },
)

# What a person reads (the compliance report's headings and detail).
LABEL: Mapping[Status, str] = _total(
    Status,
    {
        Status.PASS: "pass",
        Status.FAIL: "fail",
        Status.WAIVED: "waived",
        Status.NOT_APPLICABLE: "not applicable",
        Status.ERROR: "error",
        Status.NOT_RUN: "not run",
    },
)


def junit_outcome(case: Checked) -> str:
    """The testsuite counter a case adds to: a waiver with run: false skipped it, whatever its status."""
    return JUNIT_OUTCOME[Status.NOT_RUN if case.verdict == Status.NOT_RUN else case.status]


def compliance(counts: Mapping[str, int]) -> str:
    """passed / (passed + failed) checks as a percentage; waived, not applicable and errors are
    excluded; "n/a" with neither."""
    applicable = counts.get(Status.PASS, 0) + counts.get(Status.FAIL, 0)
    return f"{100 * counts.get(Status.PASS, 0) / applicable:.0f}%" if applicable else "n/a"
