"""Kernel truth: what this machine's kernel records for a rule state, and what the suite says.

A case is a list of auditctl rules on objects under a fresh ~/cisaudit-kt-XXXX (`{T}` in
the rules). The objects: `d/` holding `f` (an executable script that would leave `ran` in
{T} if it ever ran), `link -> d/f` and `ld -> d`. The ground truth is cisaudit.host.events' own
trigger script (one access per permission class, each by its own process), plus the same
accesses through the 32-bit syscall ABI by selftests/integration/access32.c, and (for the rule
sets) both again by the other actors of `Actor`: root with a login uid, and an unprivileged user.
"""

from __future__ import annotations

import platform
import shlex
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from cisaudit.host import probe
from cisaudit.host.events import recorded, render_script
from cisaudit.model.catalogue import Control, controls
from cisaudit.model.decisions import Accesses, Trigger
from cisaudit.model.evaluate import Assessment

KEY = "docker"
LOGIN_UID = 1500  # a login uid >= UID_MIN (1000), as rules' `-F auid>=1000 -F auid!=unset` expect
ACCESS32_SOURCE = Path(__file__).with_name("access32.c")


@dataclass(frozen=True)
class Case:
    name: str
    style: str  # the synthetic control's style: "watch" (rwxa) or "syscall" (rwa)
    obj: str  # the control's path, relative to {T}
    rules: tuple[str, ...]  # auditctl arguments, in load order

    def expand(self, tmp: str) -> tuple[str, list[str]]:
        return f"{tmp}/{self.obj}", [r.replace("{T}", tmp) for r in self.rules]


def synthetic_control(path: str, style: str) -> Control:
    """The one place a test control is built (the catalogue's Control may grow fields)."""
    return Control(id="kt", title=f"kernel truth: {path}", level=1, path=path, style=style, locate="file")


def make_objects(tmp: Path) -> None:
    tmp.chmod(0o755)  # the other actors' accesses must reach the objects
    (tmp / "d").mkdir()
    script = tmp / "d" / "f"
    script.write_text(f"#!/bin/sh\n: > {tmp}/ran\n")
    script.chmod(0o755)
    (tmp / "link").symlink_to("d/f")
    (tmp / "ld").symlink_to("d")


def build_access32(out_dir: Path) -> Path | None:
    """access32 built for this machine, or None where the kernel runs no 32-bit syscalls
    (not x86_64, or no IA32 emulation: int $0x80 then kills the process)."""
    if platform.machine() != "x86_64":
        return None
    binary = out_dir / "access32"
    subprocess.run(["gcc", "-static", "-no-pie", "-O1", "-o", str(binary), str(ACCESS32_SOURCE)], check=True)
    return binary if subprocess.run([binary, "r", "/dev/null"]).returncode == 0 else None


def assessment_of(control: Control) -> Assessment:
    """The suite's assessment of this machine, from one real probe that also looks at the control's path."""
    script, nonce = probe.render_probe(controls("1.7.0"), [control.path])
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    return Assessment(probe.parse_probe(out, nonce, controls("1.7.0")), KEY)


def suite_verdicts(control: Control, checks: tuple[str, ...] = ("live", "persisted")) -> dict[str, str]:
    """The suite's verdicts for the control on this machine, from one real probe."""
    assessment = assessment_of(control)
    return {check: assessment.control_verdict(control, check).status for check in checks}


def reachable(access32: Path | None, tmp: Path) -> Path | None:
    """A copy of access32 the other actors can run (pytest's own temporary directories are 0700)."""
    if access32 is None:
        return None
    copy = tmp / "access32"
    if not copy.exists():
        shutil.copy(access32, copy)
        copy.chmod(0o755)
    return copy


def ground_truth(control: Control, tmp: Path, access32: Path | None) -> dict[Trigger, list[str]]:
    """Each access the control requires (native, and b32 where possible; by root and by an
    unprivileged login user, `Actor.USER`: what CIS Linux rules' `auid>=1000` single out) and its
    events with KEY."""
    subtree = control.style == "watch" and Path(control.path).is_dir()
    paths = [control.path] + ([f"{control.path}/f"] if subtree else [])
    extra = (
        "".join(f"{access32} {c} {p} & spawned {c}/b32 {p}\n" for p in paths for c in control.required_perms)
        if access32
        else ""
    ) + actor_lines(((control.required_perms, p) for p in paths), [Actor.USER], reachable(access32, tmp))
    script = render_script([Accesses(control.path, control.required_perms, subtree)], KEY, timeout=5, extra=extra)
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, cwd=tmp).stdout
    assert not (tmp / "ran").exists(), "an execute trigger ran the program"
    return recorded(out)


def truth_table(truth: dict[Trigger, list[str]], tmp: str) -> str:
    return ", ".join(
        f"{t.path.replace(tmp, '{T}')} {t.label}:{'yes' if events else 'no'}" for t, events in truth.items()
    )


class Actor(Enum):
    """Who makes an access. The harness itself runs as root with no login uid (auid unset); the
    others get LOGIN_UID as login uid (writing /proc/self/loginuid needs CAP_AUDIT_CONTROL and a
    kernel without --loginuid-immutable) before they exec the access."""

    ROOT = "root"  # uid 0, auid unset: a daemon or boot-time script
    ADMIN = "admin"  # uid 0, auid LOGIN_UID: a user who logged in and became root (sudo)
    USER = "user"  # uid and auid LOGIN_UID: an unprivileged user; writes and chmod fail (EACCES, EPERM)

    def prefix(self) -> str:
        """The sh words that run a command (its "$@") as this actor, in the same process."""
        if self is Actor.ROOT:
            return ""
        become = f"setpriv --reuid={LOGIN_UID} --regid={LOGIN_UID} --clear-groups " if self is Actor.USER else ""
        return "sh -c " + shlex.quote(f'echo {LOGIN_UID} > /proc/self/loginuid && exec {become}"$@"') + " actor "


# One access per class, as cisaudit/host/scripts/events.sh makes it, for `actor_lines`: the
# execute access passes its over-long argument only in the last exec (the actor's own execs
# would fail E2BIG first), so it needs a kernel that opens the file first (events.py: e2big).
_ACCESS = {
    "r": "dd if={p} of=/dev/null bs=1 count=0",
    "w": "dd if=/dev/null of={p} oflag=append conv=notrunc,nocreat count=0",
    "x": 'sh -c \'exec "$0" "$(head -c $(( $(getconf PAGESIZE) * 32 )) /dev/zero | tr "\\0" x)"\' {p}',
    "a": 'chmod "$(stat -L -c %a -- {p})" -- {p}',
}


def actor_lines(
    paths: Iterable[tuple[str, str]], actors: Iterable[Actor], access32: Path | None, batch: int = 48
) -> str:
    """sh for events.render_script's `extra`: each (classes, path) access by each actor other than
    root (events.sh makes root's), natively and through the 32-bit ABI, each by its own process
    announced as events.sh's `spawned` does (LABEL = CLASS[/b32][/ACTOR]); up to `batch` of them
    run at once (the accesses are independent; one at a time, 400 take seconds)."""
    lines = ['started() { printf \'%s trigger %s %s %s\\n\' "$MARK" "$1" "$!" "$2"; }']
    for classes, path in paths:
        p = shlex.quote(path)
        for actor in actors:
            tag = "" if actor is Actor.ROOT else f"/{actor.value}"
            for c in classes:
                if actor is not Actor.ROOT:
                    lines.append(f"{actor.prefix()}{_ACCESS[c].format(p=p)} 2>/dev/null & started {c}{tag} {p}")
                if access32:
                    lines.append(f"{actor.prefix()}{access32} {c} {p} 2>/dev/null & started {c}/b32{tag} {p}")
    lines = [line + ("\nwait" if i % batch == 0 else "") for i, line in enumerate(lines)]
    return "".join(line + "\n" for line in lines) + "wait\n"
