"""Waivers applied to a case's verdict. Which waiver covers a case, and whether it has expired,
is model/waivers.py's to say; this module only decides what the case then reports."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace

from cisaudit.model.verdict import Status, Verdict
from cisaudit.model.waivers import Waiver, matching
from cisaudit.run.case import Case


@dataclass(frozen=True)
class WaiverNote:
    """What a case's record says about its waiver (CaseRecord's waiver fields)."""

    waiver: str = ""  # justification of the waiver applied: the case is reported waived
    expiration: str = ""  # its expiration date, YYYY-MM-DD, or empty
    expired: str = ""  # justification of an expired waiver, ignored
    approved_by: str = ""  # who approved the waiver met, and its ticket (governed waivers)
    ticket: str = ""

    def shown(self, result: Verdict) -> Verdict:
        """The verdict the test asserts: a failure the waiver covers is shown waived."""
        if not self.waiver:
            return result
        return Verdict(Status.WAIVED, f"waived: {self.waiver}", (result.summary, *result.evidence))


def waiver_of(case: Case, waivers: Mapping[str, Waiver]) -> Waiver | None:
    """The waiver of the case's control on the case's host, expired or not (host checks have none)."""
    if case.control is None:
        return None
    return matching(dict(waivers), case.spec, case.control.id) if waivers else None


def skips(waiver: Waiver | None, today: dt.date) -> bool:
    """InSpec's `run: false`: an unexpired waiver says the check is not to be made at all."""
    return waiver is not None and not waiver.run and not waiver.expired(today)


def note(result: Verdict, waiver: Waiver | None, today: dt.date) -> WaiverNote:
    """A failure an unexpired waiver covers is waived; an expired waiver is only flagged; a verdict
    that is not a failure keeps its status (the waiver's date is still reported)."""
    if waiver is None:
        return WaiverNote()
    met = _met(waiver)
    if waiver.expired(today):
        return replace(met, expired=waiver.justification)
    if result.status != Status.FAIL:
        return met
    return replace(met, waiver=waiver.justification)


def not_run_note(waiver: Waiver) -> WaiverNote:
    """The note of a case an unexpired `run: false` waiver kept from running."""
    return replace(_met(waiver), waiver=waiver.justification)


def _met(waiver: Waiver) -> WaiverNote:
    """What every case a waiver covers reports of it, applied or not."""
    return WaiverNote(
        expiration=str(waiver.expiration_date or ""), approved_by=waiver.approved_by, ticket=waiver.ticket
    )
