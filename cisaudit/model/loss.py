"""Settings under which the kernel drops audit records: the `event-loss` host check.

Pure code. The kernel drops a record (and counts it in `lost`) when more than `rate_limit`
records come in one second, or when the backlog queue holds `backlog_limit` records and the
process has waited `backlog_wait_time` for room (kernel/audit.c audit_log_start()). README.md,
"Verdicts", and docs/kernel-behaviour.md, "Event loss", give the thresholds and why.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# `auditctl -s` field per rules-file directive.
STATUS_FIELD = {"-r": "rate_limit", "-b": "backlog_limit", "--backlog_wait_time": "backlog_wait_time"}
BACKLOG_FLOOR = 8192  # Debian's and Fedora's shipped rules (-b 8192); CIS Linux benchmarks' audit_backlog_limit
# Before any rule sets them (measured here: `auditctl -s` with no rules loaded). The wait is 60*HZ
# jiffies (15000 at Debian's HZ=250): whatever HZ is, it is not 0.
KERNEL_DEFAULT = {"rate_limit": 0, "backlog_limit": 64, "backlog_wait_time": 15000}
_C_ULONG = re.compile(r"^(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def c_ulong(text: str) -> int | None:
    """auditctl's strtoul(value, NULL, 0): hex, octal or decimal prefix; None when not a number."""
    m = _C_ULONG.match(text.strip())
    if not m:
        return None
    digits = m.group(1)
    if digits[:2] in ("0x", "0X"):
        return int(digits, 16)
    return int(digits, 8) if digits.startswith("0") else int(digits)


@dataclass(frozen=True)
class Setting:
    name: str  # rate_limit, backlog_limit, backlog_wait_time
    value: int
    where: str  # `auditctl -s`, a rules file:line, or the kernel default


def problems(settings: Mapping[str, Setting]) -> list[str]:
    """Why these settings lose events (empty: they do not)."""
    found = []
    rate = settings["rate_limit"]
    if rate.value > 0:
        found.append(
            f"rate_limit {rate.value} ({rate.where}): the kernel drops every record beyond {rate.value} a second; "
            "a watched data-root records thousands a second while an image unpacks"
        )
    backlog, wait = settings["backlog_limit"], settings["backlog_wait_time"]
    if 0 < backlog.value < BACKLOG_FLOOR:
        found.append(
            f"backlog_limit {backlog.value} ({backlog.where}) is below {BACKLOG_FLOOR}: a burst fills the queue "
            "and records are dropped once backlog_wait_time passes"
        )
    if backlog.value > 0 and wait.value == 0:
        found.append(
            f"backlog_wait_time 0 ({wait.where}): a full backlog drops records at once instead of waiting for auditd"
        )
    return found
