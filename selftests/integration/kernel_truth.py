"""Kernel truth: what this machine's kernel records for a rule state, and what the suite says.

A case is a list of auditctl rules on objects under a fresh /tmp/cisaudit-kt-XXXX (`{T}` in
the rules). The objects: `d/` holding `f` (an executable script that would leave `ran` in
{T} if it ever ran), `link -> d/f` and `ld -> d`. The ground truth is cisaudit.host.events' own
trigger script (one access per permission class, each by its own process), plus the same
accesses through the 32-bit syscall ABI by selftests/integration/access32.c, and all of them
again by a login user (loginuid and uid LOGIN_UID: what CIS Linux rules' `auid>=1000` single out).
"""

from __future__ import annotations

import platform
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cisaudit.host import probe
from cisaudit.host.events import recorded, render_script
from cisaudit.model.catalogue import Control
from cisaudit.model.decisions import Accesses, Trigger
from cisaudit.model.evaluate import Assessment

KEY = "docker"
LOGIN_UID = 1000
# A process that sets its own loginuid (root may, while it is unset), then runs the access as that uid.
_AS_LOGIN_USER = (
    f"echo {LOGIN_UID} > /proc/self/loginuid && "
    f'exec setpriv --reuid={LOGIN_UID} --regid={LOGIN_UID} --clear-groups -- "$@"'
)
# One access per class as events.sh makes it (cisaudit/host/events.py), each `exec`ed so that the
# announced pid makes it; x never runs the program.
_LOGIN_ACCESS = {
    "r": "exec dd if={p} of=/dev/null bs=1 count=0",
    "w": "exec dd if=/dev/null of={p} oflag=append conv=notrunc,nocreat count=0",
    "x": "ulimit -c 0; ulimit -v 1; exec {p}",
    "a": "exec chmod 755 {p}",
}
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
    tmp.chmod(0o755)  # the login user's accesses must reach the objects
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


def suite_verdicts(control: Control, checks: tuple[str, ...] = ("live", "persisted")) -> dict[str, str]:
    """The suite's verdicts for the control on this machine, from one real probe."""
    script, nonce = probe.render_script(extra_paths=[control.path])
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assessment = Assessment(probe.parse_probe(out, nonce), KEY)
    return {check: assessment.control_verdict(control, check).status for check in checks}


def login_user_accesses(paths: list[str], classes: str, access32: Path | None) -> str:
    """events.sh EXTRA: every access again by a login user (LOGIN_UID), natively and b32."""
    lines = []
    for p in paths:
        for c in classes:
            made = [(_LOGIN_ACCESS[c].format(p=shlex.quote(p)), c)]
            made += [(shlex.join(["exec", str(access32), c, p]), f"{c}/b32")] if access32 else []
            for command, label in made:
                wrapped = shlex.join(["sh", "-c", _AS_LOGIN_USER, "login", "sh", "-c", command])
                lines.append(f"{wrapped} >/dev/null 2>&1 & spawned {label}/login {shlex.quote(p)}\n")
    return "".join(lines)


def reachable(access32: Path | None, tmp: Path) -> Path | None:
    """A copy of access32 the login user can run (pytest's own temporary directories are 0700)."""
    if access32 is None:
        return None
    copy = tmp / "access32"
    if not copy.exists():
        shutil.copy(access32, copy)
        copy.chmod(0o755)
    return copy


def ground_truth(control: Control, tmp: Path, access32: Path | None) -> dict[Trigger, list[str]]:
    """Each access the control requires (native, and b32 where possible; by root and by a login
    user) and its events with KEY."""
    subtree = control.style == "watch" and Path(control.path).is_dir()
    paths = [control.path] + ([f"{control.path}/f"] if subtree else [])
    extra = (
        "".join(f"{access32} {c} {p} & spawned {c}/b32 {p}\n" for p in paths for c in control.required_perms)
        if access32
        else ""
    ) + login_user_accesses(paths, control.required_perms, reachable(access32, tmp))
    script = render_script([Accesses(control.path, control.required_perms, subtree)], KEY, timeout=5, extra=extra)
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, cwd=tmp).stdout
    assert not (tmp / "ran").exists(), "an execute trigger ran the program"
    return recorded(out)


def truth_table(truth: dict[Trigger, list[str]], tmp: str) -> str:
    return ", ".join(
        f"{t.path.replace(tmp, '{T}')} {t.label}:{'yes' if events else 'no'}" for t, events in truth.items()
    )
