"""Every output of a run behind one interface, and the one place that lists their options.

Two kinds (docs/architecture.md, "Add an output or a publisher"):
- an `Output` writes a file from the run's results (results.json, XCCDF with its per-host files,
  the compliance report, the suite's cases in JUnit);
- a `Publisher` sends them somewhere by an API call, and says per host what failed. Publishers run
  first: each host error they return becomes that host's ERROR record (check `publication`), so it
  shows in every file output and in the exit code.

An `Entry` names an output, its options (flag, default, help; registered by the plugin) and how to
build it from the option values at configure time (None when not asked for). `register` refuses a
second entry with the same name or flag, and `entry` an unknown name: both fail when loaded.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cisaudit.model.verdict import Check, Status
from cisaudit.outputs.compliance_html import iter_html
from cisaudit.outputs.files import OutputError, replaced
from cisaudit.outputs.junit import CaseSpool, JunitOutput
from cisaudit.outputs.record import HOST_CONTROL, CaseRecord
from cisaudit.outputs.results import RunResults
from cisaudit.outputs.results_json import iter_json
from cisaudit.outputs.xccdf import iter_xccdf


@runtime_checkable
class Output(Protocol):
    """A file made from the run's results. `write` raises OutputError (one line) when it cannot."""

    name: str

    def write(self, results: RunResults) -> None: ...


@runtime_checkable
class Publisher(Protocol):
    """Results sent by an API call: host -> error text for each host whose publication failed."""

    name: str

    def publish(self, results: RunResults) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Option:
    """A command-line option of an output (the plugin adds it to the cisaudit-reports group)."""

    flag: str  # "--results-json"
    help: str
    default: str | int | None = None
    metavar: str | None = "PATH"
    path: bool = True  # a file the output writes: checked writable before any host is touched
    action: str | None = None  # argparse's, e.g. "store_true" (then no metavar)
    nargs: str | None = None  # argparse's, e.g. "?" with `const`: a flag with an optional value
    const: str | None = None
    type: Callable[[str], Any] | None = None  # argparse's: the value's type (text by default)

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


@dataclass(frozen=True)
class Settings:
    """What an entry is built from: the option values (dest -> value) and the run's shape."""

    option: Callable[[str], Any]
    aggregated: bool = False  # more hosts than --aggregate-above (cisaudit/plugin/aggregate.py)


@dataclass(frozen=True)
class Entry:
    name: str
    options: tuple[Option, ...]
    build: Callable[[Settings], Output | Publisher | None]


REGISTRY: dict[str, Entry] = {}
# Files other plugins write whose paths the suite checks too (dest -> flag): pytest's junitxml, pytest-html.
FOREIGN_PATHS = {"xmlpath": "--junitxml", "htmlpath": "--html"}


def register(new: Entry) -> Entry:
    """Add an entry; a name or a flag that is already taken raises (at import of the registering module)."""
    flags = {o.flag for e in REGISTRY.values() for o in e.options} | set(FOREIGN_PATHS.values())
    taken = [o.flag for o in new.options if o.flag in flags]
    if new.name in REGISTRY or taken:
        raise ValueError(
            f"output {new.name!r}: {'the name' if new.name in REGISTRY else taken[0]} is already registered"
        )
    REGISTRY[new.name] = new
    return new


def entry(name: str) -> Entry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no output {name!r} (registered: {', '.join(REGISTRY)})") from None


def options() -> Iterator[Option]:
    for known in REGISTRY.values():
        yield from known.options


def path_flags() -> dict[str, str]:
    """dest -> flag of every file a run may write, the suite's outputs and the foreign ones."""
    return {o.dest: o.flag for o in options() if o.path} | FOREIGN_PATHS


def build(settings: Settings) -> tuple[list[Publisher], list[Output]]:
    """Every output the options ask for, publishers and files apart, in registration order."""
    publishers: list[Publisher] = []
    outputs: list[Output] = []
    for known in REGISTRY.values():
        made = known.build(settings)
        if isinstance(made, Publisher):
            publishers.append(made)
        elif isinstance(made, Output):
            outputs.append(made)
        elif made is not None:
            raise TypeError(f"output {known.name!r} built {type(made).__name__}: neither an Output nor a Publisher")
    return publishers, outputs


def publish(publisher: Publisher, results: RunResults) -> Mapping[str, str]:
    """The publisher's host errors; one that raises failed for every host (the files are still written)."""
    try:
        return publisher.publish(results)
    except Exception as exc:  # noqa: BLE001 - a publisher's failure is every host's error, never a lost run
        return dict.fromkeys(results.hosts, f"{type(exc).__name__}: {exc}")


def publish_all(publishers: list[Publisher], results: RunResults) -> list[tuple[str, Mapping[str, str]]]:
    """Every publisher's host errors, the publishers side by side (each API has its own quota)."""
    if not publishers:
        return []
    with ThreadPoolExecutor(len(publishers), thread_name_prefix="publish") as pool:
        return list(pool.map(lambda p: (p.name, publish(p, results)), publishers))


def publication_errors(results: RunResults, errors: Mapping[str, str], publisher: str, when: float) -> None:
    """Each host a publisher failed for gets an ERROR record (a host check) in `results`."""
    for host, why in errors.items():
        results.add(
            CaseRecord(
                host,
                HOST_CONTROL,
                Check.PUBLICATION,
                Status.ERROR,
                summary=f"{host}: {publisher}: {why}",
                remote_commands=results.remote_commands.get(host, 0),
                started=when,
                finished=when,
            )
        )


@dataclass
class FileOutput:
    """A file rendered in pieces, written whole or not at all (outputs/files.py)."""

    name: str
    path: Path
    render: Callable[[RunResults], Iterable[str]]

    def write(self, results: RunResults) -> None:
        try:
            with replaced(self.path) as out:
                out.writelines(self.render(results))
        except OSError as exc:  # checked at start (plugin/preflight.py); a full disk still ends here
            with contextlib.suppress(OSError):  # no truncated file for a consumer to read
                self.path.unlink()
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None


def host_xccdf_dir(xccdf: Path) -> Path:
    """reports/results.xccdf.xml -> reports/results.xccdf.hosts/: one XCCDF file per host."""
    return xccdf.with_name(xccdf.name.removesuffix(".xml") + ".hosts")


@dataclass
class XccdfOutput:
    """The fleet's XCCDF file, then HOST.xml per host beside it (README "Outputs"), unless
    `per_host` is off (above --aggregate-above without --fleet-reports: 20 kB per host)."""

    name: str
    path: Path
    per_host: bool = True

    def write(self, results: RunResults) -> None:
        FileOutput(self.name, self.path, iter_xccdf).write(results)
        directory = host_xccdf_dir(self.path)
        try:
            _write_host_xccdf(directory, results if self.per_host else None)
        except OSError as exc:
            raise OutputError(f"cannot write {directory}/: {exc.strerror or exc}") from None


def _write_host_xccdf(directory: Path, results: RunResults | None) -> None:
    """HOST.xml per host (the host's `/`, `:` and `@` as `_`), an earlier run's files removed (only
    removed without `results`)."""
    for old in directory.glob("*.xml") if directory.is_dir() else ():
        old.unlink()
    if results is None:
        return
    names: set[str] = set()
    for host in results.hosts:
        name = re.sub(r"[^A-Za-z0-9.-]+", "_", host).strip("_") or "host"
        while name in names:
            name += "_"
        names.add(name)
        with replaced(directory / f"{name}.xml") as out:
            out.writelines(iter_xccdf(results, host))


def _file(name: str, render: Callable[[RunResults], Iterable[str]], flag: str) -> Callable[[Settings], Output | None]:
    def made(settings: Settings) -> Output | None:
        path = settings.option(Option(flag, "").dest)
        return FileOutput(name, Path(path), render) if path else None

    return made


FLEET_REPORTS = Option(
    "--fleet-reports",
    "above --aggregate-above hosts, also write pytest-html's report (--html), the per-host XCCDF files "
    "and a JUnit testcase per case (by default there: one per host and test function); off by default "
    "as their size grows with the fleet (the compliance report, results.json and XCCDF hold every case)",
    None,
    None,
    path=False,
    action="store_true",
)


def fleet_reports(settings: Settings) -> bool:
    """Whether the outputs whose size grows per host are written: below the threshold, or when asked."""
    return not settings.aggregated or bool(settings.option(FLEET_REPORTS.dest))


def _xccdf(settings: Settings) -> Output | None:
    path = settings.option("xccdf")
    return XccdfOutput("xccdf", Path(path), fleet_reports(settings)) if path else None


def _junit(settings: Settings) -> Output | None:
    """pytest's junitxml writes the file; the suite adds the cases of aggregated items and the
    publication errors to it (outputs/junit.py)."""
    path = settings.option("xmlpath")
    if not path:
        return None
    # Above --aggregate-above the file is compact (one testcase per host and test function, as pytest
    # writes the aggregated items) unless --fleet-reports asks for a testcase per case.
    per_case = settings.aggregated and fleet_reports(settings)
    return JunitOutput("junit", Path(path), CaseSpool(Path(path)) if per_case else None)


register(
    Entry(
        "compliance_report",
        (
            Option(
                "--compliance-report",
                "the compliance report, self-contained HTML (default reports/compliance.html)",
                "reports/compliance.html",
            ),
        ),
        _file("compliance_report", iter_html, "--compliance-report"),  # in pieces, as results.json
    )
)
register(
    Entry(
        "results_json",
        (
            Option(
                "--results-json",
                "machine-readable results, schema docs/results.schema.json (default reports/results.json)",
                "reports/results.json",
            ),
        ),
        _file("results_json", iter_json, "--results-json"),  # in pieces: the whole text would double the peak
    )
)
register(
    Entry(
        "xccdf",
        (
            Option(
                "--xccdf",
                "XCCDF 1.2 Benchmark + TestResult per host (default reports/results.xccdf.xml)",
                "reports/results.xccdf.xml",
            ),
            FLEET_REPORTS,
        ),
        _xccdf,
    )
)
register(Entry("junit", (), _junit))  # pytest's --junitxml (FOREIGN_PATHS)
