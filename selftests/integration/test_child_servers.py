"""The servers a test session starts (moto's S3, the throwaway sshd) end with it, even when it is
killed and no `with` exit runs (selftests/child.py): a CI session killed at its time limit used to
leave moto.server running on the machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from selftests.suite_runner import REPO

CHILD = """
import sys, time
from pathlib import Path
from selftests.s3_store import MotoS3
from selftests.sshd import throwaway_sshd
with MotoS3("child-bucket") as s3, throwaway_sshd(Path(sys.argv[1])) as sshd:
    print(s3._proc.pid, sshd.pid, flush=True)
    time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie has ended: only its parent has not reaped it
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_killed_session_takes_its_servers_with_it(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", CHILD, str(tmp_path)]  # tmp_path: the files its sshd leaves
    child = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()  # type: ignore[union-attr]
        pids = [int(p) for p in line.split()]
        assert len(pids) == 2 and all(map(_alive, pids)), f"servers did not start: {line!r}"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    deadline = time.monotonic() + 10
    while any(map(_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in pids if _alive(pid)]
    for pid in left:  # do not leave them to the next test either
        os.kill(pid, signal.SIGKILL)
    assert not left, f"still running after their session was killed: {left} (moto.server, sshd)"
