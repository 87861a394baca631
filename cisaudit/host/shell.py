"""Every host-side script, composed from the shared pieces in cisaudit/host/scripts/.

A script goes to the host as ONE `sh -c` command: the caller's values as `NAME='value'`
assignments (shlex.quote: any byte but NUL survives), then preamble.sh (the PATH every script
runs with), then the named pieces, whole. Python supplies only values; all shell lives in the
files, so shellcheck reads exactly what runs.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

SCRIPTS = Path(__file__).with_name("scripts")
PREAMBLE = "preamble.sh"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A whole-line comment that may go (kept: `#!` and `# shellcheck` directives).
_COMMENT_LINE = re.compile(r"^[ \t]*#(?!!| shellcheck ).*\n", re.M)


def piece(name: str) -> str:
    """The text of one script file in cisaudit/host/scripts/."""
    return (SCRIPTS / name).read_text()


def assignments(values: dict[str, str]) -> str:
    """`NAME='value'` lines, each value quoted for the shell."""
    for name in values:
        if not _NAME.fullmatch(name):
            raise ValueError(f"not a shell variable name: {name!r}")
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in values.items())


def compose(values: dict[str, str], *pieces: str, terse: bool = False) -> str:
    """The assignments, preamble.sh, then each named piece in order (`terse`: without their comment lines)."""
    return assignments(values) + joined((PREAMBLE, *pieces), terse)


def joined(names: tuple[str, ...], terse: bool = False) -> str:
    """The named pieces one after another, each ending in a newline (`terse`: without comment lines)."""
    texts = (without_comment_lines(piece(n)) if terse else piece(n) for n in names)
    return "".join(t if t.endswith("\n") else t + "\n" for t in texts)


def without_comment_lines(script: str) -> str:
    """`script` without its whole-line comments, for the SSM document (at most 64 KB, a third of it
    the scripts' comments). Only pieces are stripped, never a value, and no piece has a line that
    starts with `#` inside a quoted string: selftests/unit/test_shell_compose.py proves with bash's
    own parser that every piece means the same without them."""
    return _COMMENT_LINE.sub("", script)
