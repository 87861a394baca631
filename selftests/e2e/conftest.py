"""Fixtures of the VM tests."""

from __future__ import annotations

import pytest

from selftests.e2e.scenario_pass import Findings, walk


@pytest.fixture(scope="session")
def scenario_findings(fleet, tmp_path_factory: pytest.TempPathFactory) -> Findings:
    """Every scenario state built once on the fleet and checked by every test that walks them all
    (selftests/e2e/scenario_pass.py); each test asserts its own problems."""
    return walk(fleet, tmp_path_factory.mktemp("scenarios"))
