"""The rule-set comparison's judgement (selftests/integration/ruleset_truth.py): a verdict against
the kernel's record of every access, and no verdict judged on an incomplete set of accesses."""

from __future__ import annotations

from typing import Any

import pytest

from selftests.integration.ruleset_truth import (
    AGREE,
    ERROR,
    FALSE_FAIL,
    FALSE_PASS,
    NOT_APPLICABLE,
    UNMET,
    compare,
    compare_cells,
    expected_labels,
)

PATH = "/etc/docker/daemon.json"


def result(verdict: str, truth: dict[str, bool], cells: dict[str, str] | None = None) -> dict[str, Any]:
    case = {
        "verdict": {"live": verdict, "persisted": verdict},
        "summary": {},
        "truth": {"live": truth, "persisted": truth},
        "cells": {"live": cells or {}, "persisted": cells or {}} if truth else {},
    }
    state = {"controls": {"1.1.11": case}}
    return {"b32": True, "benchmark": state, "remediated": state}


def every_access(recorded: bool = True) -> dict[str, bool]:
    return {f"{label} {PATH}": recorded for label in expected_labels(set("rwxa"), True)}


CELLS = {f"{p}/{abi}": "ok" for p in "rwxa" for abi in ("b64", "b32")}


@pytest.mark.parametrize(
    ("verdict", "truth", "outcome"),
    [
        ("pass", every_access(), AGREE),
        ("fail", {**every_access(), f"x/b32/user {PATH}": False}, AGREE),
        ("pass", {**every_access(), f"a/user {PATH}": False}, FALSE_PASS),
        ("fail", every_access(), FALSE_FAIL),
        ("not-applicable", {}, NOT_APPLICABLE),
        ("error", every_access(), ERROR),
    ],
)
def test_verdict_against_every_access(verdict: str, truth: dict[str, bool], outcome: str) -> None:
    rows = compare(result(verdict, truth, CELLS))
    assert {row[3] for row in rows} == {outcome}, rows
    assert len(rows) == 4  # two states, two checks


def test_a_missing_access_is_no_proof() -> None:
    truth = every_access()
    del truth[f"w/b32/admin {PATH}"]
    rows = compare(result("pass", truth, CELLS))
    assert {row[3] for row in rows} == {ERROR} and "accesses made" in rows[0][4]


def test_cells_compare_per_permission_and_abi() -> None:
    cells = {**CELLS, "w/b32": "`-a always,exit -F arch=b32 -S all -k other` (auditctl -l:1)"}
    truth = {**every_access(), f"r/b32/user {PATH}": False}
    rows = compare_cells(result("fail", truth, cells))
    assert len(rows) == 2 * 2 * 8
    outcome = {row[3]: row[4] for row in rows}
    assert outcome.pop("r/b32") == FALSE_PASS  # the model says recorded; the user's 32-bit read was not
    assert outcome.pop("w/b32") == FALSE_FAIL  # the model blames a rule; the kernel recorded every write
    assert set(outcome.values()) == {AGREE}


def test_a_fail_blamed_only_on_a_condition_no_actor_meets_is_unmet_not_agreed() -> None:
    """A setuid-root execute (`-C uid!=euid`) is lost to that rule, but no actor of the comparison is
    one: test_kernel_truth.py proves the rule takes such an access; any other blamed rule stays a FAIL."""
    spared = "`-a always,exit -F arch=b64 -S execve -C uid!=euid -F euid=0 -F key=setuid` (auditctl -l:1)"
    other = "`-a always,exit -F arch=b64 -S execve -F key=exec` (auditctl -l:2)"
    assert {row[3] for row in compare(result("fail", every_access(), {**CELLS, "x/b64": spared}))} == {UNMET}
    both = {**CELLS, "x/b64": spared, "x/b32": other}
    assert {row[3] for row in compare(result("fail", every_access(), both))} == {FALSE_FAIL}
