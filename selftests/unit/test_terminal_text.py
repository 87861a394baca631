"""Issue 21.14: host text reaches terminals and CI logs with no escape sequence left to act."""

from __future__ import annotations

from cisaudit.model.verdict import Status, Verdict
from cisaudit.outputs.text import printable, terminal_safe

# OSC 0 retitles the window, OSC 8 hides a link, CSI 2K + CR rewrite the line, 0x9b is a one-byte CSI,
# U+202E reverses what follows.
HOSTILE = "ok\x1b]0;pwned\x07 \x1b]8;;http://x\x1b\\y\x1b]8;;\x1b\\ \x1b[2K\rPASS \x9b31m \u202eabc\x00\x7f"


def test_control_characters_become_visible_escapes() -> None:
    safe = terminal_safe(HOSTILE + "\ttab\nnext line é")
    assert not any(c in safe for c in "\x1b\x07\r\x9b\u202e\x00\x7f")
    assert safe.startswith("ok\\x1b]0;pwned\\x07 ") and "\\x9b31m \\u202eabc\\x00\\x7f" in safe
    assert safe.endswith("\ttab\nnext line é")  # tab, newline and text are kept


def test_a_verdict_is_shown_safe() -> None:
    verdict = printable(Verdict(Status.FAIL, HOSTILE, (HOSTILE, "plain")))
    assert verdict.status == Status.FAIL and "\x1b" not in verdict.summary + "".join(verdict.evidence)
    assert verdict.evidence[1] == "plain"
