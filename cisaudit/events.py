"""--verify-events: read each audited path once and find the events auditd wrote for them.

One remote command per host. `ausearch --input-logs` is required: without it ausearch reads
stdin when stdin is not a terminal, finding nothing over SSH and hanging over paramiko.
Each path is opened for reading (a watch on a file or directory, or on a symlink's target)
and readlink'ed: opening through a symlink does not trigger a watch on the symlink itself,
but readlink(2) is in the kernel's read class and always does.
"""

from __future__ import annotations

import re
import shlex

_NAME_RE = re.compile(r'\bname=(?:"([^"]*)"|([0-9A-F]+)\b)')
MARK = "@@cisaudit-events"


def render_script(paths: list[str], key: str) -> str:
    reads = "".join(f"dd if={shlex.quote(p)} of=/dev/null bs=1 count=1 2>/dev/null\n"
                    f"readlink {shlex.quote(p)} >/dev/null 2>&1\n" for p in paths)
    return (
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH LC_ALL=C; export PATH LC_ALL\n"
        # ausearch --start has 1 s resolution: leave the second of any earlier access (the probe's
        # own readlink -m) so that only this script's reads can count.
        "sleep 1; start=$(date '+%x %T')\n"
        f"{reads}"
        "i=0; while [ $i -lt 20 ]; do\n"  # auditd writes asynchronously: wait up to ~10 s
        f"  out=$(ausearch --input-logs -k {shlex.quote(key)} --start $start 2>&1)\n"
        "  missing=0\n"
        + "".join(f"  printf '%s' \"$out\" | grep -qF {shlex.quote(name)} || missing=1\n"
                  for name in (f'name="{p}"' for p in paths))
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
