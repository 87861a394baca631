"""What an aggregated item (cisaudit/plugin/aggregate.py: one pytest item per host and test
function above --aggregate-above) reports, from its cases' records: the run's fixture raises or
asserts it, and a merge of shards writes the JUnit testcase pytest wrote for it. One home for both.
"""

from __future__ import annotations

from collections.abc import Sequence

from cisaudit.model.verdict import Status, Verdict
from cisaudit.outputs.record import CaseRecord
from cisaudit.outputs.text import terminal_safe

AGGREGATED = ("test_host", "test_control")  # the suite's functions run as one item per host above the threshold
ALL = "*"  # the CONTROL and CHECK part of an aggregated item's id


def shown_status(record: CaseRecord) -> Status:
    """The status a case's test asserts: a waiver applied, or one that skipped the check, is WAIVED."""
    return Status.WAIVED if record.waiver or record.verdict == Status.NOT_RUN else record.verdict


def item_verdict(spec: str, records: Sequence[CaseRecord]) -> Verdict:
    """The item errors when a case errors (ERROR: its summary is the HostError's text), fails when
    one fails, skips when all are not applicable or waived, else passes."""
    errors = [r for r in records if r.verdict == Status.ERROR]
    if errors:
        text = f"{spec}: {len(errors)} of {len(records)} checks could not be judged: {errors[0].summary}"
        return Verdict(Status.ERROR, terminal_safe(text))
    failed = [r for r in records if shown_status(r) == Status.FAIL]
    if failed:
        names = ", ".join(f"{r.control_id} {r.check}" for r in failed)
        return Verdict(
            Status.FAIL, f"{len(failed)} of {len(records)} checks failed: {names}", tuple(r.summary for r in failed)
        )
    if all(shown_status(r) in (Status.NOT_APPLICABLE, Status.WAIVED) for r in records):
        return Verdict(Status.NOT_APPLICABLE, f"each of the {len(records)} checks is not applicable or waived")
    return Verdict(Status.PASS, f"{len(records)} checks")
