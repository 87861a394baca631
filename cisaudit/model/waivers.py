"""Waivers: InSpec's waiver file format (YAML), plus an optional `hosts` list of fnmatch patterns.

    1.1.4:
      justification: "containerd runs rootless here; ticket SEC-12"   # required
      expiration_date: 2027-06-30                                     # optional, YYYY-MM-DD
      run: false                                                      # optional: do not check at all
      hosts: ["10.0.0.*", "ssh://root@web1"]                          # optional (ours): only these

Errors carry the file's line, read from yaml.compose's marks, since a waiver file is edited by hand.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import yaml

KEYS = ("justification", "expiration_date", "run", "hosts")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class WaiverError(ValueError):
    """A malformed waiver file; the message names the file and line."""


@dataclass(frozen=True)
class Waiver:
    control_id: str
    justification: str
    line: int
    expiration_date: dt.date | None = None
    run: bool = True
    hosts: tuple[str, ...] = ()  # fnmatch patterns; empty = every host

    def expired(self, today: dt.date) -> bool:
        """InSpec's rule: from the expiration date on, the waiver no longer applies."""
        return self.expiration_date is not None and today >= self.expiration_date

    def covers(self, spec: str) -> bool:
        return not self.hosts or any(fnmatchcase(spec, p) or fnmatchcase(host_address(spec), p) for p in self.hosts)


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def host_address(spec: str) -> str:
    """The host name or address inside a host spec: `paramiko://root@10.0.0.2:22?sudo=true` -> 10.0.0.2."""
    rest = spec.split("://", 1)[-1].split("?", 1)[0].rsplit("@", 1)[-1]
    return re.sub(r":\d+$", "", rest)


def _fail(path: str, node: yaml.Node, message: str) -> WaiverError:
    return WaiverError(f"{path}:{node.start_mark.line + 1}: {message}")


def _scalar(path: str, node: yaml.Node, what: str) -> str:
    if not isinstance(node, yaml.ScalarNode) or not node.value.strip():
        raise _fail(path, node, f"{what} must be a non-empty value")
    return str(node.value)


def _parse_one(path: str, control_id: str, id_node: yaml.Node, body: yaml.Node) -> Waiver:
    if not isinstance(body, yaml.MappingNode):
        raise _fail(path, body, f"waiver {control_id}: expected a mapping with justification")
    fields: dict[str, yaml.Node] = {}
    for key_node, value in body.value:
        key = _scalar(path, key_node, "a key")
        if key not in KEYS:
            raise _fail(path, key_node, f"waiver {control_id}: unknown key {key!r} (expected {', '.join(KEYS)})")
        fields[key] = value
    if "justification" not in fields:
        raise _fail(path, id_node, f"waiver {control_id}: justification is required")
    justification = _scalar(path, fields["justification"], "justification")
    expiration_date: dt.date | None = None
    run = True
    hosts: tuple[str, ...] = ()
    if "expiration_date" in fields:
        node = fields["expiration_date"]
        text = _scalar(path, node, "expiration_date")
        try:  # fromisoformat alone also takes 20270630 and week dates (2027-W26-3)
            expiration_date = dt.date.fromisoformat(text) if _DATE.fullmatch(text) else None
        except ValueError:
            expiration_date = None
        if expiration_date is None:
            raise _fail(path, node, f"waiver {control_id}: expiration_date must be YYYY-MM-DD")
    if "run" in fields:
        node = fields["run"]
        if node.tag != "tag:yaml.org,2002:bool":  # compose resolved the plain scalar's type
            raise _fail(path, node, f"waiver {control_id}: run must be true or false")
        run = node.value.lower() in ("true", "yes", "on")
    if "hosts" in fields:
        node = fields["hosts"]
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            raise _fail(path, node, f"waiver {control_id}: hosts must be a non-empty list of patterns")
        hosts = tuple(_scalar(path, item, "a hosts pattern") for item in node.value)
    return Waiver(control_id, justification, id_node.start_mark.line + 1, expiration_date, run, hosts)


def parse_waivers(text: str, path: str, known_ids: set[str]) -> dict[str, Waiver]:
    """Control id -> waiver; anything malformed is a WaiverError with the line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise WaiverError(f"{path}{where}: not valid YAML: {problem}") from None
    except RecursionError:  # `[` x 100000: PyYAML's composer recurses per level
        raise WaiverError(f"{path}: nested too deeply to be a waiver file") from None
    if root is None:
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise _fail(path, root, "expected a mapping of control id -> waiver")
    waivers: dict[str, Waiver] = {}
    for id_node, body in root.value:
        control_id = _scalar(path, id_node, "a control id")
        if control_id not in known_ids:
            raise _fail(path, id_node, f"unknown control id {control_id!r}")
        if control_id in waivers:
            raise _fail(
                path, id_node, f"control {control_id} is waived twice (first at line {waivers[control_id].line})"
            )
        waivers[control_id] = _parse_one(path, control_id, id_node, body)
    return waivers


def decode(data: bytes, path: str) -> str:
    """The file's text: UTF-8 (a leading BOM allowed); anything else says how to save it."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data:
        raise WaiverError(f"{path}: saved as UTF-16 (as some Windows editors do); save it as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise WaiverError(
            f"{path}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x}; Latin-1 or another code page?); save it as UTF-8"
        ) from None


def load_waivers(path: str, known_ids: set[str]) -> dict[str, Waiver]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise WaiverError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_waivers(decode(data, path), path, known_ids)


def applicable(waivers: dict[str, Waiver], control_id: str, spec: str) -> Waiver | None:
    """The waiver of this control on this host, expired or not."""
    waiver = waivers.get(control_id)
    return waiver if waiver is not None and waiver.covers(spec) else None
