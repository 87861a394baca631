"""`pip install .` into a fresh virtual environment: the pytest11 entry point loads the plugin, the
suite runs from the checkout, and a user's own testinfra test beside it keeps testinfra's backends."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

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


def test_pip_install_registers_the_plugin(tmp_path: Path) -> None:
    # From a copy: setuptools builds in the source tree (build/, *.egg-info), which the checkout must not collect.
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".cache", "reports", "__pycache__", "build"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
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
            "from cisaudit.model.catalogue import VERSIONS as V, controls; print([len(controls(v)) for v in V])",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert catalogues.stdout.strip() == "[16, 16]", catalogues.stdout + catalogues.stderr[-2000:]

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
    assert {(c, k) for _, c, k in cases} == {
        ("1.1.6", "live"),
        ("1.1.6", "persisted"),
        ("host", "auditd-installed"),
        ("host", "auditd-running"),
        ("host", "audit-enabled"),
        ("host", "load-health"),
        ("host", "event-loss"),
    }, cases.keys()
