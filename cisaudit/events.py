"""--verify-events: read each audited path once and find the events auditd wrote for them.

One remote command per host. `ausearch --input-logs` is required: without it ausearch reads
stdin when stdin is not a terminal, finding nothing over SSH and hanging over paramiko.
"""

from __future__ import annotations

import re
import shlex

_NAME_RE = re.compile(r'\bname=(?:"([^"]*)"|([0-9A-F]+)\b)')
MARK = "@@cisaudit-events"


def render_script(paths: list[str], key: str) -> str:
    reads = "".join(f"dd if={shlex.quote(p)} of=/dev/null bs=1 count=1 2>/dev/null\n"
                    f"ls -d {shlex.quote(p)}/. >/dev/null 2>&1\n" for p in paths)
    return (
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH LC_ALL=C; export PATH LC_ALL\n"
        "start=$(date '+%x %T'); sleep 1\n"
        f"{reads}"
        "i=0; while [ $i -lt 10 ]; do\n"
        f"  out=$(ausearch --input-logs -k {shlex.quote(key)} --start $start 2>&1)\n"
        "  missing=0\n"
        + "".join(f"  printf '%s' \"$out\" | grep -qF {shlex.quote(p)} || missing=1\n" for p in paths)
        + "  [ $missing = 0 ] && break; i=$((i + 1)); sleep 0.5\n"
        "done\n"
        f"echo {MARK}; printf '%s\\n' \"$out\"\n"
    )


def recorded_names(output: str) -> set[str]:
    """Paths named in the PATH records ausearch returned."""
    _, _, body = output.partition(MARK + "\n")
    names = set()
    for quoted, hexed in _NAME_RE.findall(body):
        if quoted:
            names.add(quoted)
        else:
            try:
                names.add(bytes.fromhex(hexed).decode(errors="replace"))
            except ValueError:
                continue
    return names
