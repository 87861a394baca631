"""The CIS Docker §1.1 audit controls of each benchmark version, loaded from
cisaudit/model/benchmarks/VERSION.toml (data, not code; sources in docs/benchmarks.md)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from cisaudit.model.locate import parse_locate

STYLE_PERMS = {"watch": "rwxa", "syscall": "rwa"}
DEFAULT_KEY = "docker"
BENCHMARKS = Path(__file__).with_name("benchmarks")


def version_key(version: str) -> tuple[int, ...]:
    """1.10.0 sorts after 1.9.0."""
    return tuple(int(part) for part in version.split("."))


# Every catalogue file is a version --benchmark accepts: adding benchmarks/1.9.0.toml adds v1.9.0.
VERSIONS = tuple(sorted((p.stem for p in BENCHMARKS.glob("*.toml")), key=version_key))
DEFAULT_VERSION = "1.7.0"


class AssessmentStatus(StrEnum):
    """The benchmark's Assessment Status of a recommendation."""

    AUTOMATED = "automated"
    MANUAL = "manual"


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    level: int
    path: str  # the benchmark's path
    style: str  # "watch" or "syscall"
    locate: str  # how the path is found on a host: a kind of model/locate.py KINDS
    assessment: AssessmentStatus = AssessmentStatus.AUTOMATED
    exclude: tuple[str, ...] = ()  # data-root subdirectories excluded by a `never` rule first

    @property
    def required_perms(self) -> str:
        return STYLE_PERMS[self.style]

    def rule_text(self, path: str, key: str = DEFAULT_KEY) -> str:
        """The benchmark's own spelling of the rule, for `path`."""
        if self.style == "watch":
            return f"-w {path} -k {key}"
        return f"-a exit,always -F path={path} -F perm=war -k {key}"


def exclusion_rule(path: str) -> str:
    """The benchmark's spelling of an exclusion (v1.8.0 1.1.5): no key, every access."""
    return f"-a exit,never -F dir={path}"


@dataclass(frozen=True)
class Benchmark:
    title: str
    version: str


def check_version(version: str) -> str:
    if version not in VERSIONS:
        raise ValueError(f"unknown benchmark version {version!r}: one of {', '.join(VERSIONS)}")
    return version


@cache
def _data(version: str) -> dict[str, Any]:
    return tomllib.loads((BENCHMARKS / f"{check_version(version)}.toml").read_text())


def benchmark(version: str) -> Benchmark:
    """The benchmark a version's catalogue implements (reports and XCCDF name it)."""
    return Benchmark(**_data(version)["benchmark"])


class CatalogueError(ValueError):
    """A catalogue file the tool cannot use: one line naming the file and the control."""


def _control(entry: dict[str, Any]) -> Control:
    """One `[[control]]` table, checked: a mistyped value fails here, when the catalogue loads."""
    control = Control(
        **{
            **entry,
            "assessment": AssessmentStatus(entry.get("assessment", "automated")),
            "exclude": tuple(entry.get("exclude", ())),
        }
    )
    if control.style not in STYLE_PERMS:
        raise ValueError(f"unknown style {control.style!r} (valid: {', '.join(STYLE_PERMS)})")
    parse_locate(control.locate)
    if control.exclude and control.locate != "data-root":
        raise ValueError("exclude is only for the data-root")
    return control


@cache
def controls(version: str = DEFAULT_VERSION) -> tuple[Control, ...]:
    loaded = []
    for entry in _data(version)["control"]:
        try:
            loaded.append(_control(entry))
        except (TypeError, ValueError) as exc:
            where = BENCHMARKS / f"{version}.toml"
            raise CatalogueError(f"{where}: control {entry.get('id', '?')}: {exc}") from None
    return tuple(loaded)


def select(ids_csv: str, version: str) -> list[Control]:
    """The controls a comma list of ids names (all when empty); unknown ids are a ValueError."""
    wanted = {c.strip() for c in ids_csv.split(",") if c.strip()}
    unknown = wanted - {c.id for c in controls(version)}
    if unknown:
        raise ValueError(f"unknown control ids: {', '.join(sorted(unknown))}")
    return [c for c in controls(version) if not wanted or c.id in wanted]
