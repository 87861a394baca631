"""--baseline FILE: an earlier run's results.json read as a stream into a StatusTable (model/delta.py).

The top-level object is read member by member with json's raw_decode over a growing buffer; the
`results` array one record at a time, each kept only as its status code. No value may exceed
MAX_VALUE bytes (a record is a few KiB; the largest head member, `hosts`, about 3 MB at 10,000
hosts), so a hostile file costs at most that much memory. Every problem is one BaselineError line.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Callable
from typing import IO, Any

from cisaudit.model.delta import BaselineInfo, StatusTable, code
from cisaudit.model.verdict import Check, Status

CHUNK = 1 << 20
MAX_VALUE = 64 << 20  # bytes of one JSON value (a record, or a head member such as `hosts`)
# A host's statuses take a byte per distinct (control, check) of the file: a file naming a new
# control per record would cost its square. A benchmark has ~20 controls x 3 checks + 7 host checks.
MAX_CHECKS = 256
MAX_HOSTS = 1_000_000
_VERSION = re.compile(r"([0-9]{1,4})\.([0-9]{1,4})")
_WS = " \t\r\n"


class BaselineError(ValueError):
    """The baseline cannot be read; the message says why in one line."""


def version(text: object) -> tuple[int, int]:
    match = _VERSION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise BaselineError(f"schema_version {text!r} is not MAJOR.MINOR: not a cisaudit results.json")
    return int(match.group(1)), int(match.group(2))


class _Reader:
    """A text stream read as consecutive JSON tokens and values."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream, self.buffer, self.at, self.eof, self.offset = stream, "", 0, False, 0
        self.decoder = json.JSONDecoder()

    def _more(self) -> bool:
        if self.eof:
            return False
        chunk = self.stream.read(max(CHUNK, len(self.buffer) - self.at))
        self.offset += self.at
        self.buffer, self.at = self.buffer[self.at :] + chunk, 0
        self.eof = not chunk
        return bool(chunk)

    def char(self) -> str:
        """The next character that is not white space ('' at the end)."""
        while True:
            while self.at < len(self.buffer) and self.buffer[self.at] in _WS:
                self.at += 1
            if self.at < len(self.buffer):
                return self.buffer[self.at]
            if not self._more():
                return ""

    def expect(self, wanted: str) -> str:
        found = self.char()
        if found not in wanted:
            where = f"at byte {self.offset + self.at}"
            raise BaselineError(f"truncated {where}" if not found else f"expected {wanted!r}, found {found!r} {where}")
        self.at += 1
        return found

    def value(self) -> Any:
        self.char()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buffer, self.at)
            except json.JSONDecodeError as exc:
                if len(self.buffer) - self.at > MAX_VALUE:
                    raise BaselineError(
                        f"a value larger than {MAX_VALUE >> 20} MiB at byte {self.offset + self.at}"
                    ) from None
                if self._more():
                    continue
                raise BaselineError(f"truncated or not JSON at byte {self.offset + exc.pos}: {exc.msg}") from None
            if end == len(self.buffer) and not self.eof and isinstance(value, (int, float)) and self._more():
                continue  # a number cut by the chunk's end
            self.at = end
            return value


Outcome = tuple[str, str, int]  # control_id, check, status code (model/delta.py `code`)


def _outcome(item: object, where: str) -> Outcome:
    """A schema 1 record or a schema 2 outcome: what the delta needs of it."""
    if not isinstance(item, dict):
        raise BaselineError(f"{where} is a {type(item).__name__}, not an object")
    try:
        control_id, check, status = (item[k] for k in ("control_id", "check", "status"))
        waiver = item.get("waiver") or {}
        if not all(isinstance(v, str) for v in (control_id, check, status)) or not isinstance(waiver, dict):
            raise TypeError
        return control_id, Check(check).value, code(Status(status), waiver.get("expired") is True)
    except KeyError as exc:
        raise BaselineError(f"{where} has no {exc.args[0]!r}") from None
    except (TypeError, ValueError):
        raise BaselineError(f"{where}: control_id, check, status are not a known record") from None


def _put(table: StatusTable, host: object, outcome: Outcome, where: str) -> None:
    if not isinstance(host, str):
        raise BaselineError(f"{where}: host is not a string")
    table.put(host, *outcome)
    if len(table.index) > MAX_CHECKS or len(table.hosts) > MAX_HOSTS:
        raise BaselineError(
            f"{where}: more than {MAX_CHECKS} distinct (control, check) or {MAX_HOSTS} hosts: "
            "not a cisaudit results.json"
        )


def _record(item: object, n: int, table: StatusTable) -> None:
    """Schema 1: one object per (host, control, check)."""
    where = f"results[{n}]"
    _put(table, item.get("host") if isinstance(item, dict) else None, _outcome(item, where), where)


def _host_records(item: object, n: int) -> tuple[str, array[int]]:
    """Schema 2: a host and its records' outcome indexes ([index, started, finished] each)."""
    where = f"results[{n}]"
    if not isinstance(item, dict) or not isinstance(item.get("host"), str) or not isinstance(item.get("records"), list):
        raise BaselineError(f"{where} is not a host's records (host, records)")
    indexes = array("I")
    for record in item["records"]:
        first = record[0] if isinstance(record, list) and record else None
        if not isinstance(first, int) or isinstance(first, bool) or not 0 <= first < 1 << 32:
            raise BaselineError(f"{where}: a record is not [outcome index, started, finished]")
        indexes.append(first)
    return item["host"], indexes


def _resolve(hosts: list[tuple[str, array[int]]], outcomes: list[Outcome], table: StatusTable) -> None:
    """Schema 2: each host's indexes to the outcomes read after them."""
    for n, (host, indexes) in enumerate(hosts):
        for index in indexes:
            if index >= len(outcomes):
                raise BaselineError(f"results[{n}] refers to outcome {index}, which the file does not have")
            _put(table, host, outcomes[index], f"results[{n}]")


def _members(reader: _Reader, arrays: dict[str, Callable[[object], None]], newest: str, head: dict[str, Any]) -> None:
    """The top-level object's members into head, but the arrays, each of whose items goes to its
    callback as it is read (head gets their lengths); the schema version is checked as soon as it is
    read (before the arrays, as this suite writes it)."""
    reader.expect("{")
    if reader.char() == "}":
        reader.at += 1
        return
    while True:
        key = reader.value()
        if not isinstance(key, str):
            raise BaselineError("not a cisaudit results.json (a member name is not a string)")
        reader.expect(":")
        if key in arrays:
            head[key] = _array(reader, arrays[key])
        elif key in ("schema_version", "tool", "run"):
            head[key] = reader.value()
            if key == "schema_version":
                _check_version(head[key], newest)
        else:
            reader.value()
        if reader.expect(",}") == "}":
            return


def _array(reader: _Reader, each: Callable[[object], None]) -> int:
    """An array read one item at a time; its length."""
    reader.expect("[")
    if reader.char() == "]":
        reader.at += 1
        return 0
    n = 0
    while True:
        each(reader.value())
        n += 1
        if reader.expect(",]") == "]":
            return n


def read_baseline(stream: IO[str], path: str, newest: str) -> tuple[StatusTable, BaselineInfo]:
    """The baseline's statuses and where it came from. A schema version newer than `newest` is
    refused; schema 1 (a record per check) and 2 (outcomes shared, referred to per host) are read."""
    reader, table = _Reader(stream), StatusTable()
    hosts: list[tuple[str, array[int]]] = []
    outcomes: list[Outcome] = []
    head: dict[str, Any] = {}
    counted = [0]  # items of results read

    def on_result(item: object) -> None:  # by its shape: the schema version may come later
        if isinstance(item, dict) and "records" in item:
            hosts.append(_host_records(item, counted[0]))
        else:
            _record(item, counted[0], table)
        counted[0] += 1

    def on_outcome(item: object) -> None:
        outcomes.append(_outcome(item, f"outcomes[{len(outcomes)}]"))

    if reader.char() != "{":
        raise BaselineError("not a JSON object: not a cisaudit results.json")
    _members(reader, {"results": on_result, "outcomes": on_outcome}, newest, head)
    if reader.char():
        raise BaselineError(f"data after the document at byte {reader.offset + reader.at}")
    if "schema_version" not in head or "results" not in head:
        raise BaselineError("no schema_version or results: not a cisaudit results.json")
    if hosts and "outcomes" not in head:
        raise BaselineError("results per host without outcomes: not a cisaudit results.json")
    _resolve(hosts, outcomes, table)
    return table, _info(head, path)


def _check_version(found: object, newest: str) -> None:
    if version(found) > version(newest):
        raise BaselineError(
            f"schema version {found} is newer than this cisaudit reads ({newest}); "
            "compare with the cisaudit that wrote it, or give an older baseline"
        )


def load_baseline(path: str, newest: str) -> tuple[StatusTable, BaselineInfo]:
    """read_baseline on a file; its errors (unreadable, not UTF-8, nested too deeply) one line each."""
    try:
        with open(path, encoding="utf-8-sig") as stream:
            return read_baseline(stream, path, newest)
    except OSError as exc:
        raise BaselineError(f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise BaselineError(f"not UTF-8 (byte 0x{exc.object[exc.start]:02x}): not a results.json") from None
    except RecursionError:
        raise BaselineError("nested too deeply to be a results.json") from None


def _info(head: dict[str, Any], path: str) -> BaselineInfo:
    tool, run = head.get("tool"), head.get("run")
    commit = tool.get("commit") if isinstance(tool, dict) else None
    started = run.get("started") if isinstance(run, dict) else None
    return BaselineInfo(path, str(head["schema_version"]), str(started or "unknown"), str(commit or "unknown"))
