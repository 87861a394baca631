"""Host text as a terminal or a CI log may show it (the one helper every such output uses)."""

from __future__ import annotations

import re

from cisaudit.model.verdict import Verdict

# C0 controls but tab and newline (ESC starts ANSI/OSC sequences that recolour, retitle, hide or
# rewrite lines; CR overwrites one), DEL, C1 controls (0x9b is a one-byte CSI), bidi and
# zero-width marks.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """Every unsafe character as a visible escape (`\\x1b`, `\\r`, `\\u202e`); the rest unchanged."""
    return _UNSAFE.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


def printable(verdict: Verdict) -> Verdict:
    """A verdict whose summary and evidence are safe to print (pytest's report, -rA, CI logs)."""
    return Verdict(verdict.status, terminal_safe(verdict.summary), tuple(map(terminal_safe, verdict.evidence)))
