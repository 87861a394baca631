"""A local attacker next to the host-side scripts (issue 21; docs/threat-model.md).

`attacked()` runs a real host-side script (as cisaudit composes and sends it: pass the text
that host/shell.compose made) as root inside a private mount and PID namespace (`unshare
--mount --pid --fork --mount-proc`: its own /proc, and a fresh tmpfs on /tmp), with an attacker
already running there as `nobody` (`setpriv --reuid=nobody --regid=nogroup --clear-groups`):

1. `setup` runs as root (make the objects the attack needs);
2. the attacker's sh starts as nobody and touches /tmp/.ready when it is prepared; it can read
   /tmp/.argv, the script's text, which is what any user reads from the command's
   /proc/PID/cmdline (given ahead so that the test does not race the attacker's reading);
3. the script runs `runs` times, as root, each run's stdout, stderr and exit code kept;
4. `after` runs as root, its stdout kept (the state the attack may have changed).

The namespace keeps the attacker's processes (a fake dockerd, a fake auditd) out of every other
test's sight on this shared machine. Requires root, unshare and setpriv: `require()` fails under
CI=true rather than skipping. Audit netlink refuses a PID namespace other than the first
(auditctl -s fails there): the scripts see the kernel as an unprivileged container would.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from selftests.locked_tmp import locked_tmpdir
from selftests.suite_runner import require

DRIVER = r"""
set -u
W=$1
mount -t tmpfs -o mode=1777 cisaudit-attacker /tmp || exit 90
sh "$W/setup.sh" >"$W/setup.out" 2>&1 || exit 91
cp "$W/attacker.sh" /tmp/.attacker.sh && cp "$W/script.sh" /tmp/.argv && chmod 0644 /tmp/.attacker.sh /tmp/.argv
setpriv --reuid=nobody --regid=nogroup --clear-groups -- sh /tmp/.attacker.sh </dev/null >"$W/attacker.log" 2>&1 &
i=0
while [ ! -e /tmp/.ready ]; do
  i=$((i + 1)); [ "$i" -le 200 ] || exit 92
  sleep 0.05
done
script=$(cat "$W/script.sh")
n=0
while [ "$n" -lt "$RUNS" ]; do
  sh -c "$script" </dev/null >"$W/out.$n" 2>"$W/err.$n"
  echo "$?" >"$W/rc.$n"
  n=$((n + 1))
done
sh "$W/after.sh" >"$W/after.out" 2>&1
exit 0
"""


@dataclass(frozen=True)
class Attacked:
    outputs: list[str]  # stdout of each run
    errors: list[str]
    codes: list[int]
    after: str  # stdout of `after`
    attacker_log: str


def require_sandbox() -> None:
    require(os.geteuid() == 0, "the attacker sandbox needs root (unshare, setpriv)")
    require(bool(shutil.which("unshare") and shutil.which("setpriv")), "the attacker sandbox needs util-linux")
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        require(False, "the attacker sandbox runs its attacker as the user nobody")


def attacked(script: str, attacker: str, *, setup: str = "", after: str = "", runs: int = 1) -> Attacked:
    """Run `script` `runs` times as root next to `attacker` (sh run as nobody), as described above."""
    require_sandbox()
    work = locked_tmpdir("cisaudit-attacker-")  # outside /tmp: the namespace's /tmp is its own
    try:
        for name, text in (("script.sh", script), ("attacker.sh", attacker), ("setup.sh", setup), ("after.sh", after)):
            (work / name).write_text(text)
        proc = subprocess.run(
            ["unshare", "--mount", "--pid", "--fork", "--mount-proc", "sh", "-c", DRIVER, "driver", str(work)],
            env={**os.environ, "RUNS": str(runs)},
            capture_output=True,
            text=True,
            timeout=60 + 30 * runs,
        )
        log = _read(work / "attacker.log")
        assert proc.returncode == 0, (
            f"sandbox failed ({proc.returncode}): {proc.stderr}\nsetup: {_read(work / 'setup.out')}\nattacker: {log}"
        )
        return Attacked(
            [_read(work / f"out.{n}") for n in range(runs)],
            [_read(work / f"err.{n}") for n in range(runs)],
            [int(_read(work / f"rc.{n}")) for n in range(runs)],
            _read(work / "after.out"),
            log,
        )
    finally:
        shutil.rmtree(work)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
