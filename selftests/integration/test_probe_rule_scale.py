"""Issue 26.1 on a test VM: what the probe does per rule, in counts rather than seconds (under TCG
a fork costs a guest about 20 ms, and every step over the rules is slow; bench/guest_cost.py
--rules 16,5000 has the seconds). Each test failed on the probe before the change it names."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from cisaudit.host import probe
from cisaudit.host.probe import kernel_rules_pl
from cisaudit.model.catalogue import controls
from selftests.kernel import KernelSandbox
from selftests.suite_runner import require

STANDARD_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
RULES = 40


def _load(kernel: KernelSandbox, tmp_path: Path) -> list[str]:
    """RULES rules persisted and loaded: watches and per-binary syscall rules on absent paths."""
    rules = [
        f"-w {tmp_path}/w{i} -p wa -k scale"
        if i % 2
        else f"-a always,exit -F arch=b64 -S execve,openat -F path={tmp_path}/x{i} -F perm=x -k scale"
        for i in range(RULES)
    ]
    kernel.write_rules_d("60-scale.rules", "\n".join(rules) + "\n")
    loaded = kernel.load()
    assert loaded.returncode == 0, loaded.stderr
    return rules


def _probe(env: dict[str, str], strace: list[str] | None = None) -> str:
    script, nonce = probe.render_probe(controls("1.7.0"))
    run = subprocess.run([*(strace or []), "sh", "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    assert probe.parse_probe(run.stdout, nonce, controls("1.7.0")).listing_text
    return run.stdout


def test_the_pass_over_the_rules_writes_each_path_and_syscall_once(kernel: KernelSandbox, tmp_path: Path) -> None:
    """rules.d, augenrules' audit.rules (the same lines) and the listing name each path up to three
    times: the pass examines each distinct line once and writes each name once (it wrote each
    path three times here: 120 lines for 40 paths; the next steps read them all again)."""
    _load(kernel, tmp_path)
    logs, bin_dir = tmp_path / "logs", tmp_path / "bin"
    logs.mkdir()
    bin_dir.mkdir()
    real = shutil.which("awk", path=STANDARD_PATH)
    # The pass is the awk given P and S (its output files): keep a copy of what it wrote.
    (bin_dir / "awk").write_text(f'#!/bin/sh\n{real} "$@"; rc=$?\n[ -z "$P" ] || cp "$P" "$S" {logs}/\nexit $rc\n')
    (bin_dir / "awk").chmod(0o755)
    _probe({"PATH": f"{bin_dir}:{STANDARD_PATH}"})
    paths = (logs / "rule-paths").read_text().splitlines()
    syscalls = (logs / "rule-syscalls").read_text().splitlines()
    assert len(paths) == len(set(paths)) and len(syscalls) == len(set(syscalls))
    assert {f"{tmp_path}/w{i}" for i in range(1, RULES, 2)} | {f"{tmp_path}/x{i}" for i in range(0, RULES, 2)} <= set(
        paths
    )
    assert {"execve", "openat"} <= set(syscalls)


def test_the_probe_forks_little_while_it_holds_the_listing(kernel: KernelSandbox, tmp_path: Path) -> None:
    """Each fork of a shell holding a listing of thousands of rules costs a guest more (about 2 ms
    at 5,000 under TCG): the kernel's list is read after the other sections. Processes started
    after its reader (the shell's and its subshells'): 119 before, 47 then, 44 now that no
    auditctl -l runs (the pass over the rules, the stat of their paths, the syscall tables)."""
    require(shutil.which("strace") is not None, "needs strace (apt-get install strace)")
    _load(kernel, tmp_path)
    log = tmp_path / "strace"
    trace = ["strace", "-f", "-qq", "-e", "trace=clone,clone3,fork,vfork,execve", "-o", str(log)]
    _probe({"PATH": STANDARD_PATH}, trace)
    events = log.read_text().splitlines()
    reader = next(i for i, e in enumerate(events) if re.search(r'execve\("[^"]*python3", \[[^]]*"-I", "-S"', e))
    forks = [e for e in events[reader:] if re.search(r"\b(clone3?|v?fork)\(", e) and "resumed>" not in e]
    assert len(forks) <= 60, len(forks)


def test_the_perl_reader_unpacks_only_each_rules_own_fields(kernel: KernelSandbox, tmp_path: Path) -> None:
    """kernel_rules.pl unpacked all 64 fields and 64 values of every rule (a third of its CPU at
    5,000 rules under TCG); now the rule's own (its field count), with the same output (the
    readers' test compares it with python3's)."""
    rules = _load(kernel, tmp_path)
    # Count every value unpack returns (CORE::GLOBAL::unpack wraps the builtin for the reader).
    count = (
        "BEGIN { *CORE::GLOBAL::unpack = sub { my @r = CORE::unpack($_[0], $_[1]); $main::n += @r; "
        'wantarray ? @r : $r[0] } } END { print STDERR "unpacked $main::n\\n" }'
    )
    run = subprocess.run(["perl", "-e", count + kernel_rules_pl()], capture_output=True, text=True, timeout=30)
    lines = run.stdout.splitlines()
    assert run.returncode == 0 and lines[-1] == "done" and len(lines) == len(rules) + 1, run
    unpacked = int(re.search(r"unpacked (\d+)", run.stderr).group(1))  # type: ignore[union-attr]
    # A rule here has 4 fields or fewer: its header (3), fields, values and operators (12), its
    # mask's bits (1), and the netlink header of its message (2); 64 fields and values were 131 a
    # rule (5,365 in all here before).
    assert unpacked <= 20 * (len(rules) + 2), unpacked
