"""Issue 21.7 on this machine's kernel: the probe reads the kernel's own rule list (which tells
`path=` from `dir=` and `always` from `never`, where `auditctl -l` cannot) with python3, or with
perl where python3 is missing (perl-base is Essential on Debian and Ubuntu). Both readers must
print the same section, byte for byte, for the same rules: every filter list, both actions, 32-bit
arch fields with syscalls, several string fields before the path (key, exe, a second key), a path
with a blank and a non-ASCII byte, and a `-w` loaded while its directory was absent (an inode watch
that `auditctl -l` prints like a tree watch)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

from filelock import FileLock

from cisaudit.host import probe
from cisaudit.host.probe import kernel_rules_pl, kernel_rules_py
from cisaudit.model.catalogue import controls
from cisaudit.model.kernel_list import parse_kernel_list
from cisaudit.model.loader import added_on_a_directory
from cisaudit.model.snapshot import Snapshot
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
    names = {reader: (tmp_path / f"{reader}.paths", tmp_path / f"{reader}.numbers") for reader in ("python3", "perl")}
    python = _read(["python3", "-c", kernel_rules_py(), *map(str, names["python3"])])  # as the probe sends them
    perl = _read(["perl", "-we", kernel_rules_pl(), *map(str, names["perl"])])  # as the probe sends it
    rules = parse_kernel_list(python.decode())
    assert rules is not None and len(rules.shapes) == len(_rules(tmp_path)) + 600, python  # every rule, and done
    assert perl == python
    # The names the probe stats and looks up: each path once (the odd one, with %XX, left out),
    # and the numbers of open, openat, chmod (i386) and execve (x86_64).
    (paths, numbers), (perl_paths, perl_numbers) = ([f.read_text() for f in pair] for pair in names.values())
    assert perl_paths == paths and perl_numbers == numbers
    assert paths.splitlines() == [f"{tmp_path}/{name}" for name in ("tree", "late", "file")] + [
        f"{tmp_path}/many{i}" for i in range(600)
    ]
    assert numbers.splitlines() == ["5", "15", "59", "295"], numbers
    watches = rules.watches()
    kinds = {(kind, path) for _, _, kind, path in watches}
    assert ("path", str(tmp_path / "sp ace\xe9")) in kinds
    assert ("dir", f"{tmp_path}/tree") in kinds and ("path", f"{tmp_path}/late") in kinds, kinds
    assert any(w[:3] == ("exit", "never", "path") for w in watches) and any(w[:2] == ("task", "never") for w in watches)


# perl's recv, 6 s late the first time: a guest under load, its reader's CPU given to others.
LATE_RECV = (
    "BEGIN { my $late; *CORE::GLOBAL::recv = sub { sleep 6 unless $late++; CORE::recv($_[0], $_[1], $_[2], $_[3]) } }"
)


def test_a_reader_slower_than_5_s_in_all_still_reads_the_whole_list(kernel: KernelSandbox, tmp_path: Path) -> None:
    """Its 5 s are for each receive, as the python3 reader's: on a loaded test VM with 5,000
    rules the perl reader's total alarm went off and the probe had no kernel list (watch kinds
    unknown, no count to check the listing against)."""
    subprocess.run(["auditctl", "-w", str(tmp_path), "-p", "wa", "-k", "late"], check=True, capture_output=True)
    perl = _read(["perl", "-we", LATE_RECV, "-e", kernel_rules_pl()])
    assert perl == _read(["python3", "-c", kernel_rules_py()]) and perl.endswith(b"done\n"), perl


STANDARD_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def _probe_hiding(hidden: list[str], extra: list[str], first: str = "") -> Snapshot:
    """The real probe in a private mount namespace where each of `hidden` (programs) is /dev/null,
    with `first` (a directory) before the standard PATH."""
    script, nonce = probe.render_probe(controls("1.7.0"), extra)
    where = [os.path.realpath(shutil.which(p, path=STANDARD_PATH) or p) for p in hidden]
    binds = "".join(f"mount --bind /dev/null {shlex.quote(w)}\n" for w in where)
    gone = "".join(f"! command -v {p} >/dev/null || exit 9\n" for p in hidden)
    path = f"{first}:{STANDARD_PATH}" if first else STANDARD_PATH
    wrapper = f'mount --make-rprivate /\n{binds}PATH={path}\n{gone}exec sh -c "$1"\n'
    run = subprocess.run(
        ["unshare", "-m", "sh", "-c", wrapper, "_", script], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    return probe.parse_probe(run.stdout, nonce, controls("1.7.0"))


def test_the_probe_reads_watch_kinds_with_perl_or_birth_times_without_python3(
    kernel: KernelSandbox, tmp_path: Path
) -> None:
    """The probe as it runs on a host without python3 (perl reads the kernel's list), and without
    either (busybox): `-w LATE` loaded before LATE existed is a path= rule; a directory born after
    the boot is of unknown kind, one born before it a tree watch."""
    late = tmp_path / "late"
    for rule in (f"-w {late} -p wa -k cisaudit_birth", "-w /usr/share -p wa -k cisaudit_birth"):
        subprocess.run(["auditctl", *shlex.split(rule)], check=True, capture_output=True)
    late.mkdir()
    extra = [str(late), "/usr/share"]
    full = _probe_hiding([], extra)
    perl = _probe_hiding(["python3"], extra)
    assert full.kernel_rules and perl.kernel_rules == full.kernel_rules and perl.watch_births is None
    assert ("exit", "always", "path", str(late)) in perl.kernel_rules
    neither = _probe_hiding(["python3", "perl"], extra)
    assert neither.kernel_rules is None and neither.watch_births is not None and neither.boot_time
    assert neither.watch_births[str(late)] >= neither.boot_time
    assert added_on_a_directory(neither, str(late)) is None
    # On this machine every directory older than the boot reports birth 0 (unknown); on the test
    # VMs the image's directories have theirs (selftests/unit/test_unaudited.py has both cases).
    born = neither.watch_births["/usr/share"]
    assert added_on_a_directory(neither, "/usr/share") is (True if 0 < born < neither.boot_time else None)


def test_the_probe_stats_the_paths_and_names_the_syscalls_only_the_kernels_list_holds(
    kernel: KernelSandbox, tmp_path: Path
) -> None:
    """Rules loaded by hand (in no rules file): their paths are stat'ed and their syscalls named,
    from what the reader wrote (python3's, and perl's where python3 is missing), not from a pass
    over its lines in the probe's awk."""
    (tmp_path / "only").mkdir()
    for rule in (f"-w {tmp_path}/only -p wa -k by_hand", "-a always,exit -F arch=b64 -S sync -k by_hand"):
        subprocess.run(["auditctl", *shlex.split(rule)], check=True, capture_output=True)
    for hidden in ([], ["python3"]):
        snap = _probe_hiding(hidden, [])
        assert snap.paths[f"{tmp_path}/only"].kind == "dir" and snap.paths[str(tmp_path)].kind == "dir", hidden
        assert "162 sync" in snap.syscall_tables["x86_64"].splitlines(), hidden


def test_a_python3_first_on_the_callers_path_is_not_what_reads_the_kernels_list(tmp_path: Path) -> None:
    """Issue 26.1: the probe takes the system's python3 (-I -S) before one first on the caller's PATH
    (a pyenv shim there walked hundreds of absent paths, each dear on a host with thousands of rules).
    Read-only: the kernel's list is read, not changed."""
    shim, ran = tmp_path / "python3", tmp_path / "shim-ran"
    shim.write_text(f"#!/bin/sh\ntouch {ran}\nexit 1\n")
    shim.chmod(0o755)
    script, nonce = probe.render_probe(controls("1.7.0"))
    env = {"PATH": f"{tmp_path}:{STANDARD_PATH}", "PYTHONPATH": str(tmp_path)}
    run = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    assert probe.parse_probe(run.stdout, nonce, controls("1.7.0")).kernel_rules is not None
    assert not ran.exists()


def test_a_listing_auditctl_says_it_could_not_receive_is_asked_for_again(tmp_path: Path) -> None:
    """auditctl exits 0 with the rules it got when a receive fails ("Error receiving audit netlink
    packet", lib/netlink.c audit_get_reply; ENOBUFS with 5,000 rules on a test VM): the probe asks
    again, so the listing is whole instead of an ERROR (model/loader.py listing_shortfall).
    A fake auditctl first on PATH fails its first `-l` so; the real one answers the rest. Neither
    python3 nor perl runs (with a reader the probe runs no auditctl -l). Read-only."""
    real, calls = shutil.which("auditctl", path=STANDARD_PATH), tmp_path / "calls"
    assert real is not None
    fake = tmp_path / "auditctl"
    fake.write_text(
        f'#!/bin/sh\n[ "$1" = -l ] && echo l >>{calls} && [ "$(wc -l <{calls})" -eq 1 ] && {{\n'
        "  echo 'Error receiving audit netlink packet (No buffer space available)' >&2\n"
        "  echo '-w /etc/docker -p wa -k do'; exit 0\n}\n"
        f'exec {real} "$@"\n'
    )
    fake.chmod(0o755)
    with FileLock("/run/lock/cisaudit-selftest.lock"):  # no other session changes the rules meanwhile
        snap = _probe_hiding(["python3", "perl"], [], first=str(tmp_path))
        whole = subprocess.run([real, "-l"], capture_output=True, text=True)
    assert calls.read_text().count("l") == 2
    assert snap.listing_text.strip() == (whole.stdout + whole.stderr).strip()
