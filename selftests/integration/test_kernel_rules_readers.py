"""Issue 21.7 on this machine's kernel: the probe reads the kernel's own rule list (which tells
`path=` from `dir=` and `always` from `never`, where `auditctl -l` cannot) with python3, or with
perl where python3 is missing (perl-base is Essential on Debian and Ubuntu). Both readers must
print the same section, byte for byte, for the same rules: every filter list, both actions, 32-bit
arch fields with syscalls, several string fields before the path (key, exe, a second key), a path
with a blank and a non-ASCII byte, and a `-w` loaded while its directory was absent (an inode watch
that `auditctl -l` prints like a tree watch)."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from cisaudit.host.probe import kernel_rules_pl, kernel_rules_py
from selftests.kernel import KernelSandbox


def _rules(base: Path) -> list[str]:
    odd = base / "sp ace\xe9"
    return [
        f"-w {base}/tree -p rwxa -k k1",
        f"-w {base}/late -p wa -k k2",  # absent when added: path=, an inode watch
        f"-w {base}/file -p r",
        f"-a exit,never -F path={base}/file -F perm=w",
        f"-a always,exit -F dir={base}/tree -F perm=a -F key=k3 -F key=k4",
        f"-a always,exit -F arch=b32 -S open,openat,chmod -F path={base}/file -F exe=/usr/bin/cat -k k5",
        "-a always,exit -F arch=b64 -S execve -F euid=0 -k k6",
        "-a task,never -F uid=4242",
        "-a always,exclude -F msgtype=CWD",
        f"-A always,exit -F {shlex.quote('path=' + str(odd))} -F perm=x",
    ]


def _read(command: list[str]) -> bytes:
    run = subprocess.run(command, capture_output=True, timeout=30)
    assert run.returncode == 0 and not run.stderr, run
    return run.stdout


def test_the_perl_reader_prints_what_the_python3_reader_prints(kernel: KernelSandbox, tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "file").write_text("x")
    (tmp_path / "sp ace\xe9").write_text("x")
    for rule in _rules(tmp_path):
        subprocess.run(["auditctl", *shlex.split(rule)], check=True, capture_output=True)
    many = tmp_path / "many.rules"  # the list comes in several netlink reads
    many.write_text("".join(f"-w {tmp_path}/many{i} -p wa -k many\n" for i in range(600)))
    subprocess.run(["auditctl", "-R", str(many)], check=True, capture_output=True)
    python = _read(["python3", "-c", kernel_rules_py()])  # as the probe sends them
    perl = _read(["perl", "-we", kernel_rules_pl()])  # as the probe sends it
    lines = python.decode().splitlines()
    assert len(lines) == len(_rules(tmp_path)) + 600 + 1, python  # every rule loaded (and done)
    assert perl == python
    kinds = {
        (w[2], bytes.fromhex(w[3]).decode(errors="replace")) for w in (l.split() for l in lines[:-1]) if w[3] != "-"
    }
    assert ("path", str(tmp_path / "sp ace\xe9")) in kinds
    assert ("dir", f"{tmp_path}/tree") in kinds and ("path", f"{tmp_path}/late") in kinds, lines
    assert any(l.startswith("exit never path ") for l in lines) and any(l.startswith("task never ") for l in lines)
