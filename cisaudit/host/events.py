"""--verify-events: make one harmless access of each required permission class and find the
event auditd wrote for each.

One remote command per host (POSIX sh). Each access is made by its own process, and the
script announces that process's pid, so an event proves exactly one (path, class): the
SYSCALL record's pid is the trigger's and a PATH record names the path. The accesses:

- r: open O_RDONLY (dd, reading nothing);
- w: open O_WRONLY|O_APPEND without O_CREAT (dd, writing nothing: content and mtime stay);
  on a directory it fails with EISDIR, on a socket with ENXIO, and fires all the same;
- x: execve that never runs the program. Kernels that open the file before copying the
  arguments (measured: 6.18 does, Debian's 6.1 does not) get one argument longer than
  MAX_ARG_STRLEN (32 pages): the audited open, then E2BIG. Older ones copy first (E2BIG
  before the open records nothing): there the exec runs under a 1 KiB address-space limit, so
  after the audited open the kernel cannot map the program and kills the process (SIGSEGV,
  no core) before its first instruction. Which kind of kernel: an exec of a missing file with
  the long argument fails "not found" (127) where the open comes first, E2BIG (126) elsewhere;
- a: chmod to the file's current mode (stat -L: the mode of what a symlink points to).

Waiting is bounded: after the accesses the script logs a user message through the kernel
and waits until auditd has written it (auditd writes in order, so every earlier event is in
the log then), at most `timeout` seconds. `ausearch --input-logs` is required: without it
ausearch reads stdin when stdin is not a terminal, finding nothing over SSH and hanging
over paramiko.
"""

from __future__ import annotations

import re
import secrets
import shlex

from cisaudit.model.decisions import Accesses, Trigger

MARK = "@@cisaudit-events"
_NAME_RE = re.compile(r'\bname=(?:"([^"]*)"|([0-9A-F]+)\b)')
_SERIAL_RE = re.compile(r"msg=audit\([0-9.]+:(\d+)\)")
_PID_RE = re.compile(r"(?<![a-z])pid=(\d+)")
_SYSCALL_RE = re.compile(r"\barch=(\w+) syscall=(\d+)\b.*?\bexit=(\S+)")

_PRELUDE = r"""PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH LC_ALL=C; export PATH LC_ALL
start=$(date '+%x %T')
big=$(head -c $(( $(getconf PAGESIZE) * 32 )) /dev/zero | tr '\0' x)
# CISAUDIT_X (e2big or nomem, see above) may be preset by the self-tests.
if [ -z "${CISAUDIT_X:-}" ]; then
  /nonexistent-cisaudit-events "$big" 2>/dev/null
  if [ $? = 127 ]; then CISAUDIT_X=e2big; else CISAUDIT_X=nomem; fi
fi
# spawned LABEL PATH: announce the process just started in the background, and wait for it.
spawned() { printf '%s trigger %s %s %s\n' "$MARK" "$1" "$!" "$2"; wait "$!"; }
# access CLASS PATH: one harmless access of that permission class, by a new process.
# shellcheck disable=SC3045 # ulimit -c/-v: not POSIX, but dash, bash and busybox sh all have them
access() {
  case $1 in
  r) dd if="$2" of=/dev/null bs=1 count=0 2>/dev/null & ;;
  w) dd if=/dev/null of="$2" oflag=append conv=notrunc,nocreat count=0 2>/dev/null & ;;
  x) if [ "$CISAUDIT_X" = e2big ]; then "$2" "$big" 2>/dev/null &
     else (ulimit -c 0; ulimit -v 1; exec "$2") 2>/dev/null & fi ;;
  a) chmod "$(stat -L -c %a -- "$2")" -- "$2" 2>/dev/null & ;;
  esac
  spawned "$1" "$2"
}
# first_file DIR: a regular file in DIR, to show a watch on DIR covers what is inside.
first_file() {
  for e in "$1"/* "$1"/.[!.]*; do
    if [ -f "$e" ] && [ ! -L "$e" ]; then printf '%s\n' "$e"; return; fi
  done
}
"""
# Only the records and fields the parser reads: SSM returns just 24,000 characters of output.
# (Audit writes a name with spaces or odd bytes in hex, so splitting on blanks is safe.)
_ESSENTIALS = (
    'awk \'/^type=(SYSCALL|PATH) / { s = $1 " " $2; '
    'for (i = 3; i <= NF; i++) if ($i ~ /^(arch|syscall|exit|pid|name)=/) s = s " " $i; print s }\''
)


def _accesses(check: Accesses) -> str:
    path = shlex.quote(check.path)
    lines = "".join(f"access {c} {path}\n" for c in check.classes)
    if check.subtree:
        lines += (
            f"f=$(first_file {path})\n"
            f'if [ -n "$f" ]; then for c in {" ".join(check.classes)}; do access "$c" "$f"; done; fi\n'
        )
    return lines


def render_script(checks: list[Accesses], key: str, timeout: int = 10, extra: str = "") -> str:
    """The command; `extra` is more sh run among the accesses (it may use `spawned`)."""
    sentinel = f"cisaudit-events-{secrets.token_hex(8)}"
    return (
        f"MARK={shlex.quote(MARK)}\n"
        + _PRELUDE
        + "".join(_accesses(c) for c in checks)
        + extra
        + f"auditctl -m {sentinel} >/dev/null 2>&1\n"
        f"end=$(( $(date +%s) + {timeout} ))\n"
        'while [ "$(date +%s)" -lt $end ]; do\n'
        f"  ausearch --input-logs -m USER --start $start 2>/dev/null | grep -qF {sentinel} && break\n"
        "  sleep 0.1\n"
        "done\n"
        'echo "$MARK events"\n'
        f"ausearch --input-logs -k {shlex.quote(key)} --start $start 2>/dev/null | {_ESSENTIALS}\n"
    )


def _names(record: str) -> set[str]:
    names = set()
    for quoted, hexed in _NAME_RE.findall(record):
        if quoted:
            names.add(quoted)
        else:
            try:
                names.add(bytes.fromhex(hexed).decode(errors="replace"))
            except ValueError:
                continue
    return names


def recorded(output: str) -> dict[Trigger, list[str]]:
    """Each announced access and the events (arch, syscall number, exit) of its process naming its path;
    an empty list means the kernel recorded nothing with the key for it."""
    head, _, body = output.partition(f"{MARK} events\n")
    triggers = []
    for line in head.splitlines():
        if line.startswith(f"{MARK} trigger "):
            label, pid, path = line[len(MARK) + 9 :].split(" ", 2)
            triggers.append(Trigger(label, int(pid), path))
    events: dict[str, list[str]] = {}
    for record in body.splitlines():
        serial = _SERIAL_RE.search(record)
        if serial:
            events.setdefault(serial.group(1), []).append(record)
    by_pid: dict[int, list[tuple[str, set[str]]]] = {}
    for records in events.values():
        syscall = next((r for r in records if r.startswith("type=SYSCALL")), None)
        pid_match = _PID_RE.search(syscall) if syscall else None
        if syscall is None or pid_match is None:
            continue
        fields = _SYSCALL_RE.search(syscall)
        what = "arch={} syscall={} exit={}".format(*fields.groups()) if fields else "syscall"
        names = set().union(*(_names(r) for r in records if r.startswith("type=PATH")))
        by_pid.setdefault(int(pid_match.group(1)), []).append((what, names))
    return {t: [what for what, names in by_pid.get(t.pid, []) if t.path in names] for t in triggers}
