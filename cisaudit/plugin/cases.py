"""One test of the suite: a check of a control, or of the host itself, on one host; and the
grammar of its test id, next to the id's one parser (docs/architecture.md).

A test id is `FILE::FUNCTION[SPEC|CONTROL|CHECK]`: SPEC is the host as reports show it
(cisaudit.host.hostspec, an IPv6 literal in brackets included), CONTROL a control id or `host`.
"""

from __future__ import annotations

import pytest

from cisaudit.run.case import SEPARATOR, Case, case_id

__all__ = ["SEPARATOR", "Case", "case_id", "case_name", "host_of_nodeid", "level_marks"]


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
