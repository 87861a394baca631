"""Processes the kernel never audits: started before auditing was first enabled.

Pure code. A task gets its audit context when it is forked, and only if audit has ever been
enabled by then (kernel/auditsc.c audit_alloc: `if (likely(!audit_ever_enabled)) return 0;`, no
context and no syscall-audit flag). Nothing that task does is ever recorded, whatever the rules,
and enabling audit later does not change it. `audit=1` on the kernel command line enables audit
before the first process; without it, auditd enables audit when it starts (docs/kernel-behaviour.md).
So a dockerd or containerd started before the running auditd may predate the first enable: the
probe cannot see when that was, and such a daemon is never taken as audited (fail closed).
"""

from __future__ import annotations

DAEMONS = ("dockerd", "containerd")  # whose own accesses to Docker's files matter most


def audit_from_boot(cmdline: str) -> bool:
    """The kernel command line enables audit before the first process. The kernel's parser
    (kernel/audit.c audit_enable) reads off, on or a number; the last audit= wins, and words
    after `--` are init's. Anything else is not taken as on."""
    words = cmdline.split()
    kernel = words[: words.index("--")] if "--" in words else words
    values = [w.partition("=")[2].lower() for w in kernel if w.startswith("audit=")]
    if not values or values[-1] == "off":
        return False
    if values[-1] == "on":
        return True
    try:
        return int(values[-1], 0) != 0
    except ValueError:
        return False


def unaudited_daemons(cmdline: str, starts: list[tuple[str, int, int]]) -> list[str]:
    """Why some of a running dockerd's or containerd's accesses may never be recorded: each one
    started no later than the running auditd, on a kernel without audit=1. Empty when audit is
    on from boot, when auditd is not running (reported on its own) or no daemon runs."""
    if audit_from_boot(cmdline):
        return []
    auditd = [start for name, _, start in starts if name == "auditd"]
    if not auditd:
        return []
    return [
        f"{name} (pid {pid}) started before auditd (pid {next(p for n, p, _ in starts if n == 'auditd')}) "
        "and the kernel command line has no audit=1: if auditing was first enabled after it started, "
        f"the kernel never audits {name} (a task forked before audit was ever enabled has no audit "
        f"context, kernel/auditsc.c audit_alloc). Put audit=1 on the kernel command line, or restart {name}"
        for name, pid, start in starts
        if name in DAEMONS and start <= auditd[0]
    ]
