"""The CIS Docker v1.7 §1.1 audit controls, loaded from controls.toml (data, not code)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

STYLE_PERMS = {"watch": "rwxa", "syscall": "rwa"}
DEFAULT_KEY = "docker"


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    level: int
    path: str  # the benchmark's path
    style: str  # "watch" or "syscall"
    locate: str  # how the path is found on a host (see controls.toml)
    assessment: str = "automated"  # the benchmark's Assessment Status: "automated" or "manual"

    @property
    def required_perms(self) -> str:
        return STYLE_PERMS[self.style]

    def rule_text(self, path: str, key: str = DEFAULT_KEY) -> str:
        """The benchmark's own spelling of the rule, for `path`."""
        if self.style == "watch":
            return f"-w {path} -k {key}"
        return f"-a exit,always -F path={path} -F perm=war -k {key}"


@dataclass(frozen=True)
class Benchmark:
    title: str
    version: str


@cache
def _data() -> dict:
    return tomllib.loads((Path(__file__).with_name("controls.toml")).read_text())


def benchmark() -> Benchmark:
    """The benchmark the catalogue implements (reports and XCCDF name it)."""
    return Benchmark(**_data()["benchmark"])


@cache
def controls() -> tuple[Control, ...]:
    data = _data()
    loaded = tuple(Control(**entry) for entry in data["control"])
    for control in loaded:
        if control.style not in STYLE_PERMS:
            raise ValueError(f"{control.id}: unknown style {control.style!r}")
        if control.assessment not in ("automated", "manual"):
            raise ValueError(f"{control.id}: unknown assessment {control.assessment!r}")
    return loaded


def select(ids_csv: str) -> list[Control]:
    """The controls a comma list of ids names (all when empty); unknown ids are a ValueError."""
    wanted = {c.strip() for c in ids_csv.split(",") if c.strip()}
    unknown = wanted - {c.id for c in controls()}
    if unknown:
        raise ValueError(f"unknown control ids: {', '.join(sorted(unknown))}")
    return [c for c in controls() if not wanted or c.id in wanted]
