"""Hostile and hung hosts must not stop the run or spoil the other hosts' results.

The hostile host is a real SSH server (selftests.hostile_ssh) that misbehaves on purpose; the good
host is this machine over local://. The suite runs as a user runs it (selftests.suite_runner).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cisaudit.host import paramiko_backend, transport
from selftests.hostile_ssh import HostileServer, Reply, hostile_ssh_server
from selftests.kernel import KernelSandbox
from selftests.probe_frames import framed
from selftests.suite_runner import REPO, SuiteRun, run_suite, shown

NONCE = re.compile(r"M='?(@@cisaudit-[0-9a-f]+)")


@pytest.fixture
def isolated_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user key, agent or known_hosts takes part (the suite subprocess inherits this)."""
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


def hostile(tmp_path: Path, reply: Reply) -> Iterator[HostileServer]:
    workdir = tmp_path / "hostile"
    workdir.mkdir()
    with hostile_ssh_server(workdir, reply) as server:
        yield server


def assert_only_that_host_errors(run: SuiteRun, bad: str, reason: re.Pattern[str]) -> None:
    bad_cases = {k: p for k, p in run.cases.items() if k[0] == shown(bad)}
    good_cases = {k: p for k, p in run.cases.items() if k[0] == "local://"}
    assert bad_cases and len(bad_cases) == len(good_cases), run.output[-3000:]
    for props in bad_cases.values():
        assert props.verdict == "error" and props.outcome == "error", props
        assert reason.search(props.summary) and "\n" not in props.summary, props.summary
    for props in good_cases.values():  # the other host is judged as usual
        assert props.verdict in ("pass", "fail", "not-applicable") and props.outcome != "error", props
    assert run.returncode == 1


@pytest.mark.usefixtures("isolated_ssh")
def test_host_that_never_answers_exec_ends_with_timeout(tmp_path: Path) -> None:
    """Regression: exec_command waited forever for the reply to the exec request."""
    for server in hostile(tmp_path, lambda command: None):
        start = time.monotonic()
        run = run_suite(
            tmp_path,
            [server.spec(), "local://"],
            f"--known-hosts={server.known_hosts}",
            "--command-timeout=2",
            "--connect-timeout=2",
            timeout=60,
        )
        elapsed = time.monotonic() - start
        assert_only_that_host_errors(run, server.spec(), re.compile(r"^command timed out after 2 s$"))
        assert elapsed < 60, f"run took {elapsed:.0f} s"


@pytest.mark.usefixtures("isolated_ssh")
def test_idle_paramiko_connection_sends_keepalives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: no keepalive was set, so a half-dead connection between commands went unnoticed.
    The interval is shortened to 1 s; the server counts the keepalives arriving while the client idles."""
    monkeypatch.setattr(paramiko_backend, "KEEPALIVE_S", 1)
    for server in hostile(tmp_path, lambda command: (0, b"ok\n")):
        options = transport.ConnectOptions(known_hosts=str(server.known_hosts), connect_timeout=5, command_timeout=5)
        host = transport.open_host(server.spec(), options)
        assert host.run("true").stdout == "ok\n"
        before = len(server.global_requests)
        time.sleep(3.5)
        keepalives = [kind for kind in server.global_requests[before:] if kind.startswith("keepalive@")]
        assert len(keepalives) >= 2, server.global_requests
        assert host.run("true").stdout == "ok\n"  # refused keepalives leave the connection usable


def crafted_probe_output(command: str) -> tuple[int, bytes]:
    """Complete, well-framed probe output whose `auditctl -s` exit code is not a number."""
    match = NONCE.search(command)
    assert match, command[:200]
    nonce = match.group(1)
    return 0, framed(nonce, ("uid", "", "0"), ("auditctl-s", "x", "enabled 1")).encode()


@pytest.mark.usefixtures("isolated_ssh")
def test_host_whose_output_breaks_the_parser_is_only_that_hosts_error(tmp_path: Path) -> None:
    """Regression: a ValueError while parsing one host's probe failed the session-wide fixture,
    so every host's tests errored. Now the parser reads the crafted number as unknown, and
    whatever that host's checks cannot judge is that host's one-line error."""
    for server in hostile(tmp_path, crafted_probe_output):
        run = run_suite(tmp_path, [server.spec(), "local://"], f"--known-hosts={server.known_hosts}", timeout=120)
        bad = {k: p for k, p in run.cases.items() if k[0] == shown(server.spec())}
        good = {k: p for k, p in run.cases.items() if k[0] == "local://"}
        assert bad and len(bad) == len(good), run.output[-3000:]
        assert all(p.verdict in ("error", "fail") and "\n" not in p.summary for p in bad.values()), bad
        no_auditctl = "auditctl not found: the audit userspace (auditd) is not installed"
        assert no_auditctl in {p.summary for p in bad.values() if p.verdict == "error"}
        assert all(p.verdict in ("pass", "fail", "not-applicable") for p in good.values())


@pytest.mark.parametrize(
    "template",
    [
        "ssh://-oProxyCommand=touch${IFS}MARKER",
        "ssh://-oProxyCommand=touch${IFS}MARKER@h",
        "ssh://root:hunter2@127.0.0.1?ssh_identity_file=MARKER",
    ],
)
def test_bad_spec_is_usage_error_before_any_backend(tmp_path: Path, template: str) -> None:
    """Regression: a host or user starting with '-' reached OpenSSH as an option; a password
    would have gone to sshpass -p (visible in ps). Now pytest refuses the run, naming the spec redacted."""
    marker = tmp_path / "ran"
    spec = template.replace("MARKER", str(marker))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", f"--hosts={spec},local://", "-p", "no:cacheprovider"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, output[-2000:]
    assert "bad host spec" in output and not marker.exists()
    assert "hunter2" not in output and (str(marker) in output) == ("ssh_identity_file" not in spec)


def test_max_output_mb_makes_a_bigger_answer_that_hosts_error(tmp_path: Path) -> None:
    run = run_suite(tmp_path, ["local://"], "--max-output-mb=0.001", timeout=120)
    assert run.cases and run.returncode == 1
    for props in run.cases.values():
        assert props.verdict == "error", props
        assert props.summary.startswith("command output over the limit of 1048 bytes (--max-output-mb)"), props


RUN_ID = re.compile(r"CISAUDIT_RUN_ID='?([0-9A-Za-z-]+)")


@pytest.mark.kernel
@pytest.mark.usefixtures("isolated_ssh")
def test_apply_that_never_returns_keeps_its_run_id_and_is_still_backed_out(
    kernel: KernelSandbox, tmp_path: Path
) -> None:
    """Regression: a connection lost or timed out during --remediate said only "change failed",
    without the run id, and --remediate --backout did not try to undo it. The host probes for real
    (this machine, read-only, under the kernel lock: no rules, /etc/docker present, so there is a
    rule to add); its apply never answers; its backout is recorded, not run."""
    kernel.make_path("/etc/docker", "dir")
    backouts: list[str] = []

    def reply(command: str) -> tuple[int, bytes] | None:
        run = RUN_ID.search(command)
        if run is None:  # the probe: this machine's real, read-only answer
            done = subprocess.run(["sh", "-c", command], capture_output=True, timeout=60)
            return done.returncode, done.stdout
        if "CISAUDIT_MODE=" in command:  # apply: the host goes silent
            return None
        backouts.append(run.group(1))
        return 0, f"cisaudit-result: status=restored run_id={run.group(1)}\n".encode()

    for server in hostile(tmp_path, reply):
        run = run_suite(
            tmp_path,
            [server.spec()],
            f"--known-hosts={server.known_hosts}",
            "--controls=1.1.6",
            "--remediate",
            "--backout",
            "--command-timeout=10",
            timeout=120,
        )
        remediation = run.case(server.spec(), "host", "remediation")
        match = re.fullmatch(
            r"change failed: host state unknown \(command timed out after 10 s\); "
            r"back out run (\S+) with --backout",
            remediation.summary,
        )
        assert match and remediation.verdict == "error", remediation.summary
        assert backouts == [match.group(1)], run.case(server.spec(), "host", "backout").summary
        backout = run.case(server.spec(), "host", "backout")
        assert backout.verdict == "pass" and f"run {match.group(1)}" in backout.summary, backout


ESCAPES = "\x1b]0;pwned\x07\x1b[2K\r\x9b31m"


def escaping_probe_output(command: str) -> tuple[int, bytes]:
    """A probe whose `auditctl -s` says `enabled ` followed by terminal escape sequences."""
    match = NONCE.search(command)
    assert match, command[:200]
    sections = [("uid", "", "0"), ("auditctl", "", "/sbin/auditctl"), ("auditctl-s", "0", f"enabled {ESCAPES}")]
    return 0, framed(match.group(1), *sections).encode()


@pytest.mark.usefixtures("isolated_ssh")
def test_host_text_reaches_the_terminal_without_its_escape_sequences(tmp_path: Path) -> None:
    """Issue 21.14: a host's bytes in a failure message retitled the runner's terminal or rewrote
    CI log lines (OSC, CSI, CR); they are shown as visible escapes now."""
    for server in hostile(tmp_path, escaping_probe_output):
        run = run_suite(tmp_path, [server.spec()], f"--known-hosts={server.known_hosts}", "-rA", timeout=120)
        assert "audit is disabled (enabled \\x1b]0;pwned\\x07" in run.output, run.output[-3000:]
        assert not any(c in run.output for c in "\x1b\x07\r\x9b"), run.output[-3000:]
