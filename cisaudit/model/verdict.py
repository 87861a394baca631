"""The names a verdict is made of: which check, which status, and the verdict itself.

Both enums are `StrEnum`s whose values are what JUnit properties, results.json and the reports
carry (docs/results.md), so a value read back from any output converts with `Check(text)` or
`Status(text)`, and an unknown name raises instead of being judged as something else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

T = TypeVar("T")


class Check(StrEnum):
    # per control (docs/architecture.md)
    LIVE = "live"  # the kernel's rules now
    PERSISTED = "persisted"  # the rules the next boot loads
    EVENTS = "events"  # --verify-events: auditd recorded real accesses
    # per host
    REMEDIATION = "remediation"  # --remediate's result
    AUDITD_INSTALLED = "auditd-installed"
    AUDITD_RUNNING = "auditd-running"
    AUDIT_ENABLED = "audit-enabled"
    LOAD_HEALTH = "load-health"  # the boot-time load and the live listing agree, nothing lost
    EVENT_LOSS = "event-loss"  # rate limit and backlog settings, live and after boot, drop no records
    BACKOUT = "backout"  # --backout: the revert and its verification
    PUBLISH = "publish"  # --ssm-compliance / --security-hub: the host's result reached AWS (cisaudit/publish)


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not-applicable"  # the audited path is absent (JUnit: skipped)
    ERROR = "error"  # the host could not be judged (JUnit: error in setup)
    WAIVED = "waived"  # a failure an unexpired waiver covers, or a control `run: false` skips
    NOT_RUN = "not-run"  # the check's own status under a `run: false` waiver (reported waived)


CONTROL_CHECKS = (Check.LIVE, Check.PERSISTED)  # judged from the snapshot alone, per control
HOST_CHECKS = (
    Check.AUDITD_INSTALLED,
    Check.AUDITD_RUNNING,
    Check.AUDIT_ENABLED,
    Check.LOAD_HEALTH,
    Check.EVENT_LOSS,
)


@dataclass(frozen=True)
class Verdict:
    status: Status
    summary: str
    evidence: tuple[str, ...] = ()


def dispatch(table: Mapping[Check, T], check: str, kind: str) -> T:
    """The table's entry for `check`; a name that is not one of its checks raises (never a fallback)."""
    try:
        return table[Check(check)]
    except (KeyError, ValueError):
        known = ", ".join(table)
        raise ValueError(f"{check!r} is not a {kind} check (known: {known})") from None
