"""CIS Docker Benchmark v1.7 section 1.1: audit rules for Docker's files, per host.

Each test is one (host, control, check). `live` judges the kernel's rules (its own list, or auditctl -l),
`persisted` the rules the host's loader reads at boot, `events` (--verify-events) that auditd
really records. A path absent from the host makes its control not applicable (skipped); so does
a waiver (--waivers) for a failing control, with its justification.
"""

import pytest

from cisaudit.model.verdict import Status, Verdict


def _assert(verdict: Verdict) -> None:
    if verdict.status in (Status.NOT_APPLICABLE, Status.WAIVED):  # JUnit: skipped, with the reason or justification
        pytest.skip(verdict.summary)
    if verdict.status == Status.FAIL:
        pytest.fail("\n".join((verdict.summary, *verdict.evidence)), pytrace=False)


def test_host(cis_case, verdict: Verdict) -> None:
    """auditd installed and running, audit enabled, the boot-time load healthy (and --remediate's result)."""
    _assert(verdict)


def test_control(cis_case, verdict: Verdict) -> None:
    _assert(verdict)


def test_backout(cis_case, verdict: Verdict) -> None:
    """Last per host: with --backout, the change is reverted and the restore verified."""
    _assert(verdict)
