"""Kernel truth: what this machine's kernel records for a rule state, and what the suite says.

A case is a list of auditctl rules on objects under a fresh ~/cisaudit-kt-XXXX (`{T}` in
the rules). The objects: `d/` holding `f` (an executable script that would leave `ran` in
{T} if it ever ran), `link -> d/f` and `ld -> d`. The ground truth is cisaudit.host.events' own
trigger script (one access per permission class, each by its own process), plus the same
accesses through the 32-bit syscall ABI by selftests/integration/access32.c.
"""

from __future__ import annotations

import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cisaudit.host import probe
from cisaudit.host.events import recorded, render_script
from cisaudit.model.catalogue import Control
from cisaudit.model.decisions import Accesses, Trigger
from cisaudit.model.evaluate import Assessment

KEY = "docker"
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


def ground_truth(control: Control, tmp: Path, access32: Path | None) -> dict[Trigger, list[str]]:
    """Each access the control requires (native, and b32 where possible) and its events with KEY."""
    subtree = control.style == "watch" and Path(control.path).is_dir()
    paths = [control.path] + ([f"{control.path}/f"] if subtree else [])
    extra = (
        "".join(f"{access32} {c} {p} & spawned {c}/b32 {p}\n" for p in paths for c in control.required_perms)
        if access32
        else ""
    )
    script = render_script([Accesses(control.path, control.required_perms, subtree)], KEY, timeout=5, extra=extra)
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, cwd=tmp).stdout
    assert not (tmp / "ran").exists(), "an execute trigger ran the program"
    return recorded(out)


def truth_table(truth: dict[Trigger, list[str]], tmp: str) -> str:
    return ", ".join(
        f"{t.path.replace(tmp, '{T}')} {t.label}:{'yes' if events else 'no'}" for t, events in truth.items()
    )
