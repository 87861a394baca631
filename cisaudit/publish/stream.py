"""Publishing a host while the run goes on (issue 24.5): each host's records go to the publishers
that can take one host at a time (`HostPublisher`) as soon as its tests are over, so their API calls
overlap the audit instead of following it.

Without xdist the suite runs each host's tests together (plugin/__init__.py orders them), so a host
is over when a record of another host arrives, and the last one at the end. This is only a head
start: at session end the publisher compares what it sent for each host with that host's final
records and sends again any that differ, so a host whose records were not together is still
published whole, and every refused call is still that host's error in the outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from cisaudit.outputs.record import CaseRecord
from cisaudit.outputs.results import RunInfo


@runtime_checkable
class HostPublisher(Protocol):
    """A publisher that also takes one host's records before the run ends (its head start)."""

    name: str

    def host_done(self, host: str, records: Sequence[CaseRecord], info: RunInfo) -> None: ...


class HostStream:
    """Hands each host's records to the publishers once a record of another host arrives (the
    run's order), and the last host's at `close`. `info` is asked once, at the first host."""

    def __init__(self, publishers: Sequence[HostPublisher], info: Callable[[], RunInfo]) -> None:
        self.publishers = list(publishers)
        self._info_of = info
        self._info: RunInfo | None = None
        self._host = ""
        self._records: list[CaseRecord] = []
        self.handed = 0  # hosts handed over

    def add(self, record: CaseRecord) -> None:
        if record.host != self._host:
            self._hand_over()
            self._host = record.host
        self._records.append(record)

    def close(self) -> None:
        self._hand_over()

    def _hand_over(self) -> None:
        if not self._records or not self.publishers:
            self._records = []
            return
        if self._info is None:
            self._info = self._info_of()
        records, self._records = self._records, []
        for publisher in self.publishers:
            publisher.host_done(self._host, records, self._info)
        self.handed += 1
