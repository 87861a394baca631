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


def piece(name: str) -> str:
    """The text of one script file in cisaudit/host/scripts/."""
    return (SCRIPTS / name).read_text()


def assignments(values: dict[str, str]) -> str:
    """`NAME='value'` lines, each value quoted for the shell."""
    for name in values:
        if not _NAME.fullmatch(name):
            raise ValueError(f"not a shell variable name: {name!r}")
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in values.items())


def compose(values: dict[str, str], *pieces: str) -> str:
    """The assignments, preamble.sh, then each named piece in order."""
    texts = [piece(name) for name in (PREAMBLE, *pieces)]
    return assignments(values) + "".join(t if t.endswith("\n") else t + "\n" for t in texts)
