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


# Characters XML 1.0 cannot hold at all (Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] |
# [#x10000-#x10FFFF]): one of them in host text makes a whole report not well-formed.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """Text an XML report can hold: each character XML forbids as a visible escape (`\\x01`)."""
    return _NOT_XML.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


def printable(verdict: Verdict) -> Verdict:
    """A verdict whose summary and evidence are safe to print (pytest's report, -rA, CI logs)."""
    return Verdict(verdict.status, terminal_safe(verdict.summary), tuple(map(terminal_safe, verdict.evidence)))
