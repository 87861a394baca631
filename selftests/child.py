"""Servers the selftests start die with the process that started them.

A harness killed by a signal it does not handle (SIGKILL, or SIGTERM while the QEMU fleet's handler
re-raises it: selftests/testhosts/fleet.py) runs no `with` exit, so QEMU, moto's server and the
throwaway sshd would outlive it and hold ports and memory on the next run. PR_SET_PDEATHSIG has the
kernel send SIGKILL when the thread that started the child ends (prctl(2)): start them from the
main thread."""

from __future__ import annotations

import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """A `preexec_fn` for subprocess.Popen (runs in the child before exec)."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
