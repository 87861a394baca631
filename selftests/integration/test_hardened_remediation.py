"""Remediation on a CIS-hardened host, on this machine's real kernel.

The CIS Linux benchmark's own rules (selftests/rulesets/cis-ubuntu22-ansible-lockdown.rules, the
ansible-lockdown role's 99_auditd.rules without its `-e 2`, which this shared kernel must never
load) come first in the exit list and take an unprivileged user's chmod of Docker's files (key
perm_mod) and failed writes to them (key access). The kernel itself shows it: each access is made
by a process with login uid 1000, and `ausearch --input-logs -p PID` says which key its event
carries. Then the real suite's `--remediate` must make every selected control pass, the same
accesses must carry `docker`, the plan must name the keys that change, `augenrules --load` (what
the boot runs) must load exactly the live list, and `--backout` must restore the files byte for
byte and the kernel's list in order.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import pytest

from selftests.kernel import AUDIT_DIR, KernelSandbox, sh
from selftests.suite_runner import SuiteRun, require, run_suite

pytestmark = pytest.mark.kernel
RULESET = Path(__file__).resolve().parents[1] / "rulesets" / "cis-ubuntu22-ansible-lockdown.rules"
CONTROLS = {"1.1.6": "/etc/docker", "1.1.10": "/etc/default/docker", "1.1.12": "/etc/containerd/config.toml"}
KINDS = {"/etc/docker": "dir", "/etc/default/docker": "file", "/etc/containerd/config.toml": "file"}
# (what, shell command run as uid 1000 with login uid 1000 (each fails: root's files), the path
# its event names (or names something below), the CIS rule's key before the remediation)
ACCESSES = [
    ("chmod", "exec chmod 0644 /etc/default/docker", "/etc/default/docker", "perm_mod"),
    ("failed write", ": >> /etc/default/docker", "/etc/default/docker", "access"),
    ("chmod dir", "exec chmod 0755 /etc/docker", "/etc/docker", "perm_mod"),
    ("failed create", ": > /etc/docker/cisaudit-hardened", "/etc/docker", "access"),
    ("chown", "exec chown 1000 /etc/containerd/config.toml", "/etc/containerd/config.toml", "perm_mod"),
]


def as_user(command: str) -> int:
    """Run command as uid/gid 1000 with login uid 1000 (the CIS rules want auid>=1000); its pid."""
    script = (
        "echo $$; echo 1000 > /proc/self/loginuid && "
        f'exec setpriv --reuid=1000 --regid=1000 --clear-groups -- sh -c "{command}" 2>/dev/null'
    )
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
    return int(done.stdout.split()[0])


def key_of(pid: int, name: str, since: str, timeout: float = 10.0) -> str:
    """The key of the event of process pid naming path name, logged since `since` (HH:MM:SS, so an
    earlier process with a reused pid is never read), as auditd logged it ("" if none)."""
    deadline = time.monotonic() + timeout
    while True:
        out = sh(f"ausearch --input-logs -ts {since} -p {pid} --raw", check=False).stdout
        for event in out.split("type=SYSCALL")[1:]:
            if f'name="{name}' in event:
                return event.split(" key=", 1)[1].split()[0].strip('"') if " key=" in event else ""
        if time.monotonic() > deadline:
            return ""
        time.sleep(0.3)


def keys_now() -> dict[str, str]:
    found = {}
    for what, command, name, _ in ACCESSES:
        since = time.strftime("%H:%M:%S")
        found[what] = key_of(as_user(command), name, since)
    return found


def files_now() -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(AUDIT_DIR.rglob("*")) if p.is_file()}


def listing() -> list[str]:
    return sh("auditctl -l").stdout.splitlines()


def verdicts(run: SuiteRun) -> dict[tuple[str, str], str]:
    return {(cid, check): run.verdict("local://", cid, check) for cid in CONTROLS for check in ("live", "persisted")}


@pytest.fixture
def hardened(kernel: KernelSandbox) -> KernelSandbox:
    require(sh("command -v setpriv ausearch", check=False).returncode == 0, "needs setpriv and ausearch")
    for path, kind in KINDS.items():
        kernel.make_path(path, kind)
    kernel.make_path("/etc/security", "dir")  # the ruleset watches /etc/security/opasswd
    rules = RULESET.read_text()
    assert rules.rstrip().endswith("\n-e 2")
    kernel.write_rules_d("99_auditd.rules", rules.rstrip()[: -len("-e 2")])  # never -e 2 on this kernel
    loaded = kernel.load()
    assert loaded.returncode == 0 and "error" not in loaded.stderr.lower(), loaded.stderr
    assert any("-k perm_mod" in line or "key=perm_mod" in line for line in listing()), listing()
    return kernel


def test_remediation_goes_before_cis_rules_and_backs_out_exactly(hardened: KernelSandbox, tmp_path: Path) -> None:
    selected = f"--controls={','.join(CONTROLS)}"
    want_before = {what: key for what, _, _, key in ACCESSES}
    assert keys_now() == want_before, "the CIS rules do not take these accesses on this kernel"
    audit = run_suite(tmp_path / "audit", ["local://"], selected)
    assert set(verdicts(audit).values()) == {"fail"}, audit.output[-3000:]
    files_before, kernel_before = files_now(), listing()

    fixed = run_suite(tmp_path / "fixed", ["local://"], selected, "--remediate")
    remediation = fixed.case("local://", "host", "remediation")
    assert remediation.verdict == "pass", remediation.summary + remediation.evidence
    assert set(verdicts(fixed).values()) == {"pass"}, fixed.output[-3000:]
    for key in ("perm_mod", "access"):
        assert f"key {key}, from `-a always,exit -F arch=b64 -S " in remediation.summary, remediation.summary
    assert "now carry the key 'docker' instead of theirs" in remediation.summary
    assert keys_now() == dict.fromkeys(want_before, "docker"), "the kernel still gives these accesses other keys"
    live = listing()
    assert live[len(live) - len(kernel_before) :] == kernel_before, "a rule the tool did not write moved"
    assert sh("augenrules --load", check=False).returncode == 0  # what the boot runs
    assert listing() == live, "the boot-time load would not put the rules where they are live"

    undone = run_suite(tmp_path / "undone", ["local://"], "--backout")
    assert undone.verdict("local://", "host", "backout") == "pass", undone.output[-3000:]
    assert files_now() == files_before and listing() == kernel_before
