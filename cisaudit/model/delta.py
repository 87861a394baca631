"""A run against an earlier run's results.json (--baseline): one class per (host, control, check).

Pure code. Both runs are held as a StatusTable: per host one bytearray of status codes, indexed by
(control, check) through one shared table, so a fleet of 10,000 hosts costs about a megabyte per run
(never a second fleet of records). A code is the Status's position in CODES, plus EXPIRED when an
expired waiver was met on that case.

The classes (README "Baseline delta"):
- new failure: fails or errors now; passed, was not applicable, or was waived or absent before;
- still failing: failed or errored in both runs;
- fixed: failed or errored in the baseline, not now;
- new host / host gone: the host is in only one of the runs;
- regresses at next boot: a persisted check fails while the same control's live check passes
  (the next boot loses a rule the kernel has now), and the baseline did not have that split;
- waiver expired: fails now only because a waiver that applied in the baseline has expired;
- unchanged: anything else.
`--fail-on=new` fails a run only on NEW_CLASSES.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from cisaudit.model.verdict import Check, Status

CODES = tuple(Status)  # a status's code is its position here
EXPIRED = 0x40  # flag: an expired waiver was met (the failure is unwaived because of it)
ABSENT = 0xFF  # no such case in the run
_FAILING = frozenset({CODES.index(Status.FAIL), CODES.index(Status.ERROR)})
_PASS = CODES.index(Status.PASS)
_WAIVED = CODES.index(Status.WAIVED)


class DeltaClass(StrEnum):
    NEW_FAILURE = "new failure"
    STILL_FAILING = "still failing"
    FIXED = "fixed"
    NEW_HOST = "new host"
    HOST_GONE = "host gone"
    REGRESSES_AT_BOOT = "regresses at next boot"
    WAIVER_EXPIRED = "waiver expired"
    UNCHANGED = "unchanged"


NEW_CLASSES = frozenset({DeltaClass.NEW_FAILURE, DeltaClass.REGRESSES_AT_BOOT, DeltaClass.WAIVER_EXPIRED})


class FailOn(StrEnum):
    ANY = "any"  # any unwaived failure or error fails the run (the default)
    NEW = "new"  # only NEW_CLASSES, and errors of a new host, fail the run


def code(status: Status, expired_waiver: bool = False) -> int:
    return CODES.index(status) | (EXPIRED if expired_waiver else 0)


@dataclass
class StatusTable:
    """(host, control, check) -> status code, compact. `index` may be shared by two tables."""

    index: dict[tuple[str, str], int] = field(default_factory=dict)
    hosts: dict[str, bytearray] = field(default_factory=dict)

    def put(self, host: str, control_id: str, check: str, value: int) -> None:
        slot = self.index.setdefault((control_id, check), len(self.index))
        row = self.hosts.setdefault(host, bytearray())
        if len(row) <= slot:
            row.extend(b"\xff" * (slot + 1 - len(row)))
        row[slot] = value

    def get(self, host: str, control_id: str, check: str) -> int:
        row = self.hosts.get(host)
        slot = self.index.get((control_id, check))
        return row[slot] if row is not None and slot is not None and slot < len(row) else ABSENT

    def keys(self, host: str) -> Iterator[tuple[str, str]]:
        row = self.hosts.get(host, bytearray())
        for key, slot in self.index.items():
            if slot < len(row) and row[slot] != ABSENT:
                yield key

    def __len__(self) -> int:
        return sum(len(row) - row.count(ABSENT) for row in self.hosts.values())


@dataclass(frozen=True)
class BaselineInfo:
    """Where the baseline came from, for the report's heading."""

    path: str
    schema_version: str
    started: str  # the baseline run's start, ISO 8601
    commit: str


def _splits(table: StatusTable, host: str, control_id: str) -> bool:
    """Whether live passes and persisted fails for this control on this host."""
    live = table.get(host, control_id, Check.LIVE)
    persisted = table.get(host, control_id, Check.PERSISTED) & ~EXPIRED
    return live != ABSENT and live & ~EXPIRED == _PASS and persisted in _FAILING


def classify(now: StatusTable, before: StatusTable, host: str, control_id: str, check: str) -> DeltaClass:
    """The class of one case of the current run (`now`) against the baseline (`before`)."""
    if host not in before.hosts:
        return DeltaClass.NEW_HOST
    current = now.get(host, control_id, check)
    old = before.get(host, control_id, check)
    failing = current != ABSENT and current & ~EXPIRED in _FAILING
    was_failing = old != ABSENT and old & ~EXPIRED in _FAILING
    if not failing:
        return DeltaClass.FIXED if was_failing else DeltaClass.UNCHANGED
    if was_failing:
        return DeltaClass.STILL_FAILING
    if current & EXPIRED and old != ABSENT and old & ~EXPIRED == _WAIVED:
        return DeltaClass.WAIVER_EXPIRED
    if check == Check.PERSISTED and _splits(now, host, control_id) and not _splits(before, host, control_id):
        return DeltaClass.REGRESSES_AT_BOOT
    return DeltaClass.NEW_FAILURE


_CLASSES = tuple(DeltaClass)


@dataclass
class Delta:
    """The current run against its baseline: every class computed once, a byte per case."""

    now: StatusTable
    before: StatusTable
    info: BaselineInfo

    @cached_property
    def _classes(self) -> dict[str, bytearray]:
        """Host -> the class of each (control, check) slot of `now`, as positions in DeltaClass."""
        found: dict[str, bytearray] = {}
        for host, row in self.now.hosts.items():
            classes = found[host] = bytearray(len(row))
            for (control_id, check), slot in self.now.index.items():
                if slot < len(row) and row[slot] != ABSENT:
                    cls = classify(self.now, self.before, host, control_id, check)
                    classes[slot] = _CLASSES.index(cls)
        return found

    def of(self, host: str, control_id: str, check: str) -> DeltaClass:
        row, slot = self._classes.get(host), self.now.index.get((control_id, check))
        if row is None or slot is None or slot >= len(row):
            return classify(self.now, self.before, host, control_id, check)
        return _CLASSES[row[slot]]

    def gone(self) -> Iterator[tuple[str, str, str]]:
        """(host, control, check) of the baseline's hosts this run does not have."""
        for host in self.before.hosts:
            if host not in self.now.hosts:
                yield from ((host, c, k) for c, k in self.before.keys(host))

    @cached_property
    def counted(self) -> Counter[DeltaClass]:
        """Checks per class, the baseline's gone hosts' included (computed once: every output asks)."""
        counted: Counter[DeltaClass] = Counter()
        for host, classes in self._classes.items():
            row = self.now.hosts[host]
            counted.update(_CLASSES[c] for slot, c in enumerate(classes) if row[slot] != ABSENT)
        counted[DeltaClass.HOST_GONE] += sum(1 for _ in self.gone())
        return counted

    def fails_run(self) -> bool:
        """Whether --fail-on=new fails the run: a new failure, or a new host that fails or errors."""
        for host in self.now.hosts:
            for c, k in self.now.keys(host):
                found = self.of(host, c, k)
                if found in NEW_CLASSES:
                    return True
                if found == DeltaClass.NEW_HOST and self.now.get(host, c, k) & ~EXPIRED in _FAILING:
                    return True
        return False


def lines(counts: Counter[DeltaClass]) -> list[str]:
    """One line per class, in DeltaClass order: `new failure: 3`."""
    return [f"{cls.value}: {counts.get(cls, 0)}" for cls in DeltaClass]
