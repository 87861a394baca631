"""The suite's uses of pytest's private API (cisaudit/plugin/pytest_private.py) and the junitxml
conventions outputs/junit.py reproduces, run against the installed pytest: an upgrade that changes
one fails here, by name."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import _pytest.junitxml
import pytest

from cisaudit.outputs import junit
from cisaudit.plugin import pytest_private
from selftests.suite_runner import REPO

TEXTS = [
    "",
    "plain",
    "bell\a and escape\x1b and DEL\x7f and nul\x00",
    "bidi \u202e and \ufffe and \U0001f600",
    "one line of many characters " * 80,
    "\n".join(f"line {n}" for n in range(300)),
    "short first\n" + "x" * 2000,
]


@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_junit_text_is_what_pytest_writes(text: str) -> None:
    assert junit.bin_xml_escape(text) == _pytest.junitxml.bin_xml_escape(text)
    assert junit.shorten_message(text) == _pytest.junitxml.shorten_message(text)
    assert junit.MESSAGE_BUDGET == _pytest.junitxml.MESSAGE_ATTR_BUDGET


def test_keyword_and_mark_expressions_per_case(request: pytest.FixtureRequest) -> None:
    names = pytest_private.item_keywords(request.node)
    assert request.node.name not in names and "test_pytest_private.py" in names
    keyword = pytest_private.expression(" 1.1.4 and not persisted ", "-k")
    assert keyword is not None
    assert pytest_private.keyword_matches(keyword, {"test_control[h1|1.1.4|live]"})
    assert not pytest_private.keyword_matches(keyword, {"test_control[h1|1.1.4|persisted]"})
    mark = pytest_private.expression("vm and not kernel", "-m")  # markers of selftests/pytest.ini
    assert mark is not None
    assert pytest_private.marks_match(mark, [pytest.mark.vm.mark])
    assert not pytest_private.marks_match(mark, [pytest.mark.vm.mark, pytest.mark.kernel.mark])
    assert pytest_private.expression("  ", "-k") is None
    with pytest.raises(pytest.UsageError, match="Wrong expression passed to '-k'"):
        pytest_private.expression("a and (", "-k")


CONFTEST = """
import pytest
from cisaudit.plugin.pytest_private import set_junit_classname

def pytest_configure(config):
    pytest_runtest_logreport.config = config

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logreport(report):
    set_junit_classname(pytest_runtest_logreport.config, report, "tests.HOST_one")
"""


def test_the_junit_classname_of_a_report(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    args = ["-p", "no:cacheprovider", "-p", "no:cisaudit.plugin", "-W", "error", "--junitxml=j.xml", "-q"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", "/dev/null", f"--rootdir={tmp_path}", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (case,) = ET.parse(tmp_path / "j.xml").getroot().iter("testcase")
    assert case.get("classname") == "tests.HOST_one"


def test_only_this_module_imports_pytests_private_api() -> None:
    """inifile.py too: it sets the ini file before pytest reads it (a pytest_load_initial_conftests
    hook; pytest has no public way)."""
    package = REPO / "cisaudit"
    importing = sorted(
        str(p.relative_to(package))
        for p in package.rglob("*.py")
        if re.search(r"^\s*(from|import) _pytest\b", p.read_text(), re.M)
    )
    assert importing == ["plugin/inifile.py", "plugin/pytest_private.py"]
