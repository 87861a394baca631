"""--baseline FILE: an earlier run's results.json read as a stream into a StatusTable (model/delta.py).

The top-level object is read member by member with json's raw_decode over a growing buffer; the
`results` array one record at a time, each kept only as its status code. No value may exceed
MAX_VALUE bytes (a record is a few KiB; the largest head member, `hosts`, about 3 MB at 10,000
hosts), so a hostile file costs at most that much memory. Every problem is one BaselineError line.
"""

from __future__ import annotations

import json
import re
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


def _record(item: object, n: int, table: StatusTable) -> None:
    if not isinstance(item, dict):
        raise BaselineError(f"results[{n}] is a {type(item).__name__}, not an object")
    try:
        host, control_id, check, status = (item[k] for k in ("host", "control_id", "check", "status"))
        waiver = item.get("waiver") or {}
        if not all(isinstance(v, str) for v in (host, control_id, check, status)) or not isinstance(waiver, dict):
            raise TypeError
        table.put(host, control_id, Check(check).value, code(Status(status), waiver.get("expired") is True))
    except KeyError as exc:
        raise BaselineError(f"results[{n}] has no {exc.args[0]!r}") from None
    except (TypeError, ValueError):
        raise BaselineError(f"results[{n}]: host, control_id, check, status are not a known record") from None
    if len(table.index) > MAX_CHECKS or len(table.hosts) > MAX_HOSTS:
        raise BaselineError(
            f"results[{n}]: more than {MAX_CHECKS} distinct (control, check) or {MAX_HOSTS} hosts: "
            "not a cisaudit results.json"
        )


def _members(reader: _Reader, on_results: Callable[[], None], newest: str) -> dict[str, Any]:
    """The top-level object's members but `results`, which on_results reads in place; the schema
    version is checked as soon as it is read (before the records, as this suite writes it)."""
    head: dict[str, Any] = {}
    reader.expect("{")
    if reader.char() == "}":
        reader.at += 1
        return head
    while True:
        key = reader.value()
        if not isinstance(key, str):
            raise BaselineError("not a cisaudit results.json (a member name is not a string)")
        reader.expect(":")
        if key == "results":
            on_results()
        elif key in ("schema_version", "tool", "run"):
            head[key] = reader.value()
            if key == "schema_version":
                _check_version(head[key], newest)
        else:
            reader.value()
        if reader.expect(",}") == "}":
            return head


def read_baseline(stream: IO[str], path: str, newest: str) -> tuple[StatusTable, BaselineInfo]:
    """The baseline's statuses and where it came from. A schema version newer than `newest` is refused."""
    reader, table, seen = _Reader(stream), StatusTable(), [False]

    def on_results() -> None:
        seen[0] = True
        reader.expect("[")
        if reader.char() == "]":
            reader.at += 1
            return
        n = 0
        while True:
            _record(reader.value(), n, table)
            n += 1
            if reader.expect(",]") == "]":
                return

    if reader.char() != "{":
        raise BaselineError("not a JSON object: not a cisaudit results.json")
    head = _members(reader, on_results, newest)
    if reader.char():
        raise BaselineError(f"data after the document at byte {reader.offset + reader.at}")
    if "schema_version" not in head or not seen[0]:
        raise BaselineError("no schema_version or results: not a cisaudit results.json")
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
