"""Probe output as cisaudit/host/scripts/probe-lib.sh frames it, for tests that hand-make it:
"MARKER NAME [ARG]\n", the body with "|" before every line (what `sed 's/^/|/'` makes), "\n"."""

from __future__ import annotations

SECRET = "0123456789abcdef" * 2  # the half of the marker the host makes


def escape(body: str) -> str:
    if not body:
        return ""
    trailing = body.endswith("\n")
    lines = (body[:-1] if trailing else body).split("\n")
    return "\n".join("|" + line for line in lines) + ("\n" if trailing else "")


def section(nonce: str, name: str, arg: str = "", body: str = "", secret: str = SECRET) -> str:
    return f"{nonce}.{secret} {name}{' ' + arg if arg else ''}\n{escape(body)}\n"


def framed(nonce: str, *sections: tuple[str, str, str], done: bool = True) -> str:
    """Whole probe output from (name, arg, body) triples, ending with the `done` section."""
    return "".join(section(nonce, *s) for s in sections) + (section(nonce, "done") if done else "")
