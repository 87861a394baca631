"""`pip install .` into a fresh virtual environment: the pytest11 entry point loads the plugin, the
suite runs from the checkout and from any other directory (every option written `--opt=value` or
`--opt value`), and a user's own testinfra test beside it keeps testinfra's backends."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from cisaudit.model.catalogue import VERSIONS, controls
from cisaudit.outputs.results_json import records as json_records
from selftests.suite_runner import REPO, parse_junit

OWN_TEST = textwrap.dedent("""
    import testinfra.backend

    def test_own_host(host):
        assert type(host.backend) is testinfra.backend.get_backend_class("local")
        assert type(host.backend).__module__ == "testinfra.backend.local"
        assert host.file("/etc/passwd").exists

    def test_ssm_is_offered_to_own_tests():
        assert testinfra.backend.get_backend_class("ssm").__name__ == "SsmBackend"
""")


CASES_116 = {
    ("1.1.6", "live"),
    ("1.1.6", "persisted"),
    ("host", "auditd-installed"),
    ("host", "auditd-running"),
    ("host", "audit-enabled"),
    ("host", "load-health"),
    ("host", "event-loss"),
}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with the project installed from a copy of the checkout."""
    tmp_path = tmp_path_factory.mktemp("install")
    # From a copy: setuptools builds in the source tree (build/, *.egg-info), which the checkout must not collect.
    source = tmp_path / "source"
    junk = (".git", ".cache", ".venv", "reports", "__pycache__", "build", "*.egg-info")
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*junk))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    yield venv


def test_pip_install_registers_the_plugin(venv: Path, tmp_path: Path) -> None:
    python = str(venv / "bin" / "python")
    plugins = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print([e.value for e in m.entry_points(group='pytest11')])"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert "cisaudit.plugin" in plugins, plugins
    catalogues = subprocess.run(  # the benchmark data ships in the wheel (outside the checkout)
        [
            python,
            "-c",
            "from cisaudit.model.catalogue import VERSIONS as V, controls; print({v: len(controls(v)) for v in V})",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    shipped = {v: len(controls(v)) for v in VERSIONS}  # every catalogue of the checkout, whole
    assert catalogues.stdout.strip() == str(shipped), catalogues.stdout + catalogues.stderr[-2000:]

    own = tmp_path / "own"
    own.mkdir()
    (own / "test_own.py").write_text(OWN_TEST)
    mine = subprocess.run(
        [
            python,
            "-m",
            "pytest",
            "--hosts=local://",
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            "/dev/null",
            f"--rootdir={own}",
            str(own),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=own,
    )
    assert mine.returncode == 0 and "2 passed" in mine.stdout, mine.stdout[-3000:] + mine.stderr[-2000:]
    assert not (own / "reports").exists(), "a run without the suite's checks wrote the suite's reports"

    junit = tmp_path / "junit.xml"
    suite = subprocess.run(
        [
            python,
            "-m",
            "pytest",
            "--hosts=local://",
            "--controls=1.1.6",
            f"--junitxml={junit}",
            f"--html={tmp_path / 'r.html'}",
            f"--compliance-report={tmp_path / 'c.html'}",
            f"--results-json={tmp_path / 'r.json'}",
            f"--xccdf={tmp_path / 'x.xml'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert suite.returncode in (0, 1), suite.stdout[-3000:] + suite.stderr[-2000:]
    cases = parse_junit(junit)
    assert {(c, k) for _, c, k in cases} == CASES_116, cases.keys()


def _checkout(tmp_path: Path) -> Path:
    """What the suite's run needs of a checkout: pytest.ini and tests/ (a stray collection finds nothing else)."""
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO / "tests", checkout / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pytest.ini", checkout)
    return checkout


def _waivers(tmp_path: Path) -> Path:
    """A waiver file outside the checkout, in a directory of its own (as /srv/waivers.yml)."""
    (tmp_path / "srv").mkdir()
    waivers = tmp_path / "srv" / "waivers.yml"
    expires = dt.date.today() + dt.timedelta(days=90)  # required, at most a year ahead
    waivers.write_text(f'1.1.6:\n  justification: "ticket SEC-1"\n  run: false\n  expiration_date: {expires}\n')
    return waivers


def _assert_reports(run: subprocess.CompletedProcess[str], reports: Path) -> None:
    """The suite ran with pytest.ini's addopts (JUnit, pytest-html) and wrote every output under reports."""
    shown = run.stdout[-3000:] + run.stderr[-2000:]
    assert run.returncode in (0, 1), shown
    assert {(c, k) for _, c, k in parse_junit(reports / "junit.xml")} == CASES_116, shown
    assert (reports / "tests.html").is_file() and (reports / "compliance.html").is_file(), shown
    records = json_records(json.loads((reports / "results.json").read_text()))
    waived = [r for r in records if r["control_id"] == "1.1.6"]
    assert waived and all(r["waiver"]["justification"] == "ticket SEC-1" for r in waived), waived


def test_option_values_with_a_space_from_the_checkout(venv: Path, tmp_path: Path) -> None:
    """Regression: `--waivers /srv/waivers.yml` made /srv the rootdir (pytest.ini unread: no addopts, no
    testpaths; the working directory collected) and, without the entry point, an unknown option."""
    checkout, waivers = _checkout(tmp_path), _waivers(tmp_path)
    known_hosts = tmp_path / "srv" / "known_hosts"
    known_hosts.write_text("")
    run = subprocess.run(
        [str(venv / "bin" / "pytest"), "--hosts=local://", "--controls", "1.1.6", "--waivers", str(waivers)]
        + ["--known-hosts", str(known_hosts)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=checkout,
    )
    assert "inifile: None" not in run.stderr, run.stderr[-2000:]
    _assert_reports(run, checkout / "reports")


def test_venv_pytest_runs_the_suite_from_another_directory(venv: Path, tmp_path: Path) -> None:
    checkout, waivers = _checkout(tmp_path), _waivers(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = subprocess.run(
        [str(venv / "bin" / "pytest"), str(checkout / "tests"), "--hosts=local://", "--controls=1.1.6"]
        + ["--waivers", str(waivers)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=elsewhere,
    )
    _assert_reports(run, elsewhere / "reports")
    assert not (checkout / "reports").exists()
