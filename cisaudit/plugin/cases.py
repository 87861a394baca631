"""One test of the suite: a check of a control, or of the host itself, on one host; and the
grammar of its test id, next to the id's one parser (docs/architecture.md).

A test id is `FILE::FUNCTION[SPEC|CONTROL|CHECK]`: SPEC is the host as reports show it
(cisaudit.host.hostspec, an IPv6 literal in brackets included), CONTROL a control id or `host`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from cisaudit.model.catalogue import Control
from cisaudit.model.verdict import Check
from cisaudit.outputs.record import HOST_CONTROL

SEPARATOR = "|"  # never in CONTROL or CHECK; SPEC may hold one (a path option), so ids split from the right


@dataclass(frozen=True)
class Case:
    spec: str
    check: Check
    control: Control | None = None

    @property
    def id(self) -> str:
        return case_id(self.spec, self.control.id if self.control else HOST_CONTROL, self.check)


def case_id(spec: str, control_id: str, check: str) -> str:
    return SEPARATOR.join((spec, control_id, check))


def case_name(nodeid: str, spec: str, control_id: str, check: str) -> str:
    """The test name (FUNCTION[ID]) of a case, from the node id of its own or its aggregated item."""
    function = nodeid.partition("::")[2].partition("[")[0]
    return f"{function}[{case_id(spec, control_id, check)}]"


def level_marks(case: Case) -> list[pytest.MarkDecorator]:
    """`-m level1` / `-m level2` select a control's cases by its CIS profile level."""
    return [getattr(pytest.mark, f"level{case.control.level}")] if case.control else []


def host_of_nodeid(nodeid: str) -> str:
    """The SPEC inside a test id; the whole id for a test that is not a case."""
    # FILE may hold `[`, SPEC may hold `::` (IPv6); class and function names hold neither.
    function = nodeid.partition("::")[2]
    param = function.partition("[")[2].removesuffix("]")
    parts = param.rsplit(SEPARATOR, 2)
    return parts[0] if len(parts) == 3 else nodeid
