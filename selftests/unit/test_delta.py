"""--baseline (issue 25 items 1 and 4): the delta classes on hand-made runs, the streaming reader of
results.json, and hostile baseline files (huge, truncated, wrong types, newer schema): one line each."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest

from cisaudit.model.delta import DeltaClass, StatusTable, code
from cisaudit.model.verdict import Status
from cisaudit.outputs import baseline as reader
from cisaudit.outputs.baseline import BaselineError, load_baseline, read_baseline
from cisaudit.outputs.compliance_html import render_html
from cisaudit.outputs.delta_report import delta_of, terminal_lines
from cisaudit.outputs.results_json import SCHEMA_VERSION, records, render_json
from selftests.suite_runner import REPO
from selftests.unit.test_outputs import A, B, case, results

C = "paramiko://root@10.0.0.3"
EXPIRED = {"waiver_expired": "old ticket", "waiver_expiration": "2020-01-01"}
BEFORE = results(
    case(A, "1.1.3", "live", "fail"),  # still failing
    case(A, "1.1.4", "live", "fail"),  # fixed
    case(A, "1.1.5", "live", "pass"),  # new failure
    case(A, "1.1.6", "live", "pass"),
    case(A, "1.1.6", "persisted", "pass"),  # regresses at next boot
    case(A, "1.1.7", "live", "fail", waiver="SEC-1"),  # waiver expired
    case(A, "1.1.8", "live", "pass"),
    case(A, "1.1.8", "persisted", "fail"),  # the split was there before: still failing
    case(A, "host", "load-health", "pass"),
    case(B, "1.1.3", "live", "pass"),  # host gone
)
NOW = results(
    case(A, "1.1.3", "live", "fail"),
    case(A, "1.1.4", "live", "pass"),
    case(A, "1.1.5", "live", "fail"),
    case(A, "1.1.6", "live", "pass"),
    case(A, "1.1.6", "persisted", "fail"),
    case(A, "1.1.7", "live", "fail", **EXPIRED),
    case(A, "1.1.8", "live", "pass"),
    case(A, "1.1.8", "persisted", "fail"),
    case(A, "host", "load-health", "error"),  # a new host error is a new failure
    case(C, "1.1.3", "live", "pass"),  # new host
)
EXPECTED = {
    (A, "1.1.3", "live"): DeltaClass.STILL_FAILING,
    (A, "1.1.4", "live"): DeltaClass.FIXED,
    (A, "1.1.5", "live"): DeltaClass.NEW_FAILURE,
    (A, "1.1.6", "live"): DeltaClass.UNCHANGED,
    (A, "1.1.6", "persisted"): DeltaClass.REGRESSES_AT_BOOT,
    (A, "1.1.7", "live"): DeltaClass.WAIVER_EXPIRED,
    (A, "1.1.8", "live"): DeltaClass.UNCHANGED,
    (A, "1.1.8", "persisted"): DeltaClass.STILL_FAILING,
    (A, "host", "load-health"): DeltaClass.NEW_FAILURE,
    (C, "1.1.3", "live"): DeltaClass.NEW_HOST,
}


def _baseline(text: str, name: str = "base.json") -> tuple[StatusTable, object]:
    return read_baseline(io.StringIO(text), name, SCHEMA_VERSION)


def _delta():
    table, info = _baseline(render_json(BEFORE))
    return delta_of(NOW.cases, table, info)


def test_every_class_from_a_written_baseline() -> None:
    delta = _delta()
    assert {(c.host, c.control_id, c.check): delta.of(c.host, c.control_id, c.check) for c in NOW.cases} == EXPECTED
    assert list(delta.gone()) == [(B, "1.1.3", "live")]
    counts = delta.counted
    assert counts[DeltaClass.HOST_GONE] == 1 and counts[DeltaClass.STILL_FAILING] == 2
    assert delta.fails_run()
    assert terminal_lines(delta)[1:] == [
        "  new failure: 2",
        "  still failing: 2",
        "  fixed: 1",
        "  new host: 1",
        "  host gone: 1",
        "  regresses at next boot: 1",
        "  waiver expired: 1",
        "  unchanged: 2",
    ]


def test_only_known_failures_do_not_fail_a_fail_on_new_run() -> None:
    table, info = _baseline(render_json(BEFORE))
    known = [c for c in NOW.cases if EXPECTED[(c.host, c.control_id, c.check)] != DeltaClass.NEW_FAILURE]
    without = [c for c in known if EXPECTED[(c.host, c.control_id, c.check)] == DeltaClass.STILL_FAILING]
    assert delta_of(known, table, info).fails_run()  # regresses at boot, waiver expired are new
    assert not delta_of(without, table, info).fails_run()
    failing_new_host = [*without, case(C, "1.1.3", "live", "error")]
    assert delta_of(failing_new_host, table, info).fails_run()


def test_outputs_carry_the_delta() -> None:
    run = results(*NOW.cases)
    run.delta = _delta()
    document = json.loads(render_json(run))
    schema = json.loads((REPO / "docs" / "results.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(document)
    classes = {(r["host"], r["control_id"], r["check"]): r["delta"] for r in records(document)}
    assert classes == {k: v.value for k, v in EXPECTED.items()}
    assert document["baseline"]["hosts_gone"] == [B] and document["baseline"]["commit"] == "abc123"
    html = render_html(run)
    assert "Changes since base.json (2027-01-15T08:00:00Z, commit abc123)" in html
    assert html.index("id='changes'") < html.index("id='controls'")


def test_table_is_compact() -> None:
    table = StatusTable()
    for n in range(1000):
        for control in range(16):
            table.put(f"10.0.{n // 256}.{n % 256}", f"1.1.{control}", "live", code(Status.PASS))
    assert len(table) == 16_000 and len(table.index) == 16
    assert all(len(row) == 16 for row in table.hosts.values())


def test_reader_takes_any_key_order_and_layout() -> None:
    document = json.loads(render_json(BEFORE))
    sorted_text = json.dumps(document, sort_keys=True)  # jq -S: results before schema_version
    table, info = _baseline(sorted_text)
    assert info.schema_version == SCHEMA_VERSION and len(table) == len(BEFORE.cases)


def test_reader_reads_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "CHUNK", 7)
    table, _ = _baseline(render_json(BEFORE))
    assert len(table) == len(BEFORE.cases)


GOOD = json.loads(render_json(BEFORE))


def _with(**changes: object) -> str:
    return json.dumps(GOOD | changes)


HOSTILE = {
    "truncated": (render_json(BEFORE)[:-300], "truncated or not JSON at byte"),
    "empty": ("", "not a JSON object"),
    "a list": ("[1, 2]", "not a JSON object"),
    "no results": (json.dumps({"schema_version": "1.0"}), "no schema_version or results"),
    "version a number": (_with(schema_version=1.2), "schema_version 1.2 is not MAJOR.MINOR"),
    "newer major": (
        _with(schema_version="3.0"),
        f"schema version 3.0 is newer than this cisaudit reads ({SCHEMA_VERSION})",
    ),
    "newer minor": (_with(schema_version="2.99"), "schema version 2.99 is newer"),
    "outcome index out of range": (
        _with(results=[{"host": A, "records": [[7, "t", "t"]]}], outcomes=[]),
        "results[0] refers to outcome 7, which the file does not have",
    ),
    "host records without outcomes": (
        json.dumps({k: v for k, v in GOOD.items() if k != "outcomes"}),
        "results per host without outcomes",
    ),
    "record a string": (_with(results=["x"]), "results[0] is a str, not an object"),
    "record without status": (_with(results=[{"host": A, "control_id": "1", "check": "live"}]), "has no 'status'"),
    "status a number": (
        _with(results=[{"host": A, "control_id": "1", "check": "live", "status": 3}]),
        "results[0]: control_id, check, status are not a known record",
    ),
    "unknown status": (
        _with(results=[{"host": A, "control_id": "1", "check": "live", "status": "ok"}]),
        "not a known record",
    ),
    "results an object": (_with(results={}), "expected '[', found '{'"),
    "trailing data": (render_json(BEFORE) + "{}", "data after the document"),
    "nested": ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_baseline_is_one_line(name: str, tmp_path: Path) -> None:
    text, message = HOSTILE[name]
    path = tmp_path / "b.json"
    path.write_text(text)
    with pytest.raises(BaselineError) as raised:
        load_baseline(str(path), SCHEMA_VERSION)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_huge_value_is_refused_without_reading_it_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "MAX_VALUE", 1 << 20)
    path = tmp_path / "huge.json"
    path.write_text('{"schema_version": "1.3", "hosts": "' + "x" * (4 << 20) + '"}')
    with pytest.raises(BaselineError, match="a value larger than 1 MiB at byte"):
        load_baseline(str(path), SCHEMA_VERSION)


def test_unreadable_and_binary_baselines(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="cannot read"):
        load_baseline(str(tmp_path / "missing.json"), SCHEMA_VERSION)
    binary = tmp_path / "b.json"
    binary.write_bytes(b'{"x": "\xe9"}')
    with pytest.raises(BaselineError, match="not UTF-8"):
        load_baseline(str(binary), SCHEMA_VERSION)


def test_a_file_that_would_cost_its_square_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new control and host per record would make every host's row as long as the file."""
    monkeypatch.setattr(reader, "MAX_CHECKS", 50)
    records = [{"host": f"h{n}", "control_id": f"9.{n}", "check": "live", "status": "pass"} for n in range(60)]
    path = tmp_path / "square.json"
    path.write_text(_with(results=records))
    with pytest.raises(BaselineError, match=r"results\[50\]: more than 50 distinct \(control, check\)"):
        load_baseline(str(path), SCHEMA_VERSION)
