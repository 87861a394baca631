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

Every access is made as root, so a path that any other user could redirect (a component of it,
or of what it resolves to, owned by another user, or a directory among them writable by others or
by a group other than root's) is refused and never touched: that user could swap in a symlink to /etc/shadow between
the stat and the chmod, or a FIFO that blocks the open (docs/threat-model.md).

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

from cisaudit.host.shell import compose
from cisaudit.model.decisions import REFUSED, Accesses, Trigger
from cisaudit.model.kernel import AuditKeys

MARK = "@@cisaudit-events"
_NAME_RE = re.compile(r'\bname=(?:"([^"]*)"|([0-9A-F]+)\b)')
_SERIAL_RE = re.compile(r"msg=audit\([0-9.]+:(\d+)\)")
_PID_RE = re.compile(r"(?<![a-z])pid=(\d+)")
_SYSCALL_RE = re.compile(r"\barch=(\w+) syscall=(\d+)\b.*?\bexit=(\S+)")


def render_script(checks: list[Accesses], key: str | AuditKeys, timeout: int = 10, extra: str = "") -> str:
    """The command (cisaudit/host/scripts/events.sh); `extra` is more sh run after the accesses
    (it may use `spawned`)."""
    for check in checks:
        if set(check.classes) - set("rwxa"):
            raise ValueError(f"permission classes must be some of rwxa, not {check.classes!r}")
    words = [w for c in checks for w in (c.classes, "1" if c.subtree else "0", c.path)]
    values = {
        "MARK": MARK,
        "CHECKS": shlex.join(words),
        "EXTRA": extra,
        "SENTINEL": f"cisaudit-events-{secrets.token_hex(8)}",
        "TIMEOUT": str(int(timeout)),
        "KEY": " ".join(AuditKeys.of(key).names),  # none: events with any key
    }
    return compose(values, "events.sh")


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
        elif line.startswith(f"{MARK} {REFUSED} 0 "):  # a path another user could redirect
            triggers.append(Trigger(REFUSED, 0, line[len(MARK) + len(REFUSED) + 4 :]))
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
