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


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that read the scenario pass `scenario_pass`: .ci/run runs them in one
    session and the other VM tests in another beside it (`-m "not scenario_pass"`)."""
    for item in items:
        if "scenario_findings" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.scenario_pass)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    if TIMINGS in config.stash:
        terminalreporter.write_line(config.stash[TIMINGS])
