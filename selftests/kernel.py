"""This machine's real audit subsystem as a test bed, put back as it was afterwards.

Saves /etc/audit's rules files byte for byte and the kernel's rule list, starts auditd if it
is not running, and on exit restores the files, reloads the saved rules and stops what it
started. Paths it creates for Docker's files are removed again.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

AUDIT_DIR = Path("/etc/audit")
UNIT_OVERRIDE = Path("/etc/systemd/system/auditd.service")
T = TypeVar("T")
SETTINGS = {"-r": "rate_limit", "-b": "backlog_limit", "--backlog_wait_time": "backlog_wait_time"}


def sh(command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(command, shell=True, capture_output=True, text=True, check=check)


def audit_status() -> dict[str, str]:
    """`auditctl -s` as a dict (enabled, pid, ...)."""
    return dict(line.split(None, 1) for line in sh("auditctl -s").stdout.splitlines() if " " in line)


def _registered_auditd_pid() -> int:
    """The pid the kernel sends events to (0: none). `pidof` is not enough: an auditd that is
    still shutting down after SIGTERM is listed there but no longer receives events."""
    return int(audit_status()["pid"])


def _alive(pid: int) -> bool:
    try:  # a zombie has exited too; field 3 of /proc/PID/stat is the state
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_until(condition: Callable[[], T], what: str, timeout: float = 15.0) -> T:
    """The condition's first true value, polled until the timeout."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting until {what}")
        time.sleep(0.05)
    return value


class KernelSandbox:
    def __init__(self) -> None:
        self.files = {p: p.read_bytes() for p in self._tracked()}
        self.rules = sh("auditctl -l").stdout
        self.unit_override = UNIT_OVERRIDE.read_bytes() if UNIT_OVERRIDE.exists() else None
        self.created: list[Path] = []
        # Starting auditd enables audit (and stopping it leaves it enabled); tests may run -e 0.
        self.enabled = audit_status()["enabled"]
        # Rules files may set -r, -b and --backlog_wait_time (a rate limit drops events for everyone).
        self.settings = {name: audit_status()[name] for name in SETTINGS.values()}
        self.started_auditd = 0
        if not _registered_auditd_pid():
            sh("auditd")
            self.started_auditd = _wait_until(_registered_auditd_pid, "auditd registered with the kernel")

    @staticmethod
    def _tracked() -> list[Path]:
        # augenrules --load also leaves audit.rules.prev behind.
        top = [p for p in (AUDIT_DIR / "audit.rules", AUDIT_DIR / "audit.rules.prev") if p.exists()]
        return top + sorted((AUDIT_DIR / "rules.d").glob("*"))

    def make_path(self, path: str, kind: str = "dir", target: str = "") -> None:
        """Create a Docker path for the test if the machine lacks it (removed on restore);
        kind "symlink" points it at `target`."""
        p = Path(path)
        if p.exists() or p.is_symlink():
            return
        missing = [q for q in [p, *p.parents] if not q.exists()]
        if kind == "dir":
            p.mkdir(parents=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            if kind == "symlink":
                p.symlink_to(target)
            else:
                p.write_text("")
        self.created.extend(missing)

    def write_rules_d(self, name: str, text: str) -> None:
        path = AUDIT_DIR / "rules.d" / name
        path.write_text(text)
        path.chmod(0o600)

    def load(self) -> subprocess.CompletedProcess:
        return sh("augenrules --load", check=False)

    def kernel(self, *rules: str) -> None:
        for rule in rules:
            sh(f"auditctl {rule}")

    def use_auditctl_loader(self) -> None:
        """Make the host's auditd unit load /etc/audit/audit.rules directly (no augenrules)."""
        UNIT_OVERRIDE.write_text(
            "[Service]\nExecStart=/sbin/auditd\nExecStartPost=-/sbin/auditctl -R /etc/audit/audit.rules\n"
        )

    def restore(self) -> None:
        for path in self._tracked():
            if path not in self.files:
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        for path, data in self.files.items():
            path.write_bytes(data)
        if self.unit_override is None:
            UNIT_OVERRIDE.unlink(missing_ok=True)
        else:
            UNIT_OVERRIDE.write_bytes(self.unit_override)
        sh("auditctl -D")
        # Reload what was listed before. (A `never` watch lists like an `always` one; the
        # machines this runs on start with no rules, which reload exactly.)
        with tempfile.NamedTemporaryFile("w", suffix=".rules") as saved:
            saved.write(self.rules.replace("No rules", ""))
            saved.flush()
            sh(f"auditctl -c -R {saved.name}", check=False)
        assert sh("auditctl -l").stdout == self.rules, "kernel rules not restored"
        for path in sorted(self.created, key=lambda p: len(p.parts), reverse=True):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if self.started_auditd:
            os.kill(self.started_auditd, signal.SIGTERM)
            # The next test must not find this auditd half-stopped (see _registered_auditd_pid).
            _wait_until(lambda: not _alive(self.started_auditd), "auditd exited")
        for option, name in SETTINGS.items():
            sh(f"auditctl {option} {self.settings[name]}", check=False)
        if self.enabled in ("0", "1"):  # never 2: immutable would lock every later test out
            sh(f"auditctl -e {self.enabled}")
