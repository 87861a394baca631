"""cisaudit/host/scripts/apply.sh and backout.sh, run under dash against THIS machine's real kernel.

Needs root, auditctl, augenrules and dash: skipped where missing, a failure under CI=true.
Each kernel test runs inside the `host` fixture, which
- holds an exclusive lock, so parallel workers never share the kernel at once;
- snapshots every file under /etc/audit (bytes, mode, owner) and `auditctl -l`, then puts the rules
  files in the known state every kernel test starts from (selftests.kernel.known_etc_audit);
- afterwards deletes the rules the test used by their exact text (`-W`/`-d`, never `-D`,
  never a reload of the listing: a `never` watch lists like an `always` one), restores
  /etc/audit, and asserts both match the snapshot again.
Rules only watch paths in a sandbox dir under /tmp; augenrules-mode tests write the real
/etc/audit/rules.d (augenrules reads no other dir), auditctl-mode tests a file in the sandbox.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cisaudit.host.remediation_io import (
    SCRIPT_DIR,
    RemediationResult,
    parse_result,
    render_apply,
    render_backout,
)
from cisaudit.model.catalogue import benchmark
from selftests.kernel import known_etc_audit
from selftests.suite_runner import require

REPO = Path(__file__).resolve().parents[2]

AUDIT_DIR = Path("/etc/audit")
TARGET = "/etc/audit/rules.d/50-cis-docker-selftest.rules"
AUDIT_RULES = AUDIT_DIR / "audit.rules"
TEST_LOCK = "/run/lock/cisaudit-selftest.lock"
BEGIN = b"## BEGIN cisaudit managed block"
END = b"## END cisaudit managed block\n"
BENCHMARK = benchmark("1.8.0")  # not the first version: the header must name the one passed


def _auditctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["auditctl", *args], capture_output=True, text=True, check=False)


def klist() -> list[str]:
    out = _auditctl("-l").stdout.splitlines()
    return [] if out == ["No rules"] else out


def sha(path: str | Path) -> str:
    p = Path(path)
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else "absent"


def _delete_args(rule: str) -> list[str]:
    """The exact-match delete for a rule line: -w -> -W, -a/-A -> -d."""
    words = rule.split()
    return ["-W" if words[0] == "-w" else "-d", *words[1:]]


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def result(self) -> RemediationResult:
        return parse_result(self.stdout)

    def __str__(self) -> str:
        return f"rc={self.rc}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"


@dataclass
class FileState:
    data: bytes
    mode: int
    uid: int
    gid: int


def snapshot_etc_audit() -> dict[str, FileState]:
    files = {}
    for root, _dirs, names in os.walk(AUDIT_DIR):
        for name in names:
            path = os.path.join(root, name)
            st = os.lstat(path)
            files[path] = FileState(Path(path).read_bytes(), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    return files


@dataclass
class Host:
    """The machine under test, and how to run the scripts on it."""

    sandbox: Path
    journal: Path
    rules_used: list[str] = field(default_factory=list)
    runs: list[tuple[str, float]] = field(default_factory=list)

    def dir(self, name: str) -> str:
        path = self.sandbox / name
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    def watch(self, name: str, key: str = "docker") -> str:
        return self.use(f"-w {self.dir(name)} -k {key}")

    def syscall_rule(self, name: str) -> str:
        return self.use(f"-a exit,always -F path={self.dir(name)} -F perm=war -k docker")

    def use(self, rule: str) -> str:
        self.rules_used.append(rule)
        return rule

    def hand_add(self, rule: str) -> None:
        """A rule someone added live by hand: not the tool's to remove."""
        self.use(rule)
        done = _auditctl(*rule.split())
        assert done.returncode == 0, done.stderr

    def env(self, extra: dict[str, str] | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CISAUDIT_")}
        env["CISAUDIT_LOCK_PATH"] = str(self.sandbox / "cisaudit.lock")
        env["TMPDIR"] = self.dir("tmp")  # scratch dirs, checked for leaks
        env.update(extra or {})
        return env

    def start(self, script: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["dash", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env(env)
        )

    def finish(self, proc: subprocess.Popen[str], started: float, what: str, timeout: float = 60) -> Run:
        out, err = proc.communicate(timeout=timeout)
        seconds = time.monotonic() - started
        self.runs.append((what, seconds))
        return Run(proc.returncode, out, err, seconds)

    def apply(
        self,
        rules: list[str],
        mode: str = "augenrules",
        target: str = TARGET,
        run_id: str | None = None,
        dry_run: bool = False,
        env: dict[str, str] | None = None,
    ) -> Run:
        script = render_apply(
            run_id or new_run_id(), mode, target, rules, dry_run, BENCHMARK, journal_root=str(self.journal)
        )
        return self.finish(self.start(script, env), time.monotonic(), f"apply {mode}")

    def start_apply(self, rules: list[str], target: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
        run_id = new_run_id()
        script = render_apply(run_id, "auditctl", target, rules, False, BENCHMARK, journal_root=str(self.journal))
        return self.start(script, env), run_id

    def backout(
        self, run_id: str | None = None, dry_run: bool = False, force: bool = False, env: dict[str, str] | None = None
    ) -> Run:
        script = render_backout(run_id, dry_run, journal_root=str(self.journal), force=force)
        return self.finish(self.start(script, env), time.monotonic(), "backout")

    def state(self, run_id: str) -> str:
        return (self.journal / run_id / "state").read_text().strip()

    def state_time(self, run_id: str, state: str) -> float:
        for line in (self.journal / run_id / "state.log").read_text().splitlines():
            _iso, epoch, name = line.split()
            if name == state:
                return float(epoch)
        raise AssertionError(f"{run_id} never reached {state}")

    def cleanup_kernel(self) -> None:
        for rule in reversed(self.rules_used):
            for _ in range(3):  # a rule can be live more than once only as never/always twins
                if _auditctl(*_delete_args(rule)).returncode != 0:
                    break


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-st" + uuid.uuid4().hex[:6]


@pytest.fixture
def host() -> Iterator[Host]:
    require(os.geteuid() == 0, "needs root to change the kernel's audit rules")
    for tool in ("auditctl", "augenrules", "dash"):
        require(shutil.which(tool) is not None, f"needs {tool} (apt-get install auditd dash)")
    require(_auditctl("-s").returncode == 0, "kernel audit subsystem not available")
    with open(TEST_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        files, rules = snapshot_etc_audit(), klist()
        known_etc_audit()
        sandbox = Path(tempfile.mkdtemp(prefix="cisaudit-st-", dir="/tmp"))
        h = Host(sandbox=sandbox, journal=sandbox / "journal")
        try:
            yield h
        finally:
            h.cleanup_kernel()
            restore_etc_audit(files)
            scratch = sorted(p.name for p in (sandbox / "tmp").glob("*"))
            shutil.rmtree(sandbox, ignore_errors=True)
            print("timings:", ", ".join(f"{what} {s:.3f}s" for what, s in h.runs))
            assert klist() == rules, "kernel rules not restored to the snapshot"
            assert snapshot_etc_audit() == files, "/etc/audit not restored to the snapshot"
            assert scratch == [], "the scripts left scratch dirs behind"


def restore_etc_audit(files: dict[str, FileState]) -> None:
    now = snapshot_etc_audit()
    for path in now.keys() - files.keys():
        os.unlink(path)
    for path, want in files.items():
        if now.get(path) != want:
            Path(path).write_bytes(want.data)
            os.chown(path, want.uid, want.gid)
            os.chmod(path, want.mode)


def files_state(*paths: str | Path) -> dict[str, tuple[str, int, int, int] | None]:
    """sha256, mode, uid and gid of each path (None: absent)."""
    state: dict[str, tuple[str, int, int, int] | None] = {}
    for path in map(Path, paths):
        st = path.stat() if path.exists() else None
        state[str(path)] = (sha(path), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) if st else None
    return state


AUGEN_FILES = (TARGET, AUDIT_RULES, f"{AUDIT_RULES}.prev")


def assert_ok(run: Run, status: str) -> None:
    assert run.result.status == status, str(run)
    assert run.rc == (1 if status in ("failed", "refused") else 2 if status == "mismatch" else 0), run


# ----------------------------------------------------------------- kernel tests

KERNEL = pytest.mark.kernel  # changes the real kernel rules and /etc/audit, restored after


@KERNEL
def test_augenrules_apply_then_backout_restores_files_and_kernel(host: Host) -> None:
    rules = [host.watch("etc/docker"), host.syscall_rule("run/containerd")]
    host.hand_add(f"-w {host.dir('site')} -p wa -k site")  # a rule already live: ours go before it
    files_before, kernel_before = files_state(*AUGEN_FILES), klist()

    run = host.apply(rules)
    assert_ok(run, "applied")
    assert run.result.added == rules
    assert run.result.fields["persisted"] == "2" and run.result.fields["loaded"] == "2"
    st = os.stat(TARGET)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, 0, 0)
    text = Path(TARGET).read_text()
    assert f"last changed by run {run.result.run_id} at " in text
    assert "(CIS Docker Benchmark v1.8.0 section 1.1)" in text.splitlines()[1]  # the version passed, not v1.7
    assert text.splitlines()[2:4] == rules
    merged = AUDIT_RULES.read_text().splitlines()
    assert all(rule in merged for rule in rules), merged
    # The kernel gained exactly the two canonical forms, at the head of the list in the plan's
    # order (the first matching rule gives an access its key); nothing else changed.
    assert klist() == [
        f"-w {host.sandbox}/etc/docker -p rwxa -k docker",
        f"-w {host.sandbox}/run/containerd -p rwa -k docker",
        *kernel_before,
    ]
    jdir = host.journal / run.result.run_id
    assert stat.S_IMODE(os.stat(jdir).st_mode) == 0o700
    assert host.state(run.result.run_id) == "done"
    assert (jdir / "rules.live-added").read_text().splitlines() == list(reversed(rules))  # load order
    assert [(jdir / f"files/{n}/path").read_text().strip() for n in (1, 2, 3)] == [str(p) for p in AUGEN_FILES]

    back = host.backout()
    assert_ok(back, "restored")
    assert back.result.run_id == run.result.run_id
    assert back.result.removed == rules  # newest first
    assert back.result.mismatches == []
    assert files_state(*AUGEN_FILES) == files_before
    assert klist() == kernel_before
    assert host.state(run.result.run_id) == "backed-out"
    assert (jdir / "result.apply").exists() and (jdir / "result.backout").exists()


@KERNEL
def test_live_only_rules_survive_apply_and_backout(host: Host) -> None:
    containerd = host.dir("run/containerd")
    # By hand, live only: an unrelated watch, a `never` rule that LISTS exactly like the
    # watch apply adds, and one of the requested rules itself.
    host.hand_add(f"-w {host.dir('handmade')} -p wa -k handmade")
    host.hand_add(f"-a never,exit -F path={containerd} -F perm=rwa")
    requested_live = host.watch("etc/docker")
    host.hand_add(requested_live)
    kernel_before = klist()
    rules = [host.syscall_rule("run/containerd"), requested_live]

    run = host.apply(rules)
    assert_ok(run, "applied")
    assert run.result.fields["loaded"] == "1"  # the hand-added one was already live
    assert klist() == [f"-w {containerd} -p rwa -k docker", *kernel_before]

    back = host.backout()
    assert_ok(back, "restored")
    assert back.result.removed == [rules[0]]
    assert klist() == kernel_before  # the never twin and the hand-added rules are all still there


@KERNEL
def test_backout_reports_what_differs_from_before_the_run(host: Host) -> None:
    rule = host.watch("etc/docker")
    kernel_before = klist()
    assert_ok(host.apply([rule]), "applied")
    foreign = f"-w {host.dir('other-tool')} -p wa -k other"
    host.hand_add(foreign)  # another tool's rule, added after the run: not ours to remove

    back = host.backout()
    assert_ok(back, "mismatch")
    assert back.result.removed == [rule]
    assert back.result.mismatches == [f"kernel has extra rule: {foreign}"]
    assert klist() == kernel_before + [foreign]
    assert host.state(back.result.run_id) == "backed-out"


@KERNEL
def test_second_apply_is_a_noop(host: Host) -> None:
    rules = [host.watch("etc/docker"), host.syscall_rule("run/containerd")]
    first = host.apply(rules)
    assert_ok(first, "applied")
    files_after, kernel_after = files_state(*AUGEN_FILES), klist()

    second = host.apply(rules)
    assert_ok(second, "unchanged")
    assert second.result.added == [] and second.result.fields["added"] == "0"
    assert files_state(*AUGEN_FILES) == files_after
    assert klist() == kernel_after
    assert host.state(second.result.run_id) == "unchanged"
    # "Latest not yet backed out" skips the no-op run.
    assert host.backout().result.run_id == first.result.run_id


@KERNEL
@pytest.mark.parametrize(
    ("original", "before"),
    [
        pytest.param(
            b"## site rules\r\n-D\n-b 8192\n-w /etc/passwd  -p wa -k identity   \n\n-e 2\n# after -e\n-w /x",
            b"-w /etc/passwd",
            id="before-the-first-rule",
        ),
        pytest.param(
            b"# no final newline\n-D\n-a always,exit -F arch=b64 -S adjtimex", b"-a always", id="before-a-last-line"
        ),
        pytest.param(b"-D\n-b 8192\n-e 2\n", b"-e 2", id="before-the-e-line"),
        pytest.param(b"# no rule, no final newline\n-D", None, id="appended"),
    ],
)
def test_auditctl_mode_changes_only_the_managed_block(host: Host, original: bytes, before: bytes | None) -> None:
    """The block goes first (cisaudit/model/plan.py _block_at): after -D/-b, before
    the first rule line, else before the -e line, else at the end; later runs add to it."""
    target = Path(host.dir("etc/audit")) / "audit.rules"
    target.write_bytes(original)
    target.chmod(0o640)
    at = original.find(before) if before else -1
    prefix, suffix = (original[:at], original[at:]) if at >= 0 else (original + b"\n", b"")
    kernel_before = klist()

    one, two = host.watch("etc/docker"), host.syscall_rule("run/containerd")
    first = host.apply([one], mode="auditctl", target=str(target))
    assert_ok(first, "applied")
    after_first = target.read_bytes()
    second = host.apply([one, two], mode="auditctl", target=str(target))
    assert_ok(second, "applied")
    assert second.result.added == [two]
    new = target.read_bytes()
    assert new.startswith(prefix) and new.endswith(suffix), new
    block = new[len(prefix) : len(new) - len(suffix)]
    assert block.startswith(BEGIN) and block.endswith(END) and block.count(BEGIN) == 1, block
    lines = block.decode().splitlines()
    assert f"last changed by run {second.result.run_id} at " in lines[1]
    assert lines[2:4] == [one, two]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600

    assert_ok(host.backout(), "restored")
    assert target.read_bytes() == after_first
    assert_ok(host.backout(), "restored")
    assert target.read_bytes() == original
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert klist() == kernel_before


FAKE_AUDITCTL = """#!/bin/sh
# Reports enabled 2 (immutable) and refuses every change, as the kernel then does.
printf '%s\\n' "$*" >>{log}
case "$1" in
-s) {real} -s | sed 's/^enabled [01]$/enabled 2/' ;;
-l) exec {real} -l ;;
*) echo "Error sending add rule data request (Operation not permitted)" >&2; exit 255 ;;
esac
"""


def fake_immutable(host: Host) -> tuple[dict[str, str], Path]:
    bin_dir, log = Path(host.dir("fakebin")), host.sandbox / "auditctl.log"
    fake = bin_dir / "auditctl"
    fake.write_text(FAKE_AUDITCTL.format(log=log, real=shutil.which("auditctl")))
    fake.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}, log


@KERNEL
def test_immutable_kernel_persists_and_reports_reboot_required(host: Host) -> None:
    """Immutable mode (`auditctl -s` says enabled 2) cannot be set here: undoing it needs a
    reboot. A fake auditctl first on PATH reports enabled 2 and refuses every change (as the
    kernel then does) while passing -l through to the real one."""
    env, log = fake_immutable(host)
    rules = [host.watch("etc/docker")]
    files_before, kernel_before = files_state(*AUGEN_FILES), klist()

    run = host.apply(rules, env=env)
    assert_ok(run, "reboot-required")
    assert run.result.fields["persisted"] == "1" and run.result.fields["loaded"] == "0"
    assert rules[0] in Path(TARGET).read_text() and rules[0] in AUDIT_RULES.read_text()
    assert klist() == kernel_before
    calls = log.read_text().splitlines()
    assert set(calls) <= {"-s", "-l"}, calls  # it never tried to load

    back = host.backout(env=env)
    assert_ok(back, "restored")
    assert files_state(*AUGEN_FILES) == files_before
    assert set(log.read_text().splitlines()) <= {"-s", "-l"}


@KERNEL
def test_backout_of_a_run_a_boot_loaded_on_an_immutable_kernel_needs_a_reboot(host: Host) -> None:
    """Persisted only (enabled 2), then a boot loaded the rules (here: added by hand) and the
    kernel is still immutable: the backout restores the files and says the next reboot loads
    them, not "mismatch" (found on a CIS-hardened VM, selftests/e2e/test_hardened_reboot.py)."""
    env, _log = fake_immutable(host)
    rules = [host.watch("etc/docker")]
    files_before = files_state(*AUGEN_FILES)
    assert_ok(host.apply(rules, env=env), "reboot-required")
    host.hand_add(rules[0])  # what the next boot loads from the persisted file
    kernel_booted = klist()

    back = host.backout(env=env)
    assert_ok(back, "reboot-required")
    assert back.result.mismatches == []
    assert "kernel is immutable: its rule list differs from before the run until the next reboot" in (
        back.result.messages
    )
    assert files_state(*AUGEN_FILES) == files_before and klist() == kernel_booted


@KERNEL
def test_backout_on_immutable_kernel_restores_files_and_needs_reboot(host: Host) -> None:
    """Apply for real, then back out with the fake immutable auditctl (see above)."""
    rules = [host.watch("etc/docker")]
    files_before = files_state(*AUGEN_FILES)
    assert_ok(host.apply(rules), "applied")
    kernel_applied = klist()
    env, _log = fake_immutable(host)

    back = host.backout(env=env)
    assert_ok(back, "reboot-required")
    assert files_state(*AUGEN_FILES) == files_before
    assert klist() == kernel_applied  # live rules stay until the reboot


@KERNEL
@pytest.mark.parametrize(
    ("kill_at", "lock"), [("started", "flock"), ("files-written", "mkdir"), ("loaded", "flock"), ("loaded", "mkdir")]
)
def test_interrupted_apply_is_undone_by_backout(host: Host, kill_at: str, lock: str) -> None:
    rules = [host.watch("etc/docker"), host.syscall_rule("run/containerd")]
    files_before, kernel_before = files_state(*AUGEN_FILES), klist()
    env = {"CISAUDIT_LOCK_METHOD": lock}

    run = host.apply(rules, env={**env, "CISAUDIT_TEST_KILL_AT": kill_at})
    assert run.rc == -9 and run.result.status == "unknown", run
    (run_id,) = (host.journal / "index").read_text().split()
    assert host.state(run_id) == kill_at
    if kill_at == "files-written":
        assert rules[0] in Path(TARGET).read_text()
    if kill_at == "loaded":
        assert len(klist()) == len(kernel_before) + 2

    back = host.backout(env=env)
    assert_ok(back, "restored")
    assert back.result.run_id == run_id
    if lock == "mkdir":
        assert "removed stale lock" in back.stderr  # the killed run's lock dir
    assert list((host.sandbox / "tmp").iterdir()) == []  # its scratch dir was swept too
    assert files_state(*AUGEN_FILES) == files_before
    assert klist() == kernel_before


@KERNEL
def test_apply_whose_caller_is_gone_runs_to_its_end(host: Host) -> None:
    """Regression: a lost connection closes the script's stdout and stderr, and its next progress
    line killed it by SIGPIPE wherever it was (a test VM cut mid-apply was left in state `started`,
    no result kept). It must run to its end and keep its result in the journal."""
    rules = [host.watch("etc/docker")]
    files_before, kernel_before = files_state(*AUGEN_FILES), klist()
    run_id = new_run_id()
    script = render_apply(run_id, "augenrules", TARGET, rules, False, BENCHMARK, journal_root=str(host.journal))
    read, write = os.pipe()
    os.close(read)  # the caller is gone before the first line: every write fails with EPIPE
    try:
        proc = subprocess.Popen(["dash", "-c", script], stdout=write, stderr=write, env=host.env(None))
    finally:
        os.close(write)
    assert proc.wait(60) == 0
    assert host.state(run_id) == "done"
    assert "cisaudit-result: status=applied" in (host.journal / run_id / "result.apply").read_text()
    assert len(klist()) == len(kernel_before) + 1
    assert_ok(host.backout(run_id), "restored")
    assert files_state(*AUGEN_FILES) == files_before
    assert klist() == kernel_before


@KERNEL
def test_backout_of_a_run_not_begun_stops_it_from_beginning(host: Host) -> None:
    """Regression: after a lost connection the backout can reach the host before the apply it
    names has begun (it was still on its way); backout said "nothing to do" and the apply then
    changed the host. The run id must be spent: that apply later refuses, changing nothing."""
    files_before, kernel_before = files_state(*AUGEN_FILES), klist()
    run_id = new_run_id()
    assert_ok(host.backout(run_id, dry_run=True), "nothing-to-do")
    assert not host.journal.exists()  # a dry run writes nothing
    back = host.backout(run_id)
    assert_ok(back, "nothing-to-do")
    assert host.state(run_id) == "cancelled"
    late = host.apply([host.watch("etc/docker")], run_id=run_id)
    assert_ok(late, "failed")
    assert any("was backed out before it began" in m for m in late.result.messages), late
    assert files_state(*AUGEN_FILES) == files_before and klist() == kernel_before
    assert_ok(host.backout(), "nothing-to-do")  # nor is it picked as the latest run


@KERNEL
@pytest.mark.parametrize("was_live_before", [False, True])
def test_backout_settles_a_rule_in_flight_when_killed(host: Host, was_live_before: bool) -> None:
    """Killed inside the `auditctl` call of a rule: the journal names it in live.pending but
    cannot say whether the add happened. Backout removes it only if the run added it."""
    rule = host.watch("etc/docker")
    if was_live_before:
        host.hand_add(rule)
    kernel_before = klist()
    run = host.apply([host.syscall_rule("run/containerd")], env={"CISAUDIT_TEST_KILL_AT": "files-written"})
    assert run.rc == -9, run
    (run_id,) = (host.journal / "index").read_text().split()
    # Simulate the kill landing after the kernel took the rule (a no-op if it was live).
    (host.journal / run_id / "live.pending").write_text(rule + "\n")
    _auditctl(*rule.split())

    back = host.backout()
    assert_ok(back, "restored")
    assert (rule in back.result.removed) is not was_live_before
    assert klist() == kernel_before


@KERNEL
@pytest.mark.parametrize("lock", ["flock", "mkdir"])
def test_concurrent_applies_serialize_on_the_host_lock(host: Host, lock: str) -> None:
    target = Path(host.dir("etc/audit")) / "audit.rules"
    target.write_bytes(b"-D\n")
    kernel_before = klist()
    one, two = host.watch("etc/docker"), host.syscall_rule("run/containerd")
    env = {"CISAUDIT_LOCK_METHOD": lock}
    started = time.monotonic()
    first, first_id = host.start_apply([one], str(target), {**env, "CISAUDIT_TEST_SLEEP_LOCKED": "2"})
    wait_for_lock_holder(host, lock)
    second, second_id = host.start_apply([two], str(target), env)

    a, b = host.finish(first, started, "apply A"), host.finish(second, started, "apply B")
    assert_ok(a, "applied")
    assert_ok(b, "applied")
    assert host.state_time(second_id, "started") >= host.state_time(first_id, "done")
    assert b.seconds >= 2
    lines = target.read_text().splitlines()
    assert one in lines and two in lines and target.read_bytes().count(BEGIN) == 1
    assert len(klist()) == len(kernel_before) + 2

    assert_ok(host.backout(env=env), "restored")
    assert_ok(host.backout(env=env), "restored")
    assert target.read_bytes() == b"-D\n" and klist() == kernel_before


def wait_for_lock_holder(host: Host, lock: str) -> None:
    owner = host.sandbox / ("cisaudit.lock" if lock == "flock" else "cisaudit.lock.d/owner")
    deadline = time.monotonic() + 10
    while not (owner.exists() and owner.read_text().startswith("pid=")):
        assert time.monotonic() < deadline, "first apply never took the lock"
        time.sleep(0.05)


@KERNEL
@pytest.mark.parametrize("lock", ["flock", "mkdir"])
def test_lock_timeout_fails_clearly_and_changes_nothing(host: Host, lock: str) -> None:
    target = Path(host.dir("etc/audit")) / "audit.rules"
    target.write_bytes(b"-D\n")
    env = {"CISAUDIT_LOCK_METHOD": lock}
    first, _ = host.start_apply([host.watch("etc/docker")], str(target), {**env, "CISAUDIT_TEST_SLEEP_LOCKED": "4"})
    wait_for_lock_holder(host, lock)
    late = host.apply(
        [host.syscall_rule("run/containerd")],
        mode="auditctl",
        target=str(target),
        run_id="late-run",
        env={**env, "CISAUDIT_LOCK_TIMEOUT": "1"},
    )
    assert_ok(late, "failed")
    assert any("holds the host lock" in m and "pid=" in m for m in late.result.messages), late
    assert not (host.journal / "late-run").exists()
    assert_ok(host.finish(first, time.monotonic(), "apply A"), "applied")
    assert_ok(host.backout(env=env), "restored")


@KERNEL
def test_refused_live_rule_rolls_the_whole_run_back(host: Host) -> None:
    missing = host.sandbox / "no-such-dir"
    rules = [host.watch("etc/docker"), host.use(f"-a exit,always -F dir={missing} -F perm=wa -k docker")]
    files_before, kernel_before = files_state(*AUGEN_FILES), klist()

    run = host.apply(rules)
    assert_ok(run, "failed")
    assert run.result.fields.get("rolled_back") == "1"
    assert any("No such file or directory" in m for m in run.result.messages), run
    assert files_state(*AUGEN_FILES) == files_before
    assert klist() == kernel_before
    assert host.state(run.result.run_id) == "rolled-back"
    assert_ok(host.backout(), "nothing-to-do")


@KERNEL
def test_backout_refuses_to_drop_later_changes_unless_forced(host: Host) -> None:
    target = Path(host.dir("etc/audit")) / "audit.rules"
    target.write_bytes(b"-D\n")
    kernel_before = klist()
    first = host.apply([host.watch("etc/docker")], mode="auditctl", target=str(target))
    second = host.apply([host.syscall_rule("run/containerd")], mode="auditctl", target=str(target))
    assert_ok(first, "applied")
    assert_ok(second, "applied")

    out_of_order = host.backout(first.result.run_id)
    assert_ok(out_of_order, "refused")
    assert any(second.result.run_id in m for m in out_of_order.result.messages)

    with target.open("ab") as f:
        f.write(b"-w /etc/hosts -p wa -k by-hand\n")
    edited = host.backout()
    assert_ok(edited, "refused")
    assert any("changed after run" in m for m in edited.result.messages)
    assert host.state(second.result.run_id) == "done"

    assert_ok(host.backout(force=True), "restored")
    assert_ok(host.backout(), "restored")
    assert target.read_bytes() == b"-D\n" and klist() == kernel_before


@KERNEL
def test_dry_runs_change_nothing(host: Host) -> None:
    rules = [host.watch("etc/docker"), host.syscall_rule("run/containerd")]
    files, kernel_before = snapshot_etc_audit(), klist()

    dry = host.apply(rules, dry_run=True)
    assert_ok(dry, "dry-run")
    assert dry.result.added == rules
    assert snapshot_etc_audit() == files and klist() == kernel_before
    assert not host.journal.exists()

    assert_ok(host.apply(rules), "applied")
    applied_files, applied_kernel = snapshot_etc_audit(), klist()
    dry_back = host.backout(dry_run=True)
    assert_ok(dry_back, "dry-run")
    assert dry_back.result.removed == rules
    assert sorted(dry_back.result.restored) == sorted(str(p) for p in AUGEN_FILES)
    assert snapshot_etc_audit() == applied_files and klist() == applied_kernel
    assert_ok(host.backout(), "restored")


@KERNEL
@pytest.mark.parametrize("bad", ["-D", "-e 2", "-w /tmp/x -k docker # why", "-b 8192"])
def test_non_rule_lines_are_refused_before_any_change(host: Host, bad: str) -> None:
    run = host.apply([host.watch("etc/docker"), bad])
    assert_ok(run, "failed")
    assert not host.journal.exists()
    assert not Path(TARGET).exists()


# ------------------------------------------------------- rendering and parsing


def test_render_quotes_every_value_for_the_shell() -> None:
    rules = ["-w /run/containerd -k docker", '-w /tmp/it\'s $(reboot) `x` -k "q"']
    script = render_apply("r1", "auditctl", "/etc/audit/audit.rules", rules, True, BENCHMARK, journal_root="/j k")
    common = (SCRIPT_DIR / "common.sh").read_text()
    head = script[: script.index(common)]
    shown = subprocess.run(
        [
            "dash",
            "-c",
            head + 'printf "%s|" "$CISAUDIT_RUN_ID" "$CISAUDIT_MODE" "$CISAUDIT_TARGET" '
            '"$CISAUDIT_RULES" "$CISAUDIT_DRY_RUN" "$CISAUDIT_JOURNAL_ROOT"',
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown == "r1|auditctl|/etc/audit/audit.rules|" + "\n".join(rules) + "|1|/j k|"
    for text in (script, render_backout(None, False)):
        assert subprocess.run(["dash", "-n"], input=text, text=True, check=False).returncode == 0
    with pytest.raises(ValueError):
        render_apply("r1", "load", "/x", [], False, BENCHMARK)
    with pytest.raises(ValueError):
        render_apply("r1", "auditctl", "/x", ["-w /a\n-D"], False, BENCHMARK)


def test_parse_result_reads_lines_and_fields() -> None:
    out = (
        "cisaudit-added: -w /a -k docker\ncisaudit-message: already live: -w /b\n"
        "cisaudit-mismatch: kernel lacks rule: -w /c\ncisaudit-removed: -w /d\n"
        "cisaudit-result: status=applied run_id=r9 added=1 journal=/var/lib/a b\nhuman summary\n"
    )
    result = parse_result(out)
    assert (result.status, result.run_id, result.added, result.removed) == (
        "applied",
        "r9",
        ["-w /a -k docker"],
        ["-w /d"],
    )
    assert result.messages == ["already live: -w /b"]
    assert result.mismatches == ["kernel lacks rule: -w /c"]
    assert result.fields["journal"] == "/var/lib/a b" and result.ok
    killed = parse_result("cisaudit-added: -w /a\n")
    assert killed.status == "unknown" and not killed.ok and killed.messages


def test_scripts_are_posix_sh() -> None:
    """dash parses them and no common bashism slipped in; shellcheck too where installed."""
    names = ("common.sh", "apply.sh", "backout.sh")
    for name in names:
        text = (SCRIPT_DIR / name).read_text()
        assert subprocess.run(["dash", "-n", str(SCRIPT_DIR / name)], check=False).returncode == 0
        assert not re.search(r"^\s*(local|function)\s|(^|\s)\[\[\s|<<<", text, re.M), name
    if shutil.which("shellcheck"):
        check = subprocess.run(
            ["shellcheck", "-s", "sh", "-x", *(str((SCRIPT_DIR / n).relative_to(REPO)) for n in names)],
            cwd=REPO,  # the scripts' `shellcheck source=` paths are relative to the checkout
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stdout


@KERNEL
@pytest.mark.parametrize("existing", [None, b"# site\nd /run/site 0755 root root -\n"], ids=["new", "existing"])
def test_tmpfiles_entry_is_journaled_merged_and_backed_out_exactly(host: Host, existing: bytes | None) -> None:
    """The tmpfiles.d entry that makes a rule's parent exist at boot is a change like any
    other: journaled first, merged with what the file held, undone byte for byte."""
    conf = Path(host.dir("tmpfiles.d")) / "cisaudit-docker.conf"
    if existing is not None:
        conf.write_bytes(existing)
    env = {"CISAUDIT_TMPFILES_CONF": str(conf)}
    line = f"d {host.sandbox}/run/containerd 0711 0 0 -"
    script = render_apply(
        new_run_id(), "augenrules", TARGET, [], False, BENCHMARK, journal_root=str(host.journal), tmpfiles=[line]
    )
    run = host.finish(host.start(script, env), time.monotonic(), "apply tmpfiles")
    assert_ok(run, "applied")
    assert run.result.added == [f"tmpfiles.d: {line}"] and run.result.fields["tmpfiles"] == "1"
    body = conf.read_text().splitlines()
    assert body[0].startswith("## Managed by cisaudit (CIS Docker Benchmark v1.8.0 section 1.1)") and body[-1] == line
    if existing is not None:
        assert "d /run/site 0755 root root -" in body
    assert stat.S_IMODE(conf.stat().st_mode) == 0o644
    again = host.finish(host.start(script.replace(run.result.run_id, new_run_id()), env), time.monotonic(), "again")
    assert_ok(again, "unchanged")
    back = host.backout(run.result.run_id, env=env)
    assert_ok(back, "restored")
    assert (conf.read_bytes() if conf.exists() else None) == existing


def test_tmpfiles_lines_are_checked_before_anything_is_written(host: Host) -> None:
    script = render_apply(
        new_run_id(),
        "augenrules",
        TARGET,
        [],
        False,
        BENCHMARK,
        journal_root=str(host.journal),
        tmpfiles=["D /run/containerd 0711 0 0 -"],
    )
    run = host.finish(
        host.start(script, {"CISAUDIT_TMPFILES_CONF": host.dir("t") + "/x.conf"}), time.monotonic(), "bad tmpfiles"
    )
    assert run.result.status == "failed" and "not a tmpfiles.d line" in " ".join(run.result.messages)
    assert not Path(host.dir("t") + "/x.conf").exists()


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
OLD_LOCK = Path("/run/lock/cisaudit.lock")  # before: world-writable /run/lock


def take_host_lock(method: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """common.sh's ca_lock as apply.sh runs it (as root, default lock path unless extra_env says)."""
    script = f'. {SCRIPT_DIR / "common.sh"}; ca_setup; ca_lock; echo "locked $CA_LOCK_PATH"; CA_FINISHED=1'
    env = {k: v for k, v in os.environ.items() if not k.startswith("CISAUDIT_")}
    env |= {"CISAUDIT_LOCK_METHOD": method, "CISAUDIT_LOCK_TIMEOUT": "3", **(extra_env or {})}
    return subprocess.run(["dash", "-c", script], capture_output=True, text=True, env=env, timeout=30)


@pytest.mark.parametrize("method", ["flock", "mkdir"])
def test_unprivileged_user_cannot_block_or_hijack_the_host_lock(method: str) -> None:
    """Regression: the lock was in /run/lock, where any user could take it first and make every
    --remediate/--backout wait and fail (or, with fs.protected_symlinks=0, plant a symlink)."""
    require(
        os.geteuid() == 0 and shutil.which("setpriv") is not None and shutil.which("dash") is not None,
        "needs root, setpriv and dash",
    )
    # As nobody: hold every place the lock has lived, and try to plant entries in the new one.
    attack = (
        "for p in /run/lock/cisaudit.lock /run/cisaudit/cisaudit.lock; do "
        '(exec 9>>"$p" && flock -n 9 && echo "holding $p" && sleep 20) 2>/dev/null & done; '
        "mkdir /run/cisaudit 2>/dev/null && echo 'made dir'; "
        "mkdir /run/cisaudit/cisaudit.lock.d 2>/dev/null && echo 'made lock dir'; "
        "ln -s /etc/shadow /run/cisaudit/cisaudit.lock 2>/dev/null && echo 'planted symlink'; "
        "sleep 1; echo ready"
    )
    holder = subprocess.Popen([*NOBODY, "sh", "-c", attack], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert holder.stdout is not None
        said = [line.strip() for line in iter(holder.stdout.readline, "ready\n")]
        # Holding the old place works unless root made that file first; the root-only dir takes nothing.
        assert said in ([], ["holding /run/lock/cisaudit.lock"]), said
        start = time.monotonic()
        run = take_host_lock(method)
        assert run.stdout.startswith("locked /run/cisaudit/cisaudit.lock\n"), run.stdout + run.stderr
        assert time.monotonic() - start < 2, "waited for the unprivileged holder"
        lock_dir = os.lstat("/run/cisaudit")
        assert stat.S_ISDIR(lock_dir.st_mode) and lock_dir.st_uid == 0 and stat.S_IMODE(lock_dir.st_mode) & 0o022 == 0
    finally:
        os.killpg(holder.pid, 9)
        holder.wait()
        if OLD_LOCK.exists() and OLD_LOCK.stat().st_uid == 65534:
            OLD_LOCK.unlink()


@pytest.mark.parametrize("unsafe", ["symlink", "world-writable", "not-root"])
def test_unsafe_lock_directory_is_refused(unsafe: str, tmp_path: Path) -> None:
    require(os.geteuid() == 0 and shutil.which("dash") is not None, "needs root and dash")
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir(mode=0o700)
    if unsafe == "symlink":
        (tmp_path / "link").symlink_to(lock_dir)
        lock_dir = tmp_path / "link"
    elif unsafe == "world-writable":
        lock_dir.chmod(0o1777)
    else:
        os.chown(lock_dir, 65534, 65534)
    run = take_host_lock("flock", {"CISAUDIT_LOCK_PATH": str(lock_dir / "cisaudit.lock")})
    result = parse_result(run.stdout)
    assert run.returncode == 1 and result.status == "failed", run
    assert any(m.startswith(f"refusing lock directory {lock_dir}: ") for m in result.messages), result.messages
    assert not (lock_dir / "cisaudit.lock").exists()


# ------------------------------------------------------------- processes per run

# A fork counts when it returned a child's pid, whole or resumed: one a signal interrupts is logged once
# per attempt, and its restart (ERESTARTNOINTR) started no process (CI counted 8.2 per rule for 8).
FORK = re.compile(r"^\d+ +(?:<\.\.\. (?:clone3?|v?fork) resumed>|(?:clone3?|v?fork)\().*= [1-9]\d*$", re.M)


def processes(host: Host, script: str) -> tuple[Run, int]:
    """Run script under `strace -f` and count the processes it started (each fork or clone)."""
    log = host.sandbox / f"strace.{uuid.uuid4().hex[:6]}"
    cmd = ["strace", "-f", "-qq", "-e", "trace=clone,clone3,fork,vfork", "-o", str(log), "dash", "-c", script]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=host.env(None), timeout=120, check=False)
    return Run(proc.returncode, proc.stdout, proc.stderr, 0.0), len(FORK.findall(log.read_text()))


def apply_and_backout(host: Host, names: list[str]) -> tuple[int, int]:
    rules = [host.watch(f"budget/{name}") for name in names]
    run_id = new_run_id()
    script = render_apply(run_id, "augenrules", TARGET, rules, False, BENCHMARK, journal_root=str(host.journal))
    run, applied = processes(host, script)
    assert_ok(run, "applied")
    back, backed_out = processes(host, render_backout(run_id, False, journal_root=str(host.journal)))
    assert_ok(back, "restored")
    return applied, backed_out


@KERNEL
def test_apply_and_backout_start_few_processes(host: Host) -> None:
    """An emulated guest (the CI's QEMU VMs) pays about 20 ms per process the scripts start: each
    rule costs its three auditctl calls, the pending marker's rm and one sorted listing (8
    processes; 16 before they were counted), a run's fixed part 123 (153), a backout's 51 (84)
    and one auditctl per rule."""
    require(shutil.which("strace") is not None, "needs strace (apt-get install strace)")
    one_apply, one_backout = apply_and_backout(host, ["a"])
    seven_apply, seven_backout = apply_and_backout(host, [f"b{i}" for i in range(7)])
    per_rule, per_backout = (seven_apply - one_apply) / 6, (seven_backout - one_backout) / 6
    print(f"processes: apply {one_apply} + {per_rule:.1f}/rule, backout {one_backout} + {per_backout:.1f}/rule")
    assert per_rule <= 8, (one_apply, seven_apply)
    assert one_apply - per_rule <= 135, one_apply
    assert per_backout <= 1, (one_backout, seven_backout)
    assert one_backout - per_backout <= 60, one_backout
