"""Fixtures of the VM tests."""

from __future__ import annotations

import pytest

from selftests.e2e.scenario_pass import Findings, walk


@pytest.fixture(scope="session")
def scenario_findings(fleet, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Findings:
    """Every scenario state built once on the fleet and checked by every test that walks them all
    (selftests/e2e/scenario_pass.py); each test asserts its own problems. Where the pass spent its
    time goes to the session's output (CI's log), beside --durations."""
    found = walk(fleet, tmp_path_factory.mktemp("scenarios"))
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(found.timings())
    return found
