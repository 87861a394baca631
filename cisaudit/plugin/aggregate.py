"""Fleet size: above `--aggregate-above` hosts, one pytest item per (host, test function) holds
that host's cases, so pytest's own cost stays per host, not per (host, control, check).

Every case keeps its meaning: `-k` and `-m` are evaluated per case, against the name and marks the
case's own item would have had (`-k 1.1.4`, `-k "not persisted"`, `-m level1` select the same
cases in both modes); each case is still its own JUnit testcase and report row
(cisaudit/plugin/report.py); an item fails when one of its cases fails and errors in setup when
one errors, so the exit code is the same. The README's "Auditing a fleet" says how it behaves.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import pytest

from cisaudit.outputs.item_verdict import ALL
from cisaudit.outputs.record import HOST_CONTROL
from cisaudit.plugin.cases import Case, case_id, level_marks
from cisaudit.plugin.pytest_private import Expression, expression, item_keywords, keyword_matches, marks_match


@dataclass(frozen=True)
class HostCases:
    """One host's cases of one test function, run as one item."""

    spec: str
    function: str
    cases: tuple[Case, ...]

    @property
    def id(self) -> str:
        control = HOST_CONTROL if self.function == "test_host" else ALL
        return case_id(self.spec, control, ALL)

    def case_name(self, case: Case) -> str:
        """The name the case's own item has below the threshold (what -k matches)."""
        return f"{self.function}[{case.id}]"


def case_of(item: pytest.Item) -> Case | HostCases | None:
    """The suite's case an item runs (None for a test that is not the suite's)."""
    value = getattr(getattr(item, "callspec", None), "params", {}).get("cis_case")
    return value if isinstance(value, (Case, HostCases)) else None


def host_cases(item: pytest.Item) -> HostCases | None:
    case = case_of(item)
    return case if isinstance(case, HostCases) else None


def group_by_host(items: list[pytest.Item]) -> None:
    """The suite's items of each host together, hosts and each host's items in their order; other
    tests keep their places. A session is released after its host's last item (fixtures.py)."""
    cases = [(n, case.spec) for n, item in enumerate(items) if (case := case_of(item)) is not None]
    first: dict[str, int] = {}
    for _, spec in cases:
        first.setdefault(spec, len(first))
    original = list(items)
    for (slot, _), (source, _) in zip(cases, sorted(cases, key=lambda found: first[found[1]]), strict=True):
        items[slot] = original[source]


def _selected(item: pytest.Item, group: HostCases, keyword: Expression | None, mark: Expression | None) -> HostCases:
    if keyword is None and mark is None:
        return group
    names = item_keywords(item)
    kept = []
    for case in group.cases:
        marks = [m.mark for m in level_marks(case)]
        if keyword and not keyword_matches(keyword, names | {group.case_name(case)} | {m.name for m in marks}):
            continue
        if mark and not marks_match(mark, [*item.iter_markers(), *marks]):
            continue
        kept.append(case)
    return HostCases(group.spec, group.function, tuple(kept))


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Generator[None]:
    """Hide the aggregated items from pytest's own -k/-m deselection, then select their cases."""
    order = {id(item): n for n, item in enumerate(items)}
    groups = [item for item in items if host_cases(item)]
    if not groups:
        return (yield)
    items[:] = [item for item in items if not host_cases(item)]
    result = yield
    keyword = expression(config.option.keyword, "-k")
    mark = expression(config.option.markexpr, "-m")
    kept, empty = [], []
    for item in groups:
        group = host_cases(item)
        assert group is not None
        selected = _selected(item, group, keyword, mark)
        if selected.cases:
            item.callspec.params["cis_case"] = selected  # type: ignore[attr-defined]  # a Function's
            kept.append(item)
        else:
            empty.append(item)
    if empty:
        config.hook.pytest_deselected(items=empty)
    items[:] = sorted([*items, *kept], key=lambda item: order.get(id(item), len(order)))
    group_by_host(items)
    return result
