"""The suite's only uses of pytest's private API (`_pytest`), each in one function, for what pytest
offers no public way to do. selftests/unit/test_pytest_private.py runs each against the installed
pytest, so an upgrade that changes one fails there, by name, not inside a fleet run.

- `-k` and `-m` per case of an aggregated item (plugin/aggregate.py): pytest evaluates them per item
  only; its expression grammar and matchers are private (`_pytest.mark`).
- A case's JUnit classname per host (plugin/report.py): `record_xml_attribute` is the public way,
  but it warns once per test (PytestExperimentalApiWarning); its implementation is what is used here.

What does not need pytest's internals: the JUnit text of the cases of aggregated items is made by
outputs/junit.py itself (pytest's escape and message shortening, reproduced there and compared in
the same test file), and merged into pytest's file after junitxml wrote it; pytest has no public
way to add testcases, and feeding it a report per case would keep every case's XML in memory.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from _pytest.junitxml import xml_key
from _pytest.mark import KeywordMatcher, MarkMatcher, _parse_expression
from _pytest.mark.expression import Expression

__all__ = ["Expression", "expression", "item_keywords", "keyword_matches", "marks_match", "set_junit_classname"]


def expression(text: str, option: str) -> Expression | None:
    """`-k`/`-m` text compiled as pytest does (a bad one: pytest's own UsageError); None when empty."""
    text = text.strip()
    return _parse_expression(text, f"Wrong expression passed to '{option}'") if text else None


def item_keywords(item: pytest.Item) -> set[str]:
    """The names `-k` matches for `item` besides its own name (its parents, markers, extra keywords)."""
    return set(KeywordMatcher.from_item(item)._names) - {item.name}


def keyword_matches(expr: Expression, names: Iterable[str]) -> bool:
    """`-k EXPR` against these names (a substring of one, case-insensitive, matches)."""
    return expr.evaluate(KeywordMatcher(set(names)))


def marks_match(expr: Expression, marks: Iterable[pytest.Mark]) -> bool:
    """`-m EXPR` against these marks."""
    return expr.evaluate(MarkMatcher.from_markers(list(marks)))


def set_junit_classname(config: pytest.Config, report: pytest.TestReport, name: str) -> None:
    """The classname of the report's testcase in --junitxml's file (nothing without --junitxml)."""
    junitxml = config.stash.get(xml_key, None)
    if junitxml is not None:  # as record_xml_attribute does, without its warning per test
        junitxml.node_reporter(report).add_attribute("classname", name)
