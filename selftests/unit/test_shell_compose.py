"""cisaudit.host.shell.compose: every host-side script is the caller's values, the one PATH
preamble, then whole files from cisaudit/host/scripts/ (no shell text in Python, no slicing)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from cisaudit.host import events, probe, remediation_io
from cisaudit.host.shell import PREAMBLE, SCRIPTS, assignments, compose, piece, without_comment_lines
from cisaudit.host.ssm import frame
from cisaudit.model.catalogue import benchmark, controls
from cisaudit.model.decisions import Accesses
from cisaudit.model.locate import UNIT_DIRS

PACKAGE = Path(__file__).resolve().parents[2] / "cisaudit"
RENDERED = {
    "probe": lambda: probe.render_probe(controls("1.7.0"), ["/srv/x y"])[0],
    "probe-stat": lambda: probe.render_stat_script(["/etc/docker", "/a b"])[0],
    "apply": lambda: remediation_io.render_apply(
        "r1", "augenrules", "/etc/audit/rules.d/x.rules", [], True, benchmark("1.7.0")
    ),
    "backout": lambda: remediation_io.render_backout(None, True),
    "events": lambda: events.render_script([Accesses("/etc/docker", "rwa")], "docker"),
    "ssm-wrapper": lambda: frame.wrapper_script("true", "n0nce"),
    "ssm-fetch": lambda: frame.fetch_script("/tmp/cisaudit-ssm.AbCdEf12", "n0nce", 1, True),
}


@pytest.mark.parametrize("name", RENDERED)
def test_every_rendered_script_has_the_preamble_once(name: str) -> None:
    script = RENDERED[name]()
    assert script.count(piece(PREAMBLE)) == 1
    assert script.index(piece(PREAMBLE)) > 0  # after the values


def test_only_the_preamble_sets_path() -> None:
    for path in sorted(SCRIPTS.glob("*.sh")):
        setting = re.findall(r"^\s*(?:export\s+)?PATH=", path.read_text(), re.M)
        assert bool(setting) == (path.name == PREAMBLE), path.name


def test_the_unit_search_path_is_written_once() -> None:
    spelled = " ".join(UNIT_DIRS)
    assert not [p.name for p in SCRIPTS.glob("*.sh") if spelled in p.read_text()]
    in_python = [
        p for p in PACKAGE.rglob("*.py") if '"/run/systemd/system", "/usr/lib/systemd/system"' in p.read_text()
    ]
    assert [p.name for p in in_python] == ["locate.py"]


def test_values_survive_the_shell_and_names_are_checked() -> None:
    values = {"A": 'it\'s $(reboot) `x`\n"q"', "B": "", "C_1": "-n"}
    shown = subprocess.run(
        ["sh", "-c", assignments(values) + 'printf "%s|" "$A" "$B" "$C_1"'], capture_output=True, text=True, check=True
    ).stdout
    assert shown == "|".join(values.values()) + "|"
    for bad in ("1A", "A-B", "A B", "PATH;x", ""):
        with pytest.raises(ValueError):
            compose({bad: "x"})
    assert compose({}, "stat.sh") == piece(PREAMBLE) + piece("stat.sh")


def test_every_piece_ships_with_the_package() -> None:
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text()
    assert '"host/scripts/*.sh"' in pyproject
    assert {p.suffix for p in SCRIPTS.iterdir() if p.is_file()} == {".sh"}


def _as_bash_parses_it(script: str) -> str:
    """`script` as bash prints it back from its parse tree (`declare -f`), comments gone."""
    wrapped = f"__cisaudit_piece() {{\n{script}\n}}\ndeclare -f __cisaudit_piece\n"
    return subprocess.run(["bash", "-c", wrapped], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("name", sorted(p.name for p in SCRIPTS.glob("*.sh")))
def test_a_piece_without_its_comment_lines_means_the_same_to_the_shell(name: str) -> None:
    """The SSM document holds the pieces without their comment lines (64 KB): dropping one that is
    not a comment (a line of a quoted string that starts with `#`) changes what bash parses."""
    text = piece(name)
    terse = without_comment_lines(text)
    assert _as_bash_parses_it(terse) == _as_bash_parses_it(text)
    assert not re.search(r"^\s*#(?!!| shellcheck )", terse, re.M)


def test_dropping_a_hash_line_of_a_quoted_string_is_seen() -> None:
    """The proof above would catch a line of data taken for a comment."""
    script = "awk '\n# not a comment: awk reads it\n{ print }' /dev/null\n"
    assert _as_bash_parses_it(without_comment_lines(script)) != _as_bash_parses_it(script)
