"""Fixtures of the VM tests."""

from __future__ import annotations

import pytest

from selftests.e2e.scenario_pass import Findings, walk

TIMINGS = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def scenario_findings(fleet, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Findings:
    """Every scenario state built once on the fleet and checked by every test that walks them all
    (selftests/e2e/scenario_pass.py); each test asserts its own problems. Where the pass spent its
    time goes to the session's summary (CI's log), beside --durations."""
    found = walk(fleet, tmp_path_factory.mktemp("scenarios"))
    pytestconfig.stash[TIMINGS] = found.timings()
    return found


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    if TIMINGS in config.stash:
        terminalreporter.write_line(config.stash[TIMINGS])
