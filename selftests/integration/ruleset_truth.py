"""Kernel truth for real-world rule sets (selftests/rulesets): one set, installed the way a host
installs it, judged by the suite and by this machine's kernel. Run inside the mount namespace of
selftests/docker_root.py (Docker's files over /usr and /etc, /etc/audit private), as root, by the
kernel-truth test, which holds the kernel sandbox's lock and restores the kernel afterwards:

    python3 -m selftests.integration.ruleset_truth SET ACCESS32|- OUT.json

States, each judged `live` (the kernel now) and `persisted` (the kernel after a boot-like load):
- `benchmark`: the set in /etc/audit/rules.d, then `docker.rules` with the v1.7.0 catalogue's rules
  as the benchmark writes them (the benchmark's paths), loaded by `augenrules --load`;
- `remediated`: the set alone, loaded, then the suite's own `--remediate` (a pytest subprocess on
  local://, whatever the product's remediation does).
Truth: every access a control requires (events.py's trigger script plus `actor_lines`), by root,
root with a login uid and an unprivileged user, 64-bit and 32-bit, read back with
`ausearch --input-logs`. The boot-like load: /run/containerd (tmpfs, made by containerd) removed,
`systemd-tmpfiles --create` for it as systemd-tmpfiles-setup does before auditd, `auditctl -D` and
`augenrules --load`, then containerd's directory and socket made again.

Lines this machine must never load are taken out of the installed copy and listed in the output:
`-e 2` (immutable until reboot: it would lock every later test out) and `--loginuid-immutable`
(the harness sets login uids).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cisaudit.host.events import recorded, render_script
from cisaudit.host.session import HostSession
from cisaudit.host.transport import ConnectOptions
from cisaudit.model.catalogue import Control, controls
from cisaudit.model.decisions import accesses_of
from cisaudit.model.evaluate import Assessment
from cisaudit.model.kernel import FilterState, judge
from cisaudit.model.verdict import Status
from selftests.integration.kernel_truth import KEY, Actor, actor_lines
from selftests.suite_runner import REPO, parse_junit

RULESETS = REPO / "selftests" / "rulesets"
RULES_D = Path("/etc/audit/rules.d")
NEVER_LOAD = ("-e 2", "--loginuid-immutable")
CONTAINERD_DIR = Path("/run/containerd")
CONTAINERD_SOCK = CONTAINERD_DIR / "containerd.sock"
DAEMON_JSON = Path("/etc/docker/daemon.json")
# A private tmpfs each: /run as on a Debian host (so /run/containerd is absent at boot unless
# systemd-tmpfiles makes it; this machine's own /run is a plain directory), and remediation's
# journal (the caller makes /var/lib/cisaudit on the host and removes it afterwards).
PRIVATE = (Path("/run"), Path("/var/lib/cisaudit"))


def set_files(name: str) -> dict[str, str]:
    """The set's rules.d files in load order: a directory's files, or one file installed under the
    name its `## install-as:` header line gives (else its own name)."""
    path = RULESETS / name
    if path.is_dir():
        return {f.name: f.read_text() for f in sorted(path.glob("*.rules"))}
    text = (RULESETS / f"{name}.rules").read_text()
    names = [line.split()[2] for line in text.splitlines() if line.startswith("## install-as:")]
    install = names[0] if names else f"{name}.rules"
    return {install: text}


def strip_never_load(text: str) -> tuple[str, list[str]]:
    """The text with every line this machine must never load commented out, and those lines."""
    kept, dropped = [], []
    for line in text.splitlines(keepends=True):
        if line.strip() in NEVER_LOAD:
            dropped.append(line.strip())
            line = f"## not loaded by the kernel-truth test: {line}"
        kept.append(line)
    return "".join(kept), dropped


def install(files: dict[str, str]) -> list[str]:
    """rules.d holds exactly these files (mode 0600, as the tools install them)."""
    dropped: list[str] = []
    for old in RULES_D.glob("*"):
        old.unlink()
    for name, text in files.items():
        safe, lines = strip_never_load(text)
        dropped += [f"{name}: {line}" for line in lines]
        (RULES_D / name).write_text(safe)
        (RULES_D / name).chmod(0o600)
    return dropped


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True)


def start_containerd() -> None:
    """What containerd does at start for the audited paths: its directory and its socket."""
    CONTAINERD_DIR.mkdir(mode=0o711, exist_ok=True)
    if not CONTAINERD_SOCK.exists():
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(CONTAINERD_SOCK))


def load() -> str:
    """An administrator's load on the running host (containerd up)."""
    start_containerd()
    run("auditctl", "-D")
    result = run("augenrules", "--load")
    return (result.stdout + result.stderr).strip()


def boot_load() -> str:
    """The load a boot makes: before containerd, after systemd-tmpfiles-setup."""
    shutil.rmtree(CONTAINERD_DIR, ignore_errors=True)
    run("systemd-tmpfiles", "--create", f"--prefix={CONTAINERD_DIR}")
    run("auditctl", "-D")
    result = run("augenrules", "--load")
    start_containerd()
    return (result.stdout + result.stderr).strip()


def assess() -> Assessment:
    return Assessment(HostSession("local://", ConnectOptions(), KEY, version="1.7.0").probe(), KEY)


def applicable(assessment: Assessment) -> list[Control]:
    return [c for c in controls() if assessment.target(c).exists]


def truth(assessment: Assessment, judged: list[Control], access32: Path | None) -> dict[str, dict[str, bool]]:
    """For each control: each access it requires (LABEL PATH) and whether the kernel recorded it
    with the key. One trigger script for every control (a round takes well under a second)."""
    checks = [accesses_of(assessment, c) for c in judged]
    paths = [(a.classes, a.path) for a in checks] + [
        (a.classes, f"{a.path}/{f.name}")
        for a in checks
        if a.subtree
        for f in sorted(Path(a.path).iterdir())[:1]
        if f.is_file() and not f.is_symlink()
    ]
    extra = actor_lines(paths, list(Actor), access32)
    script = render_script(checks, KEY, timeout=10, extra=extra)
    out = subprocess.run(
        ["sh", "-c", script], capture_output=True, text=True, env={**os.environ, "CISAUDIT_X": "e2big"}
    )
    found = recorded(out.stdout)
    result: dict[str, dict[str, bool]] = {}
    for control, check in zip(judged, checks, strict=True):
        mine = {
            f"{t.label} {t.path}": bool(events)
            for t, events in found.items()
            if t.path == check.path or (check.subtree and t.path.startswith(check.path + "/"))
        }
        result[control.id] = mine
    return result


def model_cells(assessment: Assessment, control: Control, state: FilterState) -> dict[str, str]:
    """The model's (permission/ABI) cells of a control: "ok", or the first rule it says takes them."""
    obj = assessment.audit_object(assessment.target(control))
    cells = judge(state, obj, control.required_perms, assessment.abis, KEY, assessment.snap.arch)
    return {
        f"{c.perm}/{c.abi}": "ok" if c.ok else (c.lost[0].rule.cite() if c.lost else "no rule records with the key")
        for c in cells
    }


def judge_state(access32: Path | None) -> dict[str, Any]:
    """The suite's verdicts now, the kernel's truth now, and the kernel's truth after a boot-like load."""
    mark = time.monotonic()
    assessment = assess()
    probe_seconds = time.monotonic() - mark
    judged = applicable(assessment)
    verdicts = {
        c.id: {check: assessment.control_verdict(c, check) for check in ("live", "persisted")} for c in controls()
    }
    mark = time.monotonic()
    live = truth(assessment, judged, access32)
    truth_seconds = time.monotonic() - mark
    listing = run("auditctl", "-l").stdout
    boot_out = boot_load()
    booted = truth(assessment, judged, access32)
    return {
        "controls": {
            c.id: {
                "verdict": {check: v.status.value for check, v in verdicts[c.id].items()},
                "summary": {check: v.summary for check, v in verdicts[c.id].items() if v.status != Status.PASS},
                "truth": {"live": live.get(c.id, {}), "persisted": booted.get(c.id, {})},
                "cells": {
                    "live": model_cells(assessment, c, assessment.live_state),
                    "persisted": model_cells(assessment, c, assessment.boot_state),
                }
                if c in judged
                else {},
            }
            for c in controls()
        },
        "listing_lines": len(listing.splitlines()),
        "seconds": {"probe": round(probe_seconds, 2), "truth": round(truth_seconds, 2)},
        "boot_load": boot_out[-2000:],
    }


def remediate() -> dict[str, Any]:
    """The suite's own --remediate on this host; what its JUnit says it did."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "--hosts=local://", "--remediate", "-q", "-p", "no:randomly",
             f"--junitxml={tmp}/junit.xml", f"--html={tmp}/report.html"],
            cwd=REPO, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        cases = parse_junit(Path(tmp) / "junit.xml") if (Path(tmp) / "junit.xml").exists() else {}
    change = next((c.change for c in cases.values() if c.change), "")
    return {
        "exit": proc.returncode,
        "change": change,
        "remediated": sorted({c.control_id for c in cases.values() if c.remediated}),
        "host checks": {c.check.value: f"{c.verdict}: {c.summary}" for c in cases.values() if c.control_id == "host"},
        "output": "" if cases else (proc.stdout + proc.stderr)[-3000:],
    }


def main(name: str, access32: Path | None, out: Path) -> None:
    for path in PRIVATE:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(path)], check=True)
    DAEMON_JSON.write_text("{}\n")  # so 1.1.11 has its object and 1.1.6's subtree a file
    files = set_files(name)
    benchmark = "".join(c.rule_text(c.path) + "\n" for c in controls())
    started = time.monotonic()
    dropped = install({**files, "docker.rules": benchmark})
    result: dict[str, Any] = {"set": name, "not_loaded": dropped, "load": {}, "b32": access32 is not None}
    result["load"]["benchmark"] = load()
    result["benchmark"] = judge_state(access32)
    mark = time.monotonic()
    install(files)
    result["load"]["remediated"] = load()
    result["remediation"] = remediate()
    result["remediation_seconds"] = round(time.monotonic() - mark, 1)
    result["remediated"] = judge_state(access32)
    result["seconds"] = round(time.monotonic() - started, 1)
    out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(sys.argv[1], None if sys.argv[2] == "-" else Path(sys.argv[2]), Path(sys.argv[3]))


AGREE, FALSE_PASS, FALSE_FAIL, NOT_APPLICABLE, ERROR = "agree", "false PASS", "false FAIL", "n/a", "error"
UNMET = "unmet"  # a FAIL the kernel cannot show here: every blamed rule has a condition no actor meets
# Conditions of real sets' rules that no access of the comparison meets: a process whose real and
# effective uids differ, an SELinux label, truncate(2), an O_CREAT open. test_kernel_truth.py's
# SPARED proves each one takes the accesses that do meet it, so a FAIL blamed only on such rules
# is the model's right answer that this comparison cannot see, not a false FAIL.
SPARED_CONDITION = re.compile(r"-C (uid!=euid|euid!=uid)|subj_\w+=|-S truncate,|a2&")


def compare_cells(result: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(state, control, check, cell, outcome, the rule the model blames) for every (permission,
    ABI) cell: finer than a verdict, so a wrong reason is seen where the verdict agrees by chance
    (another rule loses the same control's accesses for real). Host-wide losses (task, exclude
    rules, -e 0) are not in cells. Informational: the verdicts are the contract."""
    rows = []
    for state in ("benchmark", "remediated"):
        for cid, case in result[state]["controls"].items():
            for check, cells in case["cells"].items():
                seen = case["truth"][check]
                for cell, model in cells.items():
                    perm, abi = cell.split("/")
                    mine = [
                        ok for label, ok in seen.items() if label[0] == perm and ("/b32" in label) == (abi == "b32")
                    ]
                    kernel = bool(mine) and all(mine)
                    outcome = AGREE if (model == "ok") == kernel else FALSE_PASS if model == "ok" else FALSE_FAIL
                    rows.append((state, cid, check, cell, outcome, model))
    return rows


def expected_labels(perms: set[str], b32: bool) -> set[str]:
    """The labels of every access a control with these permission classes gets (each actor, each ABI)."""
    actors = [""] + [f"/{a.value}" for a in Actor if a is not Actor.ROOT]
    return {f"{p}{abi}{actor}" for p in perms for abi in ("", "/b32")[: 1 + b32] for actor in actors}


def compare(result: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(state, control, check, outcome, detail) for every case of a driver's result: the suite's
    verdict against the kernel's (PASS when every required access was recorded with the key)."""
    rows = []
    for state in ("benchmark", "remediated"):
        for cid, case in result[state]["controls"].items():
            for check in ("live", "persisted"):
                verdict, seen = case["verdict"][check], case["truth"][check]
                missed = sorted(label for label, ok in seen.items() if not ok)
                made = {label.split()[0] for label in seen}
                perms = {cell.split("/")[0] for cell in case["cells"].get(check, {})}
                if made != expected_labels(perms, result["b32"]) and seen:  # a lost announcement is no proof
                    rows.append((state, cid, check, ERROR, f"accesses made: {sorted(made)}"))
                    continue
                kernel = "pass" if seen and not missed else "fail"
                if verdict == Status.NOT_APPLICABLE and not seen:
                    outcome = NOT_APPLICABLE
                elif verdict not in (Status.PASS, Status.FAIL):
                    outcome = ERROR
                else:
                    outcome = AGREE if verdict == kernel else FALSE_PASS if verdict == Status.PASS else FALSE_FAIL
                blamed = [rule for rule in case["cells"].get(check, {}).values() if rule != "ok"]
                if outcome == FALSE_FAIL and blamed and all(SPARED_CONDITION.search(rule) for rule in blamed):
                    outcome = UNMET
                why = case["summary"].get(check, "")
                detail = f"kernel {kernel} (not recorded: {', '.join(missed[:6]) or 'none'}); suite {verdict}: {why}"
                rows.append((state, cid, check, outcome, detail[:600]))
    return rows
