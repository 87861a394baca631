"""Waivers: InSpec's waiver file format (YAML), governed: an approver, a ticket and a scope.

    1.1.4:
      justification: "containerd runs rootless here"   # required (InSpec)
      expiration_date: 2027-06-30                      # required, YYYY-MM-DD, at most MAX_DAYS ahead
      run: false                                       # optional (InSpec): do not check at all
      approved_by: jane.doe@example.com                # optional; --require-approved-waivers: required
      ticket: SEC-12                                   # optional
      scope:                                           # optional; a host any entry names is covered
        hosts: ["10.0.0.*", "ssh://root@web1"]         #   fnmatch patterns on the spec or its address
        instance_ids: [i-0123456789abcdef0]            #   SSM instances
        ssm_tags: {Env: prod, Team: web}               #   ssm:// instances carrying every pair
      hosts: ["10.0.0.*"]                              # optional: the older form of scope.hosts

A scope's kinds combine by "any": a host is covered when a glob, an instance id or the tag set
names it (within ssm_tags, every pair must match). Tags are known only through the AWS API: the
controller resolves each tag set to instance ids (plugin/waiver_tags.py) and with_tagged() hands
them to the waivers, so covering stays pure; a host that is not ssm:// never matches ssm_tags.

InSpec reads such a file as its own (it ignores keys it does not know). Errors carry the file's
line, read from yaml.compose's marks, since a waiver file is edited by hand.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from pathlib import Path

import yaml

KEYS = ("justification", "expiration_date", "run", "hosts", "approved_by", "ticket", "scope")
SCOPE_KEYS = ("hosts", "instance_ids", "ssm_tags")
TagSet = tuple[tuple[str, str], ...]  # ssm_tags' (key, value) pairs, sorted
MAX_DAYS = 366  # an exception is reviewed at least yearly: expiration_date at most this many days ahead
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INSTANCE_ID = re.compile(r"(i|mi)-[0-9a-f]{8,17}")


class WaiverError(ValueError):
    """A malformed waiver file; the message names the file and line."""


@dataclass(frozen=True)
class Waiver:
    control_id: str
    justification: str
    line: int
    expiration_date: dt.date | None = None
    run: bool = True
    hosts: tuple[str, ...] = ()  # fnmatch patterns
    instance_ids: tuple[str, ...] = ()  # SSM instance ids
    approved_by: str = ""
    ticket: str = ""
    ssm_tags: TagSet = ()  # every pair must match
    tagged_ids: tuple[str, ...] = ()  # the instances that carry ssm_tags, resolved on the controller

    def expired(self, today: dt.date) -> bool:
        """InSpec's rule: from the expiration date on, the waiver no longer applies."""
        return self.expiration_date is not None and today >= self.expiration_date

    def covers(self, spec: str) -> bool:
        """Whether the scope names this host; no scope: every host."""
        if not self.hosts and not self.instance_ids and not self.ssm_tags:
            return True
        address = host_address(spec)
        tagged = spec.startswith("ssm://") and address in self.tagged_ids
        return (
            tagged
            or address in self.instance_ids
            or any(fnmatchcase(spec, p) or fnmatchcase(address, p) for p in self.hosts)
        )

    def scope(self) -> str:
        """The scope in one line, for the reports: `hosts 10.0.0.*; instances i-0abc...`."""
        parts = ([f"hosts {', '.join(self.hosts)}"] if self.hosts else []) + (
            [f"instances {', '.join(self.instance_ids)}"] if self.instance_ids else []
        )
        if self.ssm_tags:
            parts.append(f"SSM tags {', '.join(f'{k}={v}' for k, v in self.ssm_tags)}")
        return "; ".join(parts) or "every host"

    def reference(self) -> str:
        return reference(self.approved_by, self.ticket)


def reference(approved_by: str, ticket: str) -> str:
    """Who approved a waiver and its ticket, as every output shows it: `approved by jane (SEC-12)`."""
    approved = f"approved by {approved_by}" if approved_by else "no approver"
    return approved + (f" ({ticket})" if ticket else "")


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


def _date(path: str, control_id: str, node: yaml.Node, on: dt.date) -> dt.date:
    text = _scalar(path, node, "expiration_date")
    try:  # fromisoformat alone also takes 20270630 and week dates (2027-W26-3)
        date = dt.date.fromisoformat(text) if _DATE.fullmatch(text) else None
    except ValueError:
        date = None
    if date is None:
        raise _fail(path, node, f"waiver {control_id}: expiration_date must be YYYY-MM-DD")
    if (date - on).days > MAX_DAYS:
        raise _fail(
            path,
            node,
            f"waiver {control_id}: expiration_date {date} is more than {MAX_DAYS} days ahead; renew it yearly",
        )
    return date


def _list(path: str, control_id: str, node: yaml.Node, what: str) -> tuple[str, ...]:
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        raise _fail(path, node, f"waiver {control_id}: {what} must be a non-empty list")
    return tuple(_scalar(path, item, f"an entry of {what}") for item in node.value)


def _tags(path: str, control_id: str, node: yaml.Node) -> TagSet:
    """ssm_tags: {Key: Value, ...}: a non-empty mapping of non-empty scalars."""
    if not isinstance(node, yaml.MappingNode) or not node.value:
        raise _fail(path, node, f"waiver {control_id}: scope.ssm_tags must be a mapping of Key: Value")
    pairs: dict[str, str] = {}
    for key_node, value in node.value:
        key = _scalar(path, key_node, "an SSM tag key")
        if key in pairs:
            raise _fail(path, key_node, f"waiver {control_id}: SSM tag {key!r} is given twice")
        pairs[key] = _scalar(path, value, f"the value of SSM tag {key!r}")
    return tuple(sorted(pairs.items()))


def _scope(path: str, control_id: str, node: yaml.Node) -> tuple[dict[str, tuple[str, ...]], TagSet]:
    """scope: {hosts: [...], instance_ids: [...], ssm_tags: {K: V}}: the lists, and the tag set."""
    if not isinstance(node, yaml.MappingNode) or not node.value:
        raise _fail(path, node, f"waiver {control_id}: scope must be a mapping of {', '.join(SCOPE_KEYS)}")
    found: dict[str, tuple[str, ...]] = {}
    tags: TagSet = ()
    for key_node, value in node.value:
        key = _scalar(path, key_node, "a key")
        if key not in SCOPE_KEYS:
            raise _fail(
                path, key_node, f"waiver {control_id}: unknown scope {key!r} (expected {', '.join(SCOPE_KEYS)})"
            )
        if key == "ssm_tags":
            tags = _tags(path, control_id, value)
        else:
            found[key] = _list(path, control_id, value, f"scope.{key}")
    bad = [i for i in found.get("instance_ids", ()) if not _INSTANCE_ID.fullmatch(i)]
    if bad:
        raise _fail(path, node, f"waiver {control_id}: {bad[0]!r} is not an instance id (i-0123456789abcdef0)")
    return found, tags


def _fields(path: str, control_id: str, body: yaml.Node) -> dict[str, yaml.Node]:
    if not isinstance(body, yaml.MappingNode):
        raise _fail(path, body, f"waiver {control_id}: expected a mapping with justification")
    fields: dict[str, yaml.Node] = {}
    for key_node, value in body.value:
        key = _scalar(path, key_node, "a key")
        if key not in KEYS:
            raise _fail(path, key_node, f"waiver {control_id}: unknown key {key!r} (expected {', '.join(KEYS)})")
        fields[key] = value
    return fields


def _parse_one(path: str, control_id: str, id_node: yaml.Node, body: yaml.Node, on: dt.date) -> Waiver:
    fields = _fields(path, control_id, body)
    for required in ("justification", "expiration_date"):
        if required not in fields:
            raise _fail(path, id_node, f"waiver {control_id}: {required} is required")
    run = True
    if "run" in fields:
        node = fields["run"]
        if node.tag != "tag:yaml.org,2002:bool":  # compose resolved the plain scalar's type
            raise _fail(path, node, f"waiver {control_id}: run must be true or false")
        run = node.value.lower() in ("true", "yes", "on")
    scope, tags = _scope(path, control_id, fields["scope"]) if "scope" in fields else ({}, ())
    hosts = _list(path, control_id, fields["hosts"], "hosts") if "hosts" in fields else ()
    text = {k: _scalar(path, fields[k], k) if k in fields else "" for k in ("approved_by", "ticket")}
    return Waiver(
        control_id,
        _scalar(path, fields["justification"], "justification"),
        id_node.start_mark.line + 1,
        _date(path, control_id, fields["expiration_date"], on),
        run,
        hosts + scope.get("hosts", ()),
        scope.get("instance_ids", ()),
        text["approved_by"],
        text["ticket"],
        tags,
    )


def parse_waivers(text: str, path: str, known_ids: set[str], on: dt.date | None = None) -> dict[str, Waiver]:
    """Control id -> waiver; anything malformed is a WaiverError with the line. `on`: the run's
    date (default today), from which an expiration_date may be at most MAX_DAYS ahead."""
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
        waivers[control_id] = _parse_one(path, control_id, id_node, body, on or today())
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


def matching(waivers: dict[str, Waiver], spec: str, control_id: str) -> Waiver | None:
    """The waiver of this control on this host, expired or not."""
    waiver = waivers.get(control_id)
    return waiver if waiver is not None and waiver.covers(spec) else None


def tag_sets(waivers: Mapping[str, Waiver]) -> list[TagSet]:
    """The distinct ssm_tags of the waivers, each to resolve once."""
    return list(dict.fromkeys(w.ssm_tags for w in waivers.values() if w.ssm_tags))


def with_tagged(waivers: Mapping[str, Waiver], tagged: Mapping[TagSet, Sequence[str]]) -> dict[str, Waiver]:
    """The waivers with the instance ids their ssm_tags resolved to (a tag set absent: none)."""
    return {
        cid: replace(w, tagged_ids=tuple(tagged.get(w.ssm_tags, ()))) if w.ssm_tags else w for cid, w in waivers.items()
    }


def unapproved(waivers: dict[str, Waiver]) -> list[Waiver]:
    """The waivers without approved_by (--require-approved-waivers refuses them)."""
    return [w for w in waivers.values() if not w.approved_by]


def unmatched(waivers: dict[str, Waiver], hosts: list[str], control_ids: set[str]) -> list[Waiver]:
    """The waivers that apply to no (host, control) of the run: a control not checked, or a scope
    that names none of the hosts (a typo in a pattern waives nothing, silently, without this)."""
    return [w for w in waivers.values() if w.control_id not in control_ids or not any(w.covers(h) for h in hosts)]


def record_fields(waiver: Waiver) -> dict[str, str]:
    """The CaseRecord fields that name the waiver met on a case (cisaudit/outputs/record.py)."""
    return {
        "waiver_expiration": str(waiver.expiration_date or ""),
        "waiver_approved_by": waiver.approved_by,
        "waiver_ticket": waiver.ticket,
    }
