"""The terminal's part of a run (cisaudit/plugin/report.py prints it): per failure one block headed
`HOST | CONTROL | CHECK`, per host one line for its errors when they all say the same (an
unreachable host), the change per host (the plan of a dry run), and the overall verdict with its
scope. Host text is shown with control characters escaped, so a host cannot drive the terminal.
"""

from __future__ import annotations

from collections.abc import Iterator

from cisaudit.model.verdict import Check, Status
from cisaudit.outputs.record import CaseRecord
from cisaudit.outputs.results import RunResults
from cisaudit.outputs.text import terminal_safe

EVIDENCE_LINES = 20  # per failure; results.json and the compliance report have every line
CHANGE_CHECKS = (Check.REMEDIATION, Check.BACKOUT)


def heading(record: CaseRecord) -> str:
    return terminal_safe(f"{record.host} | {record.control_id} | {record.check}")


def failure_blocks(results: RunResults) -> Iterator[tuple[str, list[str]]]:
    """(heading, lines) per failing case: the summary once, then at most EVIDENCE_LINES of evidence."""
    for cases in results.by_host.values():
        for case in cases:
            if case.status != Status.FAIL:
                continue
            evidence = case.evidence.splitlines()
            lines = [case.summary, *evidence[:EVIDENCE_LINES]]
            if len(evidence) > EVIDENCE_LINES:
                lines.append(f"... {len(evidence) - EVIDENCE_LINES} more evidence lines in results.json")
            yield heading(case), [terminal_safe(line) for line in lines]


def error_lines(results: RunResults) -> Iterator[str]:
    """One line per (host, error summary): an unreachable host is one line, not one per check."""
    for host, cases in results.by_host.items():
        groups: dict[str, list[CaseRecord]] = {}
        for case in cases:
            if case.status == Status.ERROR:
                groups.setdefault(case.summary.removeprefix(f"{host}: "), []).append(case)
        for summary, errored in groups.items():
            if len(errored) == 1:
                yield f"{heading(errored[0])}: {terminal_safe(summary)}"
                continue
            which = "every check of the host" if len(errored) == len(cases) else f"{len(errored)} checks"
            yield terminal_safe(f"{host}: {summary} ({which}: {len(errored)} errors)")


def change_lines(results: RunResults) -> Iterator[str]:
    """Per host what --remediate / --backout did, or in a dry run would do: its verdicts' text."""
    for host, cases in results.by_host.items():
        shown = [c for c in cases if c.check in CHANGE_CHECKS]
        if not shown:
            changes = "; ".join(results.changes(host)) or "no change"
            yield terminal_safe(f"{host}: {changes}")
        for case in shown:
            yield terminal_safe(f"{host}: {case.check}: {case.summary}")
            yield from (terminal_safe(f"    {line}") for line in case.evidence.splitlines())


def overall_line(results: RunResults) -> str:
    scope = results.scope
    text = f"overall: {results.overall.upper()}; scope: {'complete' if scope.complete else 'PARTIAL'}"
    return terminal_safe(f"{text}, {scope.describe()}")
