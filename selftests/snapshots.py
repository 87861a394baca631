"""Hand-made Snapshots for the pure model's tests and the benchmark: one builder, so a new
Snapshot field has one default here (cisaudit/model/snapshot.py)."""

from __future__ import annotations

from typing import Any

from cisaudit.model.snapshot import Snapshot

AUGENRULES_UNIT = "[Service]\nExecStart=/sbin/auditd\nExecStartPost=-/sbin/augenrules --load\n"
# `auditctl -s` of a Debian 12 host that loaded its shipped rules (-b 8192, --backlog_wait_time 60000).
STATUS = (
    "enabled 1\nfailure 1\npid 42\nrate_limit 0\nbacklog_limit 8192\nlost 0\nbacklog 0\n"
    "backlog_wait_time 60000\nbacklog_wait_time_actual 0\n"
)
AUDITCTL_UNIT = "[Service]\nExecStart=/sbin/auditd\nExecStartPost=-/sbin/auditctl -R /etc/audit/audit.rules\n"


def audited_host(**fields: Any) -> Snapshot:
    """A root systemd host with auditd installed and running, audit enabled 1, no rules in the
    kernel, and augenrules loading rules.d at boot; `fields` replace any of it."""
    base: dict[str, Any] = dict(
        uid=0,
        arch="x86_64",
        auditctl="/sbin/auditctl",
        auditd="/sbin/auditd",
        auditd_running=True,
        systemd=True,
        status_rc=0,
        status_text=STATUS,
        listing_rc=0,
        listing_text="No rules",
        auditd_unit=AUGENRULES_UNIT,
    )
    return Snapshot(**{**base, **fields})
