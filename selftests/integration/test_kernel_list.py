"""Issue 26.1 on this machine's kernel: where the probe's reader reads the kernel's list whole, the
listing is rendered from it (cisaudit/model/kernel_list.py) and no `auditctl -l` runs. The rendered
listing must be what `auditctl -l` prints, line for line, for every collected real rule set
(selftests/rulesets, each loaded as it is, lines this kernel refuses skipped) and for adversarial
rules: both actions, every filter list, 32-bit arch, several keys, comparisons, errno and hex
arguments, a watch whose perm precedes its path, an unknown user's rule skipped. The names it prints
are libaudit's: the tables are checked against this machine's libaudit through ctypes."""

from __future__ import annotations

import ctypes
import ctypes.util
import shlex
import subprocess
from pathlib import Path

import pytest

from cisaudit.host import probe
from cisaudit.host.probe import kernel_rules_pl, kernel_rules_py
from cisaudit.model import auditctl_names as names
from cisaudit.model.catalogue import controls
from cisaudit.model.kernel_list import KERNEL_LIST, parse_kernel_list
from selftests.conftest import require
from selftests.kernel import KernelSandbox
from selftests.suite_runner import REPO

RULESETS = REPO / "selftests" / "rulesets"
SETS = sorted([*RULESETS.glob("*.rules"), *(d for d in RULESETS.iterdir() if d.is_dir())], key=lambda p: p.name)
NOT_RULES = ("-e", "-D", "-b", "-f", "-r", "-i", "-c", "--")  # control lines, and the `-c` we write first
ADVERSARIAL = [
    "-a always,exit -F perm=wa -F path=/etc/cisaudit-perm-first -k first",  # -p before -w, as auditctl prints it
    "-a never,exit -F dir=/var/tmp -F perm=rwxa",
    "-a always,exit -F arch=b32 -S open,openat,chmod -F path=/etc/cisaudit-32 -F exe=/usr/bin/cat -k k5 -k k6",
    "-a always,exit -F arch=b64 -S execve -F euid=0 -F auid!=-1 -F exit=-EACCES -F a0=0x10 -C uid!=euid -k k6",
    "-a always,exit -F arch=b64 -S openat -F a2&0100 -F success=0 -F exit=-1000 -F inode=4294967295 -F key=odd",
    "-a always,exit -F arch=b64 -S all -F auid>=1000 -F auid!=unset -F sessionid!=-1 -F uid<=10 -F gid>5",
    "-a task,never -F uid=4242",
    "-a always,exclude -F msgtype=CWD",
    "-a always,exclude -F msgtype!=9999",
    "-a never,filesystem -F fstype=tracefs",
    "-a always,user -F uid=0",
    "-w /etc/cisaudit-sp%ce -p rwxa",
]


def _libaudit() -> ctypes.CDLL:
    found = ctypes.util.find_library("audit")
    require(found is not None, "needs libaudit (apt-get install libaudit1)")
    lib = ctypes.CDLL(found)
    for name in ("audit_field_to_name", "audit_msg_type_to_name", "audit_errno_to_name", "audit_fstype_to_name"):
        getattr(lib, name).restype = ctypes.c_char_p
    lib.audit_operator_to_symbol.restype = ctypes.c_char_p
    return lib


def _named(function: object, numbers: range) -> dict[int, str]:
    found = ((n, function(n)) for n in numbers)  # type: ignore[operator]
    return {n: text.decode() for n, text in found if text}


def test_the_names_are_libaudits() -> None:
    lib = _libaudit()
    assert _named(lib.audit_field_to_name, range(300)) == names.FIELDS
    assert _named(lib.audit_msg_type_to_name, range(3000)) == names.MESSAGE_TYPES
    assert _named(lib.audit_errno_to_name, range(600)) == names.ERRNOS
    assert {n: lib.audit_fstype_to_name(n).decode() for n in names.FSTYPES} == names.FSTYPES
    assert {op: lib.audit_operator_to_symbol(op << 24).decode() for op in names.OPERATORS} == names.OPERATORS


def _tables() -> dict[str, str]:
    return {
        t: subprocess.run(["ausyscall", t, "--dump"], capture_output=True, text=True).stdout for t in ("x86_64", "i386")
    }


def _rules_of(path: Path) -> str:
    files = sorted(path.glob("*.rules")) if path.is_dir() else [path]
    lines = (line.strip() for f in files for line in f.read_text().splitlines())
    return "".join(f"{line}\n" for line in lines if line and not line.startswith(("#", *NOT_RULES)))


def _both(tmp_path: Path, rules: str) -> tuple[list[str], list[str]]:
    """(auditctl -l's lines, the rendered listing's) for `rules`, loaded by auditctl -R with -c
    (continue past a line this machine refuses: a path it lacks for -F dir=, a user it lacks)."""
    require(subprocess.run(["uname", "-m"], capture_output=True, text=True).stdout.strip() == "x86_64", "x86_64 only")
    subprocess.run(["auditctl", "-D"], check=True, capture_output=True)
    (tmp_path / "set.rules").write_text(f"-c\n{rules}")
    subprocess.run(["auditctl", "-R", str(tmp_path / "set.rules")], capture_output=True)
    listed = subprocess.run(["auditctl", "-l"], capture_output=True, text=True, check=True).stdout
    read = subprocess.run(["python3", "-I", "-S", "-c", kernel_rules_py()], capture_output=True, check=True).stdout
    perl = subprocess.run(["perl", "-e", kernel_rules_pl()], capture_output=True, check=True).stdout
    assert perl == read  # the two readers, byte for byte
    rules_read = parse_kernel_list(read.decode())
    assert rules_read is not None
    return listed.splitlines(), rules_read.listing(_tables(), "x86_64").splitlines()


@pytest.mark.parametrize("ruleset", SETS, ids=lambda p: p.name)
def test_the_rendered_listing_is_auditctls_for_a_real_rule_set(
    kernel: KernelSandbox, tmp_path: Path, ruleset: Path
) -> None:
    listed, rendered = _both(tmp_path, _rules_of(ruleset))
    assert len(listed) > 1 and rendered == listed


def test_the_rendered_listing_is_auditctls_for_adversarial_rules(kernel: KernelSandbox, tmp_path: Path) -> None:
    listed, rendered = _both(tmp_path, "".join(f"{r.replace('%ce', ' ace')}\n" for r in ADVERSARIAL))
    assert len(listed) == len(ADVERSARIAL) - 1  # the path with a blank is two words to auditctl -R
    assert rendered == listed


def test_the_probe_runs_no_auditctl_l_where_its_reader_reads_the_list(kernel: KernelSandbox, tmp_path: Path) -> None:
    """The real probe: its listing is the rendered one, it cites `kernel list`, and the syscall
    numbers of rules no rules file names are named (the probe fetched them)."""
    rule = "-a always,exit -F arch=b32 -S fchownat -F auid>=1000 -k cisaudit_names"
    subprocess.run(["auditctl", *shlex.split(rule)], check=True, capture_output=True)
    calls = tmp_path / "calls"
    fake = tmp_path / "auditctl"
    real = subprocess.run(["sh", "-c", "command -v auditctl"], capture_output=True, text=True).stdout.strip()
    fake.write_text(f'#!/bin/sh\necho "$*" >>{calls}\nexec {real} "$@"\n')
    fake.chmod(0o755)
    script, nonce = probe.render_probe(controls("1.7.0"))
    run = subprocess.run(
        ["sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": f"{tmp_path}:/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    assert run.returncode == 0, run.stderr
    snap = probe.parse_probe(run.stdout, nonce, controls("1.7.0"))
    assert "-l" not in calls.read_text().split()
    assert snap.listing_source == KERNEL_LIST and snap.listing_rc == 0
    assert snap.listing_text == subprocess.run([real, "-l"], capture_output=True, text=True).stdout
    assert "-S fchownat" in snap.listing_text
