"""One run's results as data: what the HTML report, results.json and the XCCDF file are made from.

Built on the controller from the user_properties the `verdict` fixture sets (so it works under
xdist), never from the verdict model itself.
"""

from __future__ import annotations

import importlib.metadata
import re
import shlex
import subprocess
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache, cached_property
from pathlib import Path

from cisaudit.model.catalogue import Benchmark, Control, controls
from cisaudit.model.delta import Delta
from cisaudit.model.verdict import HOST_CHECKS, Check, Status
from cisaudit.model.waivers import Waiver
from cisaudit.outputs.record import HOST_CONTROL, CaseRecord
from cisaudit.outputs.status import FLEET_STATUS, REQUIRED_CHECKS, STATUSES, control_result

REPO = Path(__file__).resolve().parents[2]
__all__ = ["REQUIRED_CHECKS", "STATUSES"]  # re-exported: the outputs' readers import them from here too


def natural_key(text: str) -> list[int | str]:
    """Sort key that orders numbers by value: 10.0.0.2 before 10.0.0.10."""
    return [int(part) if i % 2 else part.lower() for i, part in enumerate(re.split(r"(\d+)", text))]


class Overall(StrEnum):
    """The run's one-word verdict (README "Outputs"). Only a run that checked the whole benchmark
    on every host it was given, and found nothing failing, is COMPLIANT."""

    COMPLIANT = "compliant"  # every control and host check ran on every host; none failed or errored
    NOT_COMPLIANT = "not compliant"  # an unwaived failure (whatever the scope)
    ERRORS = "errors"  # a check could not be judged (whatever the scope)
    PARTIAL = "partial scope"  # nothing failed, but the selection left part of the benchmark or a host out
    NOTHING_CHECKED = "nothing checked"  # no control was checked on any host


# What a complete run checks on each host: every control of the benchmark with REQUIRED_CHECKS
# (--verify-events' `events` is extra), and the host checks under the control id `host`.
REQUIRED_HOST_CHECKS = frozenset(HOST_CHECKS)


@dataclass(frozen=True)
class Scope:
    """What the run checked, against the benchmark's controls and the hosts it was given."""

    benchmark_controls: int
    checked: tuple[str, ...]  # control ids with every required check on every host
    not_checked: tuple[str, ...]  # control ids (and `host`) missing a required check somewhere
    hosts_not_checked: tuple[str, ...]  # hosts given to the run with no case at all

    @property
    def complete(self) -> bool:
        return not self.not_checked and not self.hosts_not_checked

    def describe(self) -> str:
        """One line, e.g. "1 of 16 controls checked; not checked: 1.1.3, 1.1.4; host checks"."""
        text = f"{len(self.checked)} of {self.benchmark_controls} controls checked on every host"
        left = [c for c in self.not_checked if c != HOST_CONTROL]
        parts = [f"not checked: {', '.join(left)}"] if left else []
        if HOST_CONTROL in self.not_checked:
            parts.append("host checks not run on every host")
        if self.hosts_not_checked:
            parts.append(f"hosts with no check: {', '.join(self.hosts_not_checked)}")
        return "; ".join([text, *parts])


@dataclass(frozen=True)
class RunInfo:
    """What ran: the header of every output."""

    command: str
    mode: str
    require_all: bool
    started: float
    finished: float
    tool_version: str = ""
    commit: str = ""
    hosts: tuple[str, ...] = ()  # the hosts the run was given (empty: those with a case)
    benchmark: Benchmark = field(kw_only=True)  # the version checked: every output names it


@dataclass
class RunResults:
    info: RunInfo
    cases: list[CaseRecord]
    host_facts: dict[str, dict[str, object]] = field(default_factory=dict)
    remote_commands: dict[str, int] = field(default_factory=dict)
    delta: Delta | None = None  # --baseline: this run against an earlier one (model/delta.py)
    waivers: tuple[Waiver, ...] = ()  # --waivers: the exception register (outputs/waiver_register.py)

    def add(self, record: CaseRecord) -> None:
        """One more record (a publication error, outputs/registry.py); what was derived is derived again."""
        self.cases.append(record)
        for name in [n for n, v in vars(type(self)).items() if isinstance(v, cached_property)]:
            self.__dict__.pop(name, None)

    @cached_property
    def by_host(self) -> dict[str, list[CaseRecord]]:
        """Each host's cases, hosts in natural order."""
        cases: dict[str, list[CaseRecord]] = {}
        for case in self.cases:
            cases.setdefault(case.host, []).append(case)
        return {host: cases[host] for host in sorted(cases, key=natural_key)}

    @property
    def hosts(self) -> list[str]:
        return list(self.by_host)

    @cached_property
    def controls(self) -> list[Control]:
        """The run's controls, in catalogue order (computed once: every per-host output asks)."""
        seen = {c.control_id for c in self.cases}
        return [c for c in self.catalogue if c.id in seen]

    @property
    def catalogue(self) -> tuple[Control, ...]:
        """Every control of the run's benchmark version."""
        return controls(self.info.benchmark.version)

    @property
    def profile(self) -> str:
        levels = sorted({c.level for c in self.controls})
        return "Level " + " + ".join(str(level) for level in levels) if levels else "no controls"

    @cached_property
    def overall(self) -> Overall:
        statuses = {c.status for c in self.cases}
        if Status.ERROR in statuses:
            return Overall.ERRORS
        if Status.FAIL in statuses:
            return Overall.NOT_COMPLIANT
        if all(c.control_id == HOST_CONTROL for c in self.cases):
            return Overall.NOTHING_CHECKED
        return Overall.COMPLIANT if self.scope.complete else Overall.PARTIAL

    @cached_property
    def scope(self) -> Scope:
        """Which of the benchmark's controls (and host checks) ran on every host, which did not."""
        hosts = list(dict.fromkeys([*self.info.hosts, *self.hosts]))
        required = [(c.id, REQUIRED_CHECKS) for c in self.catalogue] + [(HOST_CONTROL, REQUIRED_HOST_CHECKS)]
        incomplete: set[str] = set()  # host by host: a fleet's (host, check) pairs are never all held at once
        for host in hosts:
            done: dict[str, set[Check]] = {}
            for case in self.by_host.get(host, ()):
                done.setdefault(case.control_id, set()).add(case.check)
            incomplete.update(cid for cid, checks in required if not checks <= done.get(cid, set()))
        missing = [cid for cid, _ in required if not hosts or cid in incomplete]
        return Scope(
            len(self.catalogue),
            tuple(c.id for c in self.catalogue if c.id not in missing),
            tuple(missing),
            tuple(h for h in self.info.hosts if h not in self.by_host),
        )

    @cached_property
    def control_status(self) -> dict[tuple[str, str], Status]:
        """(host, control id) -> the control's status in the fleet view (outputs/status.py); hosts in natural order."""
        statuses: dict[tuple[str, str], Status] = {}
        for host, cases in self.by_host.items():  # host by host: the checks of one host at a time
            checks: dict[str, list[CaseRecord]] = {}
            for case in cases:
                if case.control_id != HOST_CONTROL:
                    checks.setdefault(case.control_id, []).append(case)
            statuses.update(((host, cid), FLEET_STATUS[control_result(found)]) for cid, found in checks.items())
        return statuses

    def counts(self, host: str | None = None) -> Counter[str]:
        return Counter(c.status for c in (self.cases if host is None else self.by_host.get(host, [])))

    def changes(self, host: str) -> list[str]:
        return list(dict.fromkeys(c.change for c in self.by_host.get(host, []) if c.change))

    def expired_waivers(self) -> list[tuple[str, str, str]]:
        """(control id, expiration date, justification) of every expired waiver the run met."""
        return sorted(
            {(c.control_id, c.waiver_expiration, c.waiver_expired) for c in self.cases if c.waiver_expired},
            key=lambda w: natural_key(w[0]),
        )


def describe_mode(remediate: bool, backout: bool, dry_run: bool, require_all: bool) -> str:
    mode = (
        "remediate + backout"
        if remediate and backout
        else "remediate"
        if remediate
        else "backout"
        if backout
        else "audit"
    )
    return mode + (" (dry run)" if dry_run else "") + (", golden image (--require-all)" if require_all else "")


def command_line(args: tuple[str, ...] | list[str]) -> str:
    return shlex.join(["pytest", *args])


@cache
def tool_version() -> str:
    """The checkout's version (pyproject.toml), or the installed wheel's."""
    pyproject = REPO / "pyproject.toml"
    if pyproject.exists():
        return str(tomllib.loads(pyproject.read_text())["project"]["version"])
    return importlib.metadata.version("cisaudit")


@cache
def commit() -> str:
    """The checkout's commit ("+dirty" with local changes), or "unknown" outside git. One `git
    status --porcelain=v2 --branch` gives both (`# branch.oid SHA`, then a line per change)."""
    try:
        status = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    oid = next((line.split()[2] for line in status if line.startswith("# branch.oid ")), "")
    if not re.fullmatch(r"[0-9a-f]{40,64}", oid):  # "(initial)": no commit yet
        return "unknown"
    dirty = any(not line.startswith("#") for line in status)
    return oid[:12] + ("+dirty" if dirty else "")
