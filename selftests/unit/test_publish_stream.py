"""publish/stream.py: each host's records go to the publishers once a record of another host
arrives, the last host's at close, the run's info asked once."""

from __future__ import annotations

from collections.abc import Sequence

from cisaudit.model.catalogue import benchmark
from cisaudit.model.verdict import Check, Status
from cisaudit.outputs.record import CaseRecord
from cisaudit.outputs.results import RunInfo
from cisaudit.publish.stream import HostPublisher, HostStream

INFO = RunInfo("pytest", "audit", False, 1.8e9, 1.8e9 + 1, "0.1.0", benchmark=benchmark("1.7.0"))


class Taker:
    name = "taker"

    def __init__(self) -> None:
        self.got: list[tuple[str, list[str]]] = []

    def host_done(self, host: str, records: Sequence[CaseRecord], info: RunInfo) -> None:
        self.got.append((host, [r.control_id for r in records]))


def _record(host: str, control: str) -> CaseRecord:
    return CaseRecord(host, control, Check.LIVE, Status.PASS)


def test_each_host_is_handed_over_when_the_next_begins_and_the_last_at_close() -> None:
    taker, asked = Taker(), []
    assert isinstance(taker, HostPublisher)
    stream = HostStream([taker], lambda: asked.append(1) or INFO)
    for host, control in (("a", "1.1.3"), ("a", "1.1.4"), ("b", "1.1.3")):
        stream.add(_record(host, control))
    assert taker.got == [("a", ["1.1.3", "1.1.4"])]
    stream.close()
    assert taker.got == [("a", ["1.1.3", "1.1.4"]), ("b", ["1.1.3"])]
    assert stream.handed == 2 and asked == [1]
    stream.close()  # nothing left: nothing handed twice
    assert stream.handed == 2
