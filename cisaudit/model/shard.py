"""`--shard K/N`: which hosts one of N CI jobs audits (README "Past one runner").

A host belongs to shard `sha256(its display spec) mod N`, counted from 1: the same host goes to
the same shard whatever the order or the number of other hosts, every host to exactly one shard,
and the shards of a large fleet come out within a few percent of each other. An SSM instance's
display spec is `ssm://` and its instance id, so `--ssm-targets` and `--hosts=ssm://...` agree.
Pure: no I/O; the plugin applies it after discovery, `cisaudit.plugin.merge` joins the results.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

_SHARD = re.compile(r"\s*(\d{1,6})\s*/\s*(\d{1,6})\s*")


@dataclass(frozen=True)
class Shard:
    index: int  # 1..total
    total: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`K/N` with 1 <= K <= N (GitLab's CI_NODE_INDEX/CI_NODE_TOTAL); ValueError otherwise."""
        match = _SHARD.fullmatch(text)
        if not match:
            raise ValueError(f"{text!r} is not K/N; give e.g. 2/8 (shard 2 of 8, counted from 1)")
        index, total = int(match[1]), int(match[2])
        if not 1 <= index <= total:
            raise ValueError(f"{text!r}: K must be between 1 and N; give e.g. 1/{max(total, 2)}")
        return cls(index, total)

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"

    def owns(self, spec: str) -> bool:
        """Whether this shard audits the host shown as `spec` (hostspec's display spec)."""
        return shard_of(spec, self.total) == self.index

    def hosts(self, specs: Iterable[str]) -> list[str]:
        """The specs this shard audits, in their order."""
        return [s for s in specs if self.owns(s)]

    def instances(self, instance_ids: Iterable[str]) -> list[str]:
        """The SSM instance ids this shard audits, in their order."""
        return [i for i in instance_ids if self.owns(f"ssm://{i}")]

    def whole_tags(self, tags: Mapping[tuple[str, str], Sequence[str]]) -> dict[tuple[str, str], list[str]]:
        """The tag targets every one of whose instances is this shard's: only those may still be
        sent by tag (a tag reaching other shards' instances would probe them all)."""
        return {tag: list(ids) for tag, ids in tags.items() if len(self.instances(ids)) == len(ids)}


def shard_of(spec: str, total: int) -> int:
    """The shard (1..total) of the host shown as `spec`."""
    digest = hashlib.sha256(spec.encode()).digest()
    return int.from_bytes(digest[:8], "big") % total + 1


def without_shard(args: Sequence[str]) -> tuple[list[str], Shard | None]:
    """A command line's arguments without its --shard K/N, and that shard (None without one)."""
    kept, values = _split_option(args, "--shard")
    found: Shard | None = None
    for value in values:
        found = Shard.parse(value)
    return kept, found


def _split_option(args: Sequence[str], name: str) -> tuple[list[str], list[str]]:
    """A command line's arguments without option `name` (`name VALUE` or `name=VALUE`), and its
    values in the order given."""
    kept: list[str] = []
    values: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg == name:
            values.append(next(rest, ""))
        elif arg.startswith(name + "="):
            values.append(arg.removeprefix(name + "="))
        else:
            kept.append(arg)
    return kept, values


def incomplete(shards: Sequence[Shard | None]) -> str | None:
    """Why these runs are not the N shards of one audit, once each (one line), or None."""
    if any(s is None for s in shards):
        return "a results file comes from a run without --shard K/N"
    totals = {s.total for s in shards if s is not None}
    if len(totals) != 1:
        return f"the runs were split into different numbers of shards: {', '.join(map(str, sorted(totals)))}"
    total = totals.pop()
    seen = [s.index for s in shards if s is not None]
    twice = sorted({k for k in seen if seen.count(k) > 1})
    if twice:
        return f"shard {twice[0]}/{total} is given twice"
    missing = sorted(set(range(1, total + 1)) - set(seen))
    if missing:
        return f"shard {', '.join(f'{k}/{total}' for k in missing)} missing: give every shard's results.json"
    return None


@dataclass(frozen=True)
class FleetShape:
    """What a run's command line says about its outputs' shape at fleet size (README "At fleet size")."""

    aggregate_above: int  # --aggregate-above
    fleet_reports: bool  # --fleet-reports

    def compact(self, hosts: int) -> bool:
        """Whether a run of `hosts` hosts writes the compact outputs (a JUnit testcase per host and
        test function, no per-host XCCDF files)."""
        return hosts > self.aggregate_above and not self.fleet_reports


def fleet_shape(args: Sequence[str], default: int) -> FleetShape:
    """The --aggregate-above (the last given, else `default`) and --fleet-reports of a command
    line's arguments; ValueError (one line) for a value that is not a host count."""
    kept, limits = _split_option(args, "--aggregate-above")
    limit = limits[-1] if limits else str(default)
    if not limit.strip().isdigit():
        raise ValueError(f"--aggregate-above {limit!r} is not a number of hosts")
    return FleetShape(int(limit), "--fleet-reports" in kept)
