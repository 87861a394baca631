"""How each audit userspace version loads rules: augenrules' merge and `auditctl -R`'s file checks.

Pure data and code. Behaviours are a table: the oldest version this suite knows (3.0.9, Debian 12)
and every later change with the release that made it and its source in linux-audit/audit-userspace.
A host's behaviour is its version's row, except where the host's own augenrules script plainly
says otherwise (a distribution's patch); a version outside the known range (or one `auditctl -v`
did not print) is judged by the nearest known version, and the evidence says so.
docs/kernel-behaviour.md, "Loader versions".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Behaviour(StrEnum):
    WORD_SPLITS_NAMES = "augenrules word-splits rules.d file names"
    STRIPS_CR = "augenrules strips a carriage return at the end of a line"
    OWNER_CHECK = "auditctl -R refuses a rules file not owned by root"
    WORLD_WRITABLE_REFUSED = "auditctl -R refuses a world-writable rules file"


@dataclass(frozen=True)
class Change:
    since: tuple[int, ...]
    behaviour: Behaviour
    value: bool
    source: str


BASE_VERSION = (3, 0, 9)
BASE: dict[Behaviour, tuple[bool, str]] = {
    Behaviour.WORD_SPLITS_NAMES: (
        True,
        "v3.0.9 init.d/augenrules: `for rules in $(/bin/ls -1v ${SourceRulesDir} | grep ...)`; measured",
    ),
    Behaviour.STRIPS_CR: (False, "v3.0.9 init.d/augenrules: the awk keeps every byte; measured: key `docker\\r`"),
    Behaviour.OWNER_CHECK: (True, 'v3.0.9 src/auditctl.c fileopt(): `st.st_uid != 0` -> "isn\'t owned by root"'),
    Behaviour.WORLD_WRITABLE_REFUSED: (True, 'v3.0.9 src/auditctl.c fileopt(): `S_IWOTH` -> "is world writable"'),
}
CHANGES = (
    Change((3, 1, 1), Behaviour.STRIPS_CR, True, 'commit 8971c152 (v3.1.1): augenrules\' awk runs `sub(/\\r$/, "")`'),
    Change((3, 1, 2), Behaviour.OWNER_CHECK, False, "commit 3bbe0ab3 (v3.1.2): auditctl -R file checks relaxed"),
    Change(
        (3, 1, 2), Behaviour.WORLD_WRITABLE_REFUSED, False, "commit 3bbe0ab3 (v3.1.2): auditctl -R file checks relaxed"
    ),
    Change((4, 1, 4), Behaviour.WORLD_WRITABLE_REFUSED, True, "commit 2f9f91c3 (v4.1.4): world-writable check back"),
    Change(
        (4, 2),
        Behaviour.WORD_SPLITS_NAMES,
        False,
        "commit fc08f19a (v4.2): `printf '%s\\0' rules.d/*.rules | sort -zV | xargs -0r cat --`",
    ),
)
NEWEST_KNOWN = (4, 2, 2)  # the sources were read up to this release (audit-userspace master, 2026-08)
_VERSION_RE = re.compile(r"\b(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> tuple[int, ...] | None:
    """`auditctl version 3.0.9` -> (3, 0, 9); None when no version is printed."""
    m = _VERSION_RE.search(text)
    if not m:
        return None
    return tuple(int(g) for g in m.groups() if g is not None)


def _show(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


@dataclass(frozen=True)
class Userspace:
    """The audit userspace a host runs, and how its loader behaves."""

    version: tuple[int, ...]
    judged_as: tuple[int, ...]
    note: str  # why it is judged as judged_as ("" when the version is known)
    behaviours: dict[Behaviour, tuple[bool, str]]

    def does(self, behaviour: Behaviour) -> bool:
        return self.behaviours[behaviour][0]

    def evidence(self) -> tuple[str, ...]:
        head = f"audit userspace {_show(self.version) if self.version else 'unknown'}"
        if self.note:
            head += f" ({self.note})"
        return (head, *(f"{b.value}: {'yes' if v else 'no'} [{src}]" for b, (v, src) in self.behaviours.items()))


_SPLITS_RE = re.compile(r"for rules in \$\(\S*ls -1v")  # pre-4.2: the names of `ls -1v` word-split
_NUL_SORT = "sort -zV"  # 4.2+: NUL-separated names
_CR_SUB = "sub(/\\r$/"  # 3.1.1+: the awk strips a trailing CR


def _script_says(script: str) -> dict[Behaviour, tuple[bool, str]]:
    """What the host's own augenrules does where its text says it plainly (a distribution may
    patch it): these override the version's row."""
    found: dict[Behaviour, tuple[bool, str]] = {}
    if _NUL_SORT in script or _SPLITS_RE.search(script):
        splits = _NUL_SORT not in script
        how = "`for rules in $(ls -1v ...)`" if splits else f"`{_NUL_SORT}`"
        found[Behaviour.WORD_SPLITS_NAMES] = (splits, f"the host's augenrules runs {how}")
    if "minus_e" in script:  # the awk program is there: whether it strips CR is visible
        strips = _CR_SUB in script
        found[Behaviour.STRIPS_CR] = (
            strips,
            f'the host\'s augenrules {"has" if strips else "has no"} `sub(/\\r$/, "")`',
        )
    return found


def userspace(version_text: str, augenrules: str | None = None) -> Userspace:
    """The behaviours of the version `auditctl -v` printed, nearest known version for others;
    what the host's own augenrules script plainly does overrides its row."""
    version = parse_version(version_text) or ()
    judged, note = version, ""
    if not version:
        judged, note = BASE_VERSION, f"auditctl -v printed no version; judged as {_show(BASE_VERSION)}"
    elif version < BASE_VERSION:
        judged = BASE_VERSION
        note = f"older than any version this suite knows; judged as {_show(BASE_VERSION)}, the nearest"
    elif version > NEWEST_KNOWN:
        judged = NEWEST_KNOWN
        note = f"newer than any version this suite knows; judged as {_show(NEWEST_KNOWN)}, the nearest"
    table = dict(BASE)
    for change in CHANGES:
        if judged >= change.since:
            table[change.behaviour] = (change.value, change.source)
    table.update(_script_says(augenrules or ""))
    return Userspace(version, judged, note, table)
