"""The probe's systemd branch on this machine (no systemd here: a private mount namespace gives it
/run/systemd/system, and a fake systemctl first on PATH answers as systemd 252 does; the QEMU
test VMs run the real one). One `systemctl show` for every unit: auditd's unit is the text of its
fragment and drop-ins in systemd's order (a drop-in name with a blank quoted, as systemd quotes
it), a masked unit is what `systemctl cat` prints for it, and the socket's drop-in moves the path
the probe stats."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

from cisaudit.host import probe
from cisaudit.model.catalogue import controls
from cisaudit.model.loader import Loader, loader_mode
from cisaudit.model.snapshot import Snapshot
from selftests.suite_runner import require

V18 = controls("1.8.0")  # docker.socket is a SOCKETS name (its ListenStream=), docker.service a unit
# systemctl show NAME...: a block per name, from $FAKE_SYSTEMD/NAME, else systemd's for a unit it
# cannot find; every call is logged.
FAKE_SYSTEMCTL = """#!/bin/sh
printf '%s\\n' "$*" >>"$FAKE_SYSTEMD/calls"
[ "$1" = show ] || exit 1
shift
sep=''
while [ $# -gt 0 ]; do
  case $1 in -p) shift 2; continue ;; esac
  printf '%s' "$sep"; sep='
'
  if [ -f "$FAKE_SYSTEMD/$1" ]; then while IFS= read -r l; do printf '%s\\n' "$l"; done <"$FAKE_SYSTEMD/$1"
  else printf 'Names=%s\\nLoadState=not-found\\nUnitFileState=\\nFragmentPath=\\nDropInPaths=\\n' "$1"; fi
  shift
done
"""


def _probe_with_systemd(fake: Path, trace: list[str] | None = None) -> tuple[Snapshot, list[str]]:
    """The real probe where /run/systemd/system exists and systemctl is the fake (no process of
    its own but itself); its snapshot and the fake's calls. `trace`: the command it runs under."""
    require(shutil.which("unshare") is not None, "needs unshare (util-linux)")
    bin_dir = fake / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(FAKE_SYSTEMCTL)
    (bin_dir / "systemctl").chmod(0o755)
    script, nonce = probe.render_probe(V18)
    run_dir = "/run/systemd" if Path("/run/systemd").is_dir() else "/run"
    wrapper = (
        f"mount --make-rprivate / && mount -t tmpfs tmpfs {run_dir} && mkdir -p /run/systemd/system || exit 9\n"
        f'PATH={shlex.quote(str(bin_dir))}:$PATH FAKE_SYSTEMD={shlex.quote(str(fake))} exec sh -c "$1"\n'
    )
    run = subprocess.run(
        [*(trace or []), "unshare", "-m", "sh", "-c", wrapper, "_", script], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    return probe.parse_probe(run.stdout, nonce, V18), (fake / "calls").read_text().splitlines()


def _unit(fake: Path, name: str, state: str, files: list[Path], load: str = "loaded") -> None:
    drop_ins = " ".join(f'"{f}"' if " " in str(f) else str(f) for f in files[1:])
    (fake / name).write_text(
        f"Names={name}\nLoadState={load}\nFragmentPath={files[0] if files else ''}\n"
        f"DropInPaths={drop_ins}\nUnitFileState={state}\n"
    )


def test_one_systemctl_gives_the_units_their_drop_ins_in_order_and_the_sockets_path(tmp_path: Path) -> None:
    fake = tmp_path / "fake"
    fake.mkdir()
    units = tmp_path / "units"
    (units / "auditd.service.d").mkdir(parents=True)
    auditd = units / "auditd.service"
    auditd.write_text("[Service]\nExecStartPost=-/sbin/augenrules --load\n")
    (units / "auditd.service.d/a.conf").write_text("[Unit]\nDescription=first\n")
    spaced = units / "auditd.service.d/my drop.conf"  # quoted by systemd, read as one path
    spaced.write_text("[Service]\nExecStartPost=\nExecStartPost=-/sbin/auditctl -R /etc/audit/audit.rules\n")
    _unit(fake, "auditd.service", "disabled", [auditd, units / "auditd.service.d/a.conf", spaced])
    socket = units / "docker.socket"
    socket.write_text("[Socket]\nListenStream=/run/docker.sock\n")
    moved = tmp_path / "sock" / "docker.sock"
    (units / "moved.conf").write_text(f"[Socket]\nListenStream=\nListenStream={moved}\n")
    _unit(fake, "docker.socket", "enabled", [socket, units / "moved.conf"])
    _unit(fake, "docker.service", "enabled", [units / "docker.service"])

    snap, calls = _probe_with_systemd(fake)
    assert len(calls) == 1 and calls[0].startswith("show "), calls
    assert snap.systemd and snap.auditd_enabled == "disabled" and not snap.unreadable
    assert snap.auditd_unit == "\n".join(f.read_text() for f in (auditd, units / "auditd.service.d/a.conf", spaced))
    assert loader_mode(snap).loader is Loader.AUDITCTL  # the spaced drop-in, last, reset ExecStartPost
    assert snap.audit_rules_unit == ""  # audit 3: no such unit
    assert f"ListenStream={moved}" in snap.socket_units["docker.socket"]
    assert str(moved) in snap.paths and str(moved.parent) in snap.paths  # stat'ed, with its parent
    assert snap.units == {"docker.service": str(units / "docker.service")}


def test_a_masked_auditd_is_what_systemctl_cat_prints_and_its_files_are_not_read(tmp_path: Path) -> None:
    fake = tmp_path / "fake"
    fake.mkdir()
    gone = tmp_path / "absent.conf"  # named by systemd, never read: masked
    _unit(fake, "auditd.service", "masked", [tmp_path / "auditd.service", gone], load="masked")
    snap, calls = _probe_with_systemd(fake)
    assert len(calls) == 1
    assert snap.auditd_unit == "# Unit auditd.service is masked." and snap.auditd_enabled == "masked"
    assert not snap.unreadable
    assert loader_mode(snap).loader is Loader.NONE


# A fork counts when it returned a child's pid, whole or resumed (test_remediation_scripts' FORK).
FORK = re.compile(r"^\d+ +(?:<\.\.\. (?:clone3?|v?fork) resumed>|(?:clone3?|v?fork)\().*= [1-9]\d*$", re.M)


# An exec that reads /proc/PID/...: the probe's checks of a live daemon (auditd, dockerd, containerd),
# as many as this machine happens to run (a kernel test's auditd, an installed Docker).
PER_DAEMON = re.compile(r'^\d+ +execve\("[^"]*", \[[^]]*"/proc/\d+/', re.M)


def test_the_probe_starts_few_processes(tmp_path: Path) -> None:
    """Under TCG a process costs a guest about 25 ms of CPU, and more on a host with thousands of
    rules (each exec's failed lookups walk them): in a test VM (systemd, docker running) the probe
    started 128 processes, now 89; 110 and 72 where docker is stopped. Here, with systemd faked
    (the namespace's own 3 and the fake's 1 included), but for the checks of whatever daemons
    this machine runs: 87 before, 54 now."""
    require(shutil.which("strace") is not None, "needs strace (apt-get install strace)")
    fake = tmp_path / "fake"
    fake.mkdir()
    log = tmp_path / "strace"
    trace = ["strace", "-f", "-qq", "-e", "trace=clone,clone3,fork,vfork,execve", "-o", str(log)]
    snap, _ = _probe_with_systemd(fake, trace)
    events = log.read_text()
    started, per_daemon = len(FORK.findall(events)), len(PER_DAEMON.findall(events))
    print(f"processes: {started}, {per_daemon} of them checking live daemons")
    assert snap.systemd and started - per_daemon <= 58, (started, per_daemon)
