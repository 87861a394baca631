"""Issue 21: a local user (nobody, in selftests/attacker.py's sandbox) must not change a verdict or
get root to act for it, whatever it names its processes, puts in their argv or in files it owns.
Each test reproduces one measured attack against the real host-side scripts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from filelock import FileLock

from cisaudit.host import events, probe
from cisaudit.host.shell import compose
from cisaudit.model.catalogue import controls
from cisaudit.model.decisions import Accesses
from cisaudit.model.evaluate import Assessment
from cisaudit.model.locate import resolve
from cisaudit.model.snapshot import Snapshot
from cisaudit.model.verdict import HOST_CHECKS, Check, Status
from selftests.attacker import attacked

# A long-lived process whose argv is "NAME ARGS...": what `exec -a NAME` gives, with any bytes.
PROCESS = (
    "python3 -c 'import os, sys; os.execv(sys.executable, "
    '[sys.argv[1], "-c", "import time; time.sleep(600)", *sys.argv[2:]])\''
)
# The public marker, as any user reads it from the probe's /proc/PID/cmdline.
READ_MARKER = "M=$(sed -n 's/^M=.\\{0,1\\}\\(@@cisaudit-[0-9a-f]*\\).*/\\1/p' /tmp/.argv)\n"
NL = "nl='\n'\n"
LIVE = "-w /etc/docker -p wa -k docker"
# Sections a PASS needs: auditd running, audit enabled, the rule, root; and an arch to spot.
FORGED = (
    "x${nl}$M auditd-pid${nl}1${nl}$M auditctl-s 0${nl}enabled 1${nl}pid 1${nl}"
    f"$M auditctl-l 0${{nl}}{LIVE}${{nl}}$M uid${{nl}}0${{nl}}$M arch${{nl}}FORGED${{nl}}"
)


def probed(attacker: str, runs: int = 1) -> list[Snapshot]:
    script, nonce = probe.render_probe(controls("1.7.0"))
    result = attacked(script, attacker + "\ntouch /tmp/.ready\nsleep 600\n", runs=runs)
    return [probe.parse_probe(out, nonce, controls("1.7.0")) for out in result.outputs]


def verdicts(snap: Snapshot) -> dict[tuple[str, str], Status]:
    """Every host check's and every control's live and persisted verdict on this snapshot."""
    assessment = Assessment(snap, "docker")
    table = {("host", str(check)): assessment.host_verdict(check).status for check in HOST_CHECKS}
    for control in controls():
        for check in (Check.LIVE, Check.PERSISTED):
            table[(control.id, str(check))] = assessment.control_verdict(control, check).status
    return table


@pytest.fixture
def baseline() -> Iterator[dict[tuple[str, str], Status]]:
    """The verdicts in the sandbox with an attacker that does nothing. The kernel tests' lock is
    held for the whole test: no other test changes /etc/audit or the audited paths meanwhile."""
    with FileLock("/run/lock/cisaudit-selftest.lock"):
        [snap] = probed("")
        yield verdicts(snap)


def test_forged_sections_in_a_fake_dockerds_argv_change_nothing(baseline: dict[tuple[str, str], Status]) -> None:
    """21.1: a process named dockerd whose argv holds the marker and sections of its choosing
    (auditd running, audit enabled, the rules a PASS needs). Before: those sections overrode the
    real ones (28/28 PASS measured on a host with auditd stopped)."""
    attacker = f'{READ_MARKER}{NL}{PROCESS} dockerd "{FORGED}" &\n{PROCESS} dockerd "{FORGED}" &\nsleep 0.5\n'
    for snap in probed(attacker, runs=3):
        assert verdicts(snap) == baseline
        assert not snap.auditd_running
        assert LIVE not in snap.listing_text and "pid 1" not in snap.status_text and snap.arch != "FORGED"
        assert snap.dockerd_args == [] and len(snap.ignored_dockerd) == 2
        assert all(uid == "65534" for _, uid in snap.ignored_dockerd)


def test_a_users_process_named_auditd_is_not_auditd(baseline: dict[tuple[str, str], Status]) -> None:
    """21.2: `exec -a auditd sleep` made auditd-running PASS; the kernel's own auditd pid decides."""
    [snap] = probed(f"{PROCESS} auditd &\nsleep 0.3\n")
    assert verdicts(snap) == baseline
    assert not snap.auditd_running
    verdict = Assessment(snap, "docker").host_verdict(Check.AUDITD_RUNNING)
    assert verdict.status != Status.PASS  # ERROR here: audit netlink refuses a PID namespace (auditctl -s)


def test_a_users_dockerd_does_not_choose_the_data_root(baseline: dict[tuple[str, str], Status]) -> None:
    """21.3: `dockerd --data-root=/tmp/x` run by a user made 1.1.5 audit /tmp/x (a false PASS, and
    --remediate's target); only root's dockerd informs the model, and the evidence says why."""
    [snap] = probed(f"mkdir /tmp/x\n{PROCESS} dockerd --data-root=/tmp/x &\nsleep 0.3\n")
    assert verdicts(snap) == baseline
    control = next(c for c in controls() if c.id == "1.1.5")
    target = resolve(control, snap)
    assert target.path == "/var/lib/docker"
    assert "ignored a process named dockerd not run by root" in target.how and "uid 65534" in target.how


# The attacker swaps its own mode-4777 file and a symlink to root's secret, atomically, forever.
SWAPPER = """cd /tmp/evil
: > f
chmod 4777 f
ln -s /tmp/secret a
touch /tmp/.ready
exec python3 -c 'import ctypes
libc = ctypes.CDLL(None, use_errno=True)
while True:
    libc.renameat2(-100, b"a", -100, b"f", 2)'
"""


def test_verify_events_never_chmods_through_a_users_path() -> None:
    """21.4: stat -L then chmod on a path the user controls, both following symlinks: root's 0600
    file became 4777 after 4 runs. Now such a path is refused and never touched."""
    checks = [Accesses("/tmp/evil/f", "rwa")] * 8 + [Accesses("/tmp/evil", "rwa", subtree=True)]
    script = events.render_script(checks, "docker", timeout=0)
    setup = "printf s >/tmp/secret\nchmod 0600 /tmp/secret\nmkdir /tmp/evil\nchown nobody:nogroup /tmp/evil\n"
    result = attacked(script, SWAPPER, setup=setup, after="stat -c %a /tmp/secret\n", runs=5)
    assert result.after.strip() == "600"
    for out in result.outputs:
        triggers = events.recorded(out)
        assert {t.label for t in triggers} == {"refused"}, out[:500]


def test_remediation_sweeps_only_its_own_scratch_dirs() -> None:
    """21.16: root's `rm -rf` of a stale /tmp/cisaudit.<pid>.* took any user's directory of that
    name; only a real directory of root's own (a killed run's mktemp -d) is swept now."""
    script = compose({}, "common.sh") + "ca_setup\nca_finish ok 0\n"
    attacker = "mkdir /tmp/cisaudit.99999.x\n: >/tmp/cisaudit.99999.x/mine\nln -s /etc /tmp/cisaudit.99997.z\n"
    after = "ls -d /tmp/cisaudit.99999.x/mine /tmp/cisaudit.99997.z /tmp/cisaudit.99998.y /etc/hostname 2>&1\n"
    result = attacked(script, attacker + "touch /tmp/.ready\n", setup="mkdir /tmp/cisaudit.99998.y\n", after=after)
    assert result.codes == [0], result.errors
    assert "/tmp/cisaudit.99999.x/mine\n" in result.after and "/tmp/cisaudit.99997.z\n" in result.after
    assert "cannot access '/tmp/cisaudit.99998.y'" in result.after  # a killed run's own: swept
