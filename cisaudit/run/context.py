"""What a run was asked to do, validated once: the benchmark version and its controls, the audit
keys, golden-image mode, the waivers and the change to make (remediate, back out, dry run)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from cisaudit.model.catalogue import DEFAULT_KEY, Benchmark, Control, benchmark, check_version, controls
from cisaudit.model.kernel import AuditKeys
from cisaudit.model.waivers import Waiver


class ContextError(ValueError):
    """A RunContext that contradicts itself; the message says which part."""


class Mode(StrEnum):
    """The change a run makes to each host around its checks."""

    AUDIT = "audit"  # change nothing
    REMEDIATE = "remediate"  # add the missing rules first
    REMEDIATE_BACKOUT = "remediate + backout"  # add them, and revert after the host's checks
    BACKOUT = "backout"  # undo the host's latest run first

    @classmethod
    def of(cls, remediate: bool, backout: bool) -> Mode:
        if remediate:
            return cls.REMEDIATE_BACKOUT if backout else cls.REMEDIATE
        return cls.BACKOUT if backout else cls.AUDIT

    @property
    def remediates(self) -> bool:
        return self in (Mode.REMEDIATE, Mode.REMEDIATE_BACKOUT)

    @property
    def backs_out(self) -> bool:
        return self in (Mode.BACKOUT, Mode.REMEDIATE_BACKOUT)


@dataclass(frozen=True)
class RunContext:
    version: str  # the benchmark version checked: every control, plan and written file names it
    selected: tuple[Control, ...]  # the controls checked (--controls), all of `version`'s by default
    keys: AuditKeys = AuditKeys()
    require_all: bool = False  # golden image: an absent path fails
    waivers: Mapping[str, Waiver] = field(default_factory=lambda: MappingProxyType({}))
    mode: Mode = Mode.AUDIT
    dry_run: bool = False
    today: dt.date = field(default_factory=lambda: dt.datetime.now(dt.UTC).date())  # waivers expire against it
    reboot_wait: float | None = None  # --reboot-proof: seconds a host may take to come back; None: no reboot

    def __post_init__(self) -> None:
        try:
            check_version(self.version)
        except ValueError as exc:
            raise ContextError(str(exc)) from None
        Mode(self.mode)
        known = {c.id: c for c in self.catalogue}
        foreign = [c.id for c in self.selected if known.get(c.id) != c]
        if foreign:
            raise ContextError(f"controls {', '.join(foreign)} are not benchmark {self.version}'s")
        unknown = sorted(set(self.waivers) - set(known))
        if unknown:
            raise ContextError(f"waivers name controls benchmark {self.version} lacks: {', '.join(unknown)}")
        if self.dry_run and self.mode == Mode.AUDIT:
            raise ContextError("a dry run shows a change: it needs remediate or backout")
        if not self.keys.any and not self.keys.names:
            raise ContextError("no audit key: name one, several, or any")
        object.__setattr__(self, "waivers", MappingProxyType(dict(self.waivers)))

    @property
    def catalogue(self) -> tuple[Control, ...]:
        """Every control of the run's benchmark version."""
        return controls(self.version)

    @property
    def benchmark(self) -> Benchmark:
        return benchmark(self.version)

    @property
    def key(self) -> str:
        """The key the rules the run writes carry: the first --audit-key (docker with `any`)."""
        return self.keys.names[0] if self.keys.names else DEFAULT_KEY
