"""One (host, control, check) as the run reports it: the record every output is made from.

The `verdict` fixture (cisaudit/plugin/fixtures.py) writes it as the test's user_properties, so it
crosses xdist and lands in JUnit as `<property>` elements; the report hooks, results.json, XCCDF,
the self-tests (selftests/suite_runner.py) and the benchmark read it back with `from_properties`.
The field names are the property names (docs/results.md). Values stay text on the way, as
execnet and JUnit carry them; `from_properties` types them, and an unknown check or verdict raises.

Which pytest phase decides a case: an ERROR verdict is raised in setup (the fixture), so pytest
reports an error, not a failure; every other verdict is asserted in the call. `decided_by` is that
rule's one home: the report hooks take the record from the report of that phase only.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, get_type_hints

from cisaudit.model.verdict import Check, Status
from cisaudit.model.waivers import reference

HOST_CONTROL = "host"  # control_id of a host check
CASES_PROPERTY = "cisaudit_cases"  # the records of an aggregated item, encode_records()
# A verdict cites a rule as `RULE` (WHERE:LINE); the first citation is the case's rule.
CITATION = re.compile(r"`([^`\n]+)` \(([^()\n]+:\d+)\)")


@dataclass(frozen=True, slots=True)
class CaseRecord:
    host: str  # the host as reports show it (cisaudit/host/hostspec.py)
    control_id: str  # HOST_CONTROL for host checks
    check: Check
    verdict: Status  # the check's own status; NOT_RUN for a waiver with run: false
    summary: str = ""
    evidence: str = ""
    benchmark: str = ""  # "CIS Docker Benchmark v1.7.0"
    title: str = ""
    level: str = ""
    assessment: str = ""  # automated / manual
    audited: str = ""  # the path audited on the host and how it was found (docs/benchmarks.md)
    change: str = ""  # what --remediate/--backout did to the host (Change.summary)
    remediated: bool = False  # --remediate added this control's rule in this run
    waiver: str = ""  # justification of the waiver applied
    waiver_expiration: str = ""
    waiver_expired: str = ""  # justification of an expired, ignored waiver
    waiver_approved_by: str = ""  # the waiver met (applied or expired): its approver and ticket
    waiver_ticket: str = ""
    remote_commands: int = 0  # commands sent to the host so far
    host_facts: str = ""  # host checks only: probe facts for results.json, as JSON text
    audit_keys: str = ""  # the --audit-key mode a PASS required: keys comma-separated, or `any`
    reboot_proof: str = ""  # reboot-proof checks: model/reboot_proof.py Proof.fields() as JSON text
    started: float = 0.0  # not properties: the report's own times
    finished: float = 0.0

    @property
    def status(self) -> Status:
        """What the outputs count: a waiver applied makes the case waived."""
        return Status.WAIVED if self.waiver else self.verdict

    @property
    def waiver_reference(self) -> str:
        """The approver and ticket of the waiver met, as the outputs show it."""
        return reference(self.waiver_approved_by, self.waiver_ticket)

    @property
    def decided_by(self) -> str:
        """The pytest phase whose report carries this case's verdict."""
        return "setup" if self.verdict == Status.ERROR else "call"

    def citation(self) -> tuple[str, str] | None:
        """(rule, file:line) the verdict cites first, if any."""
        match = CITATION.search(self.summary + "\n" + self.evidence)
        return (match.group(1), match.group(2)) if match else None

    def properties(self) -> list[tuple[str, str]]:
        """As user_properties / JUnit properties: every set field, as text."""
        out = []
        for name, default, always, _ in _PROPERTY_FIELDS:
            value = getattr(self, name)
            if always or value != default:
                out.append((name, ("true" if value else "false") if isinstance(value, bool) else str(value)))
        return out

    @classmethod
    def from_properties(
        cls, props: Mapping[str, str] | Iterable[tuple[str, str]], started: float = 0.0, finished: float = 0.0
    ) -> CaseRecord:
        # Every field from its property (_PROPERTY_FIELDS, made from the dataclass: none can be
        # left out); text interned: a fleet repeats the same titles, summaries and evidence across
        # hosts, and the run keeps every record until the reports are written (README "At fleet size").
        text = dict(props)
        values: dict[str, Any] = {
            name: convert(str(text[name])) for name, _, _, convert in _PROPERTY_FIELDS if name in text
        }
        return cls(**values, started=started, finished=finished)

    @staticmethod
    def in_properties(props: Mapping[str, object] | Iterable[tuple[str, object]]) -> bool:
        """Whether a test's properties hold a case record (tests of the user's own do not)."""
        return "verdict" in dict(props)


def encode_records(records: Iterable[CaseRecord], in_process: bool = False) -> str:
    """Many records as one property (an aggregated item, cisaudit/plugin/aggregate.py): JSON text,
    or, when the process that reads them is this one (no xdist), a token for the records kept
    here: at fleet size the text's encoding and decoding was a fifth of the run's CPU."""
    if in_process:
        token = f"{_IN_PROCESS}{next(_TOKENS)}"
        _KEPT[token] = [_interned(r) for r in records]
        return token
    return json.dumps([[r.properties(), r.started, r.finished] for r in records], separators=(",", ":"))


def decode_records(text: str) -> list[CaseRecord]:
    if text.startswith(_IN_PROCESS):
        return _KEPT.pop(text, [])  # taken once, as the report hooks take them
    return [CaseRecord.from_properties(props, started, finished) for props, started, finished in json.loads(text)]


def _interned(record: CaseRecord) -> CaseRecord:
    """The record with its text shared with every other host's same text (as from_properties)."""
    shared: dict[str, Any] = {name: sys.intern(getattr(record, name)) for name in _TEXT_FIELDS}
    return replace(record, **shared)


_IN_PROCESS = "@records:"  # never JSON's first character
_TOKENS = itertools.count()
_KEPT: dict[str, list[CaseRecord]] = {}  # token -> records, until the report hooks take them


_NOT_PROPERTIES = frozenset({"started", "finished"})
_TEXT_FIELDS = tuple(f.name for f in fields(CaseRecord) if f.type == "str")
_ALWAYS = frozenset(
    {"host", "control_id", "check", "verdict", "summary", "evidence", "benchmark", "change", "remote_commands"}
)
# How a property's text becomes its field's value, by the field's type; a field of another type
# fails when this module loads.
_FROM_TEXT: dict[object, Callable[[str], object]] = {
    str: sys.intern,
    bool: lambda text: text == "true",
    int: int,
    Check: Check,
    Status: Status,
}
_TYPES = get_type_hints(CaseRecord)


def _from_text(name: str) -> Callable[[str], object]:
    try:
        return _FROM_TEXT[_TYPES[name]]
    except KeyError:
        raise TypeError(f"CaseRecord.{name}: {_TYPES[name]} has no conversion from property text") from None


# (name, default, always written, from text) of each field that is a property, in field order
_PROPERTY_FIELDS = tuple(
    (f.name, f.default, f.name in _ALWAYS, _from_text(f.name))
    for f in fields(CaseRecord)
    if f.name not in _NOT_PROPERTIES
)
