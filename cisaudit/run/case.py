"""One case of a run: a check of a control, or of the host itself, on one host; and its id, which
the pytest plugin makes the test id (cisaudit/plugin/cases.py parses it back)."""

from __future__ import annotations

from dataclasses import dataclass

from cisaudit.model.catalogue import Control
from cisaudit.model.verdict import Check
from cisaudit.outputs.record import HOST_CONTROL

SEPARATOR = "|"  # never in CONTROL or CHECK; SPEC may hold one (a path option), so ids split from the right


@dataclass(frozen=True)
class Case:
    spec: str  # the host as reports show it (cisaudit/host/hostspec.py)
    check: Check
    control: Control | None = None  # None: a check of the host

    @property
    def id(self) -> str:
        return case_id(self.spec, self.control.id if self.control else HOST_CONTROL, self.check)


def case_id(spec: str, control_id: str, check: str) -> str:
    return SEPARATOR.join((spec, control_id, check))
