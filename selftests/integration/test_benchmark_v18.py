"""CIS Docker Benchmark v1.8.0 on this machine's real kernel (docs/benchmarks.md).

1.1.5's exclusions (`-a exit,never -F dir=DATAROOT/volumes`, `.../overlay2`) do what the
benchmark intends only where the kernel's first-match order lets them: each rule state below is
loaded into the real kernel, one harmless access per permission class is made to the data-root
and below each excluded directory, and `ausearch -k docker` says which were recorded. The suite's
verdict must be exactly that: PASS when every data-root access is recorded and none below an
exclusion. Then the real suite with `--benchmark 1.8.0 --remediate` writes the exclusions before
the data-root rule, loads them in that order, the kernel proves it, and `--backout` undoes it.
"""

from __future__ import annotations

import dataclasses
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cisaudit.host import probe
from cisaudit.host.events import recorded, render_script
from cisaudit.model.catalogue import controls
from cisaudit.model.decisions import Accesses
from cisaudit.model.evaluate import Assessment
from cisaudit.model.locate import resolve
from cisaudit.model.plan import MANAGED_FILE
from selftests.kernel import KernelSandbox, sh
from selftests.locked_tmp import locked_tmpdir
from selftests.suite_runner import run_suite

pytestmark = pytest.mark.kernel
KEY = "docker"
V18 = {c.id: c for c in controls("1.8.0")}
NEVERS = ("-a exit,never -F dir={R}/volumes", "-a exit,never -F dir={R}/overlay2")
TREE = "-w {R} -k docker"
INODE = "-a exit,always -F path={R} -F perm=war -k docker"
CASES = {  # name: rules in load order
    "exclusions-before-the-watch": (*NEVERS, TREE),
    "exclusions-after-the-watch": (TREE, *NEVERS),
    "benchmark-text-order": (INODE, *NEVERS),
    "inode-rule-only": (INODE,),
    "tree-watch-no-exclusions": (TREE,),
    "exclusions-only": NEVERS,
}


@pytest.fixture
def data_root() -> Iterator[Path]:
    """A data-root with volumes/ and overlay2/, each holding a program that would leave `ran` if run."""
    root = locked_tmpdir("cisaudit-v18-") / "docker"
    for sub in ("volumes", "overlay2"):
        (root / sub).mkdir(parents=True)
        program = root / sub / "f"
        program.write_text(f"#!/bin/sh\n: > {root.parent}/ran\n")
        program.chmod(0o755)
    yield root
    shutil.rmtree(root.parent)


def suite_verdicts(root: Path) -> dict[str, str]:
    """v1.8.0 1.1.5 on `root`, from one real probe (Docker's own config on this machine ignored)."""
    control = dataclasses.replace(V18["1.1.5"], path=str(root), locate="file")
    script, nonce = probe.render_probe(controls("1.7.0"), [str(root), f"{root}/volumes", f"{root}/overlay2"])
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    snap = dataclasses.replace(probe.parse_probe(out, nonce, controls("1.7.0")), daemon_json=None, dockerd_args=[])
    assessment = Assessment(snap, KEY)
    return {check: assessment.control_verdict(control, check).status for check in ("live", "persisted")}


def kernel_truth(root: Path, excluded: tuple[str, ...] = ()) -> tuple[str, str]:
    """(pass/fail as the kernel recorded it, the table): every data-root access recorded with
    the key, and none below the excluded directories (default: volumes/ and overlay2/)."""
    excluded = excluded or (f"{root}/volumes", f"{root}/overlay2")
    checks = [Accesses(str(root), "rwa"), *(Accesses(e, "rwxa", subtree=True) for e in excluded)]
    out = subprocess.run(["sh", "-c", render_script(checks, KEY, timeout=5)], capture_output=True, text=True).stdout
    assert not (root.parent / "ran").exists(), "an execute trigger ran the program"
    truth = recorded(out)
    assert len(truth) == 3 + 2 * 8, truth
    on_root = [bool(events) for t, events in truth.items() if t.path == str(root)]
    below = [bool(events) for t, events in truth.items() if t.path != str(root)]
    table = ", ".join(f"{t.path.replace(str(root), '{R}')} {t.label}:{'yes' if e else 'no'}" for t, e in truth.items())
    return ("pass" if all(on_root) and not any(below) else "fail"), table


def load(kernel: KernelSandbox, rules: list[str]) -> None:
    kernel.kernel(*(shlex.join(rule.split()) for rule in rules))


@pytest.mark.parametrize("name", CASES)
def test_1_1_5_verdict_is_what_the_kernel_records(kernel: KernelSandbox, data_root: Path, name: str) -> None:
    rules = [r.replace("{R}", str(data_root)) for r in CASES[name]]
    load(kernel, rules)
    kernel_says, table = kernel_truth(data_root)
    expected = {"exclusions-before-the-watch": "pass", "benchmark-text-order": "pass", "inode-rule-only": "pass"}
    assert kernel_says == expected.get(name, "fail"), table  # the kernel's first-match order, measured
    assert suite_verdicts(data_root)["live"] == kernel_says, table
    listed = sh("auditctl -l").stdout
    sh("auditctl -D")
    kernel.write_rules_d("60-v18.rules", "".join(r + "\n" for r in rules))
    assert kernel.load().returncode == 0
    assert sh("auditctl -l").stdout == listed, "the rules file does not load the same kernel state"
    assert suite_verdicts(data_root) == {"live": kernel_says, "persisted": kernel_says}


# Docker's paths for the v1.8.0 run, created where the machine lacks them (removed afterwards);
# the data-root and its excluded directories are where this machine's Docker config puts them.
PRESENT = {"1.1.4": "/run/containerd", "1.1.6": "/etc/docker", "1.1.9": "/var/run/docker.sock"}
MANAGED = Path(MANAGED_FILE)


def _data_root_here() -> tuple[str, tuple[str, ...]]:
    script, nonce = probe.render_probe(controls("1.8.0"))
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    target = resolve(V18["1.1.5"], probe.parse_probe(out, nonce, controls("1.8.0")))
    return target.path, target.exclusions


def test_remediate_writes_the_exclusions_first_and_backout_undoes_them(kernel: KernelSandbox, tmp_path: Path) -> None:
    root, excluded = _data_root_here()
    for path in (*excluded, PRESENT["1.1.4"], PRESENT["1.1.6"]):
        kernel.make_path(path, "dir")
    for path in (*(f"{e}/cisaudit-v18-f" for e in excluded), PRESENT["1.1.9"]):
        kernel.make_path(path, "file")
    audit = run_suite(tmp_path / "audit", ["local://"], "--benchmark=1.8.0")
    for control in V18.values():
        for check in ("live", "persisted"):
            assert audit.verdict("local://", control.id, check) in ("fail", "not-applicable"), (control.id, check)
            if control.id in (*PRESENT, "1.1.5"):
                assert audit.verdict("local://", control.id, check) == "fail", (control.id, audit.output[-2000:])
    assert "/run/docker.sock" in audit.case("local://", "1.1.9", "live").audited
    assert audit.case("local://", "1.1.9", "live").benchmark == "CIS Docker Benchmark v1.8.0"

    fixed = run_suite(
        tmp_path / "fixed", ["local://"], "--benchmark=1.8.0", "--controls=1.1.4,1.1.5,1.1.6,1.1.9", "--remediate"
    )
    for cid in (*PRESENT, "1.1.5"):
        for check in ("live", "persisted"):
            assert fixed.verdict("local://", cid, check) == "pass", (cid, check, fixed.output[-3000:])
    assert fixed.verdict("local://", "host", "remediation") == "pass", fixed.output[-3000:]
    lines = [line for line in MANAGED.read_text().splitlines() if line.startswith("-")]
    own = lines.index(f"-a exit,always -F path={root} -F perm=war -k docker")
    assert [lines.index(f"-a exit,never -F dir={e}") for e in excluded] == [own - 2, own - 1], lines
    listing = sh("auditctl -l").stdout.splitlines()
    loaded = [listing.index(f"-a never,exit -S all -F dir={e}") for e in excluded]
    assert max(loaded) < listing.index(f"-w {root} -p rwa -k docker"), listing
    kernel_says, table = kernel_truth(Path(root), excluded)
    assert kernel_says == "pass", table

    undone = run_suite(tmp_path / "undone", ["local://"], "--benchmark=1.8.0", "--backout")
    assert undone.verdict("local://", "host", "backout") == "pass", undone.output[-3000:]
    assert not MANAGED.exists()
    assert sh("auditctl -l").stdout.strip() == "No rules"
