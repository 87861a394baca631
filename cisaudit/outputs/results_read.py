"""results.json read back into RunResults (the reverse of `results_json.py`), and several runs'
results joined into one: what `python -m cisaudit.plugin.merge` writes every output from.

A record keeps what the writers use. What results.json does not hold is rebuilt, never guessed:
a control's title, level and assessment from the benchmark's catalogue, the host's probe facts
(a host check's `host_facts`) and remote commands from the host's entry. Times are whole seconds
(results.json's own resolution). A file that is not a results.json of this schema's major
version raises ResultsError with one line.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields, replace
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from cisaudit.model.catalogue import Control, benchmark, check_version, controls
from cisaudit.model.verdict import Check, Status
from cisaudit.outputs.record import HOST_CONTROL, CaseRecord
from cisaudit.outputs.results import RunInfo, RunResults, natural_key
from cisaudit.outputs.results_json import SCHEMA_VERSION


class ResultsError(ValueError):
    """A results.json that cannot be read or joined; the message is one line."""


@lru_cache(maxsize=1 << 16)  # whole seconds: a fleet's records share few
def epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _record(raw: Mapping[str, Any], version: str) -> CaseRecord:
    """An outcome of the document (every field of a record but its host's, its host and times)."""
    text = sys.intern
    control_id, check, verdict = raw["control_id"], Check(raw["check"]), Status(raw["verdict"])
    named = benchmark(version)
    control = _catalogue(version).get(control_id)
    if control is None and control_id != HOST_CONTROL:
        raise ResultsError(f"control {control_id!r} is not in the CIS Docker Benchmark v{version}")
    waiver = raw.get("waiver") or {}
    return CaseRecord(
        host="",
        control_id=text(control_id),
        check=check,
        verdict=verdict,
        summary=text(raw["summary"]),
        evidence=text("\n".join(raw["evidence"])),
        benchmark=text(f"{named.title} v{named.version}"),
        title=control.title if control else "",
        level=str(control.level) if control else "",
        assessment=control.assessment.value if control else "",
        audited=text(raw.get("audited") or ""),
        change=text(raw.get("change") or ""),
        remediated=bool(raw.get("remediated")),
        waiver=text(waiver.get("justification", "")) if waiver.get("applied") else "",
        waiver_expiration=text(waiver.get("expiration_date") or ""),
        waiver_expired=text(waiver.get("justification", "")) if waiver.get("expired") else "",
        waiver_approved_by=text(waiver.get("approved_by") or ""),
        waiver_ticket=text(waiver.get("ticket") or ""),
        audit_keys=text(raw.get("audit_keys") or ""),
        reboot_proof=json.dumps(raw["reboot_proof"]) if raw.get("reboot_proof") else "",
    )


def _is_fact(outcome: CaseRecord) -> bool:
    """Whether a record of this outcome carries its host's probe facts (a host check's, judged)."""
    return (
        outcome.control_id == HOST_CONTROL
        and outcome.verdict != Status.ERROR
        and outcome.check not in (Check.REMEDIATION, Check.BACKOUT)
    )


def _cases(document: Mapping[str, Any], version: str, hosts: Mapping[str, Mapping[str, Any]]) -> list[CaseRecord]:
    """Every record of the document, in its order: each outcome read once, each record that
    outcome with its host's fields and its times (fields by position: 3.2 million records at
    100,000 hosts)."""
    read = [_record(raw, version) for raw in document["outcomes"]]
    # per outcome: its fields before the host's, after them, and whether it carries the host's facts
    outcomes = [(o[:_COMMANDS], o[_COMMANDS + 2 :], _is_fact(r)) for r in read for o in (_outcome_fields(r),)]
    cases = []
    for entry in document["results"]:
        host = sys.intern(entry["host"])
        known = hosts.get(host, {})
        commands, facts = int(known.get("remote_commands", 0)), known.get("facts")
        facts_text = json.dumps(facts) if facts is not None else ""
        for index, started, finished in entry["records"]:
            head, tail, fact = outcomes[index]
            cases.append(
                _by_position(host, *head, commands, facts_text if fact else "", *tail, epoch(started), epoch(finished))
            )
    return cases


_FIELDS = [f.name for f in fields(CaseRecord)]
_by_position: Callable[..., CaseRecord] = CaseRecord  # every field given, in the dataclass's order
_COMMANDS = _FIELDS.index("remote_commands") - 1  # in an outcome's fields (no host, no times)
assert _FIELDS[_COMMANDS + 2] == "host_facts" and _FIELDS[-2:] == ["started", "finished"]


def _outcome_fields(outcome: CaseRecord) -> tuple[Any, ...]:
    """An outcome's fields after its host and before its times, in the dataclass's order."""
    return tuple(getattr(outcome, name) for name in _FIELDS[1:-2])


@cache
def _catalogue(version: str) -> dict[str, Control]:
    return {c.id: c for c in controls(version)}


def read_results(path: Path) -> RunResults:
    """One results.json as the run's RunResults (cases in the file's order)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        major = str(document["schema_version"]).split(".")[0]
        if major != SCHEMA_VERSION.split(".")[0]:
            raise ResultsError(f"{path}: schema {document['schema_version']}, this reader reads {SCHEMA_VERSION}")
        run, version = document["run"], check_version(document["benchmark"]["version"])
        hosts = {h["host"]: h for h in document["hosts"]}
        cases = _cases(document, version, hosts)
        info = RunInfo(
            run["command"],
            run["mode"],
            bool(run["require_all"]),
            epoch(run["started"]),
            epoch(run["finished"]),
            document["tool"]["version"],
            document["tool"]["commit"],
            tuple([*hosts, *run.get("scope", {}).get("hosts_not_checked", ())]),
            benchmark=benchmark(version),
        )
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        if isinstance(exc, ResultsError):
            raise
        raise ResultsError(f"{path}: not a cisaudit results.json ({type(exc).__name__}: {exc})") from None
    facts = {h: entry["facts"] for h, entry in hosts.items() if entry.get("facts") is not None}
    commands = {h: int(entry["remote_commands"]) for h, entry in hosts.items()}
    return RunResults(info, cases, facts, commands)


def joined(runs: Iterable[tuple[str, RunResults]], command: str) -> RunResults:
    """Several runs over disjoint hosts (the shards of one audit) as one run: hosts in natural
    order, each host's cases in its run's order; the run's times span them all. Runs of another
    tool version, commit, benchmark or mode, or sharing a host, raise ResultsError."""
    runs = list(runs)
    if not runs:
        raise ResultsError("no results to join")
    first_name, first = runs[0]
    owner: dict[str, str] = {}
    for name, run in runs:
        _same(first_name, first.info, name, run.info)
        for host in dict.fromkeys([*run.info.hosts, *run.hosts]):
            if owner.setdefault(host, name) != name:
                raise ResultsError(f"{host} is in both {owner[host]} and {name}: join each shard's results once")
    by_host: dict[str, list[CaseRecord]] = {}
    for _, run in runs:
        for host, cases in run.by_host.items():
            by_host[host] = cases
    info = replace(
        first.info,
        command=command,
        started=min(r.info.started for _, r in runs),
        finished=max(r.info.finished for _, r in runs),
        hosts=tuple(sorted(owner, key=natural_key)),
    )
    cases = [case for host in sorted(by_host, key=natural_key) for case in by_host[host]]
    facts = {h: f for _, r in runs for h, f in r.host_facts.items()}
    commands = {h: n for _, r in runs for h, n in r.remote_commands.items()}
    return RunResults(info, cases, facts, commands)


def _same(first_name: str, first: RunInfo, name: str, info: RunInfo) -> None:
    for what, mine, theirs in (
        ("benchmark", first.benchmark.version, info.benchmark.version),
        ("mode", first.mode, info.mode),
        ("tool version", first.tool_version, info.tool_version),
        ("commit", first.commit, info.commit),
    ):
        if mine != theirs:
            raise ResultsError(f"{name} has {what} {theirs!r}, {first_name} {mine!r}: join the shards of one run only")
