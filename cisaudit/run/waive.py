"""Waivers applied to a case's verdict. Which waiver covers a case, and whether it has expired,
is model/waivers.py's to say; this module only decides what the case then reports."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from cisaudit.model.verdict import Status, Verdict
from cisaudit.model.waivers import Waiver, applicable
from cisaudit.run.case import Case


@dataclass(frozen=True)
class WaiverNote:
    """What a case's record says about its waiver (CaseRecord's waiver fields)."""

    waiver: str = ""  # justification of the waiver applied: the case is reported waived
    expiration: str = ""  # its expiration date, YYYY-MM-DD, or empty
    expired: str = ""  # justification of an expired waiver, ignored

    def shown(self, result: Verdict) -> Verdict:
        """The verdict the test asserts: a failure the waiver covers is shown waived."""
        if not self.waiver:
            return result
        return Verdict(Status.WAIVED, f"waived: {self.waiver}", (result.summary, *result.evidence))


def waiver_of(case: Case, waivers: Mapping[str, Waiver]) -> Waiver | None:
    """The waiver of the case's control on the case's host, expired or not (host checks have none)."""
    if case.control is None:
        return None
    return applicable(dict(waivers), case.control.id, case.spec) if waivers else None


def skips(waiver: Waiver | None, today: dt.date) -> bool:
    """InSpec's `run: false`: an unexpired waiver says the check is not to be made at all."""
    return waiver is not None and not waiver.run and not waiver.expired(today)


def note(result: Verdict, waiver: Waiver | None, today: dt.date) -> WaiverNote:
    """A failure an unexpired waiver covers is waived; an expired waiver is only flagged; a verdict
    that is not a failure keeps its status (the waiver's date is still reported)."""
    if waiver is None:
        return WaiverNote()
    expiration = str(waiver.expiration_date or "")
    if waiver.expired(today):
        return WaiverNote(expiration=expiration, expired=waiver.justification)
    if result.status != Status.FAIL:
        return WaiverNote(expiration=expiration)
    return WaiverNote(waiver.justification, expiration)
