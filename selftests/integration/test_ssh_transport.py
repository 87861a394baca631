"""cisaudit.host.transport against a real OpenSSH server: nothing here is mocked.

Each module run starts a throwaway sshd on 127.0.0.1 (selftests.sshd) and talks to it through
the registered paramiko:// and ssh:// backends (paramiko, and the OpenSSH client), real sudo, and
finally the compliance suite itself run as a subprocess. The "remote" host is this machine:
only read-only commands run there, and files are written only under pytest's temp dirs.
HOME points at an empty temp dir and SSH_AUTH_SOCK is unset, so no user known_hosts, key or agent
takes part in paramiko; the OpenSSH client reads ~ from passwd, but every test passes its own
known_hosts (UserKnownHostsFile) and key, and the module fails if /etc/ssh trusts the test server.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from testinfra.backend.paramiko import ParamikoBackend

from cisaudit.host.transport import ConnectOptions, HostError, describe_error, open_host
from cisaudit.model.verdict import HOST_CHECKS
from selftests.relay import Relay
from selftests.sshd import Sshd, free_port, keygen, throwaway_sshd, unavailable
from selftests.suite_runner import shown

REPO = Path(__file__).resolve().parents[2]
SCHEMES = ("paramiko", "ssh")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with throwaway_sshd(tmp_path_factory.mktemp("sshd")) as server:
        for system_file in ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"):
            path = Path(system_file)
            if path.exists() and server.known_name in path.read_text(errors="replace"):
                pytest.fail(f"{system_file} already trusts {server.known_name}: tests would not be isolated")
        yield server


@pytest.fixture(scope="module")
def impostor_key(sshd: Sshd) -> str:
    """Another real ed25519 public key: what a known_hosts "for this host" holds after a swap."""
    return keygen(sshd.dir / "impostor_ed25519", "impostor")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return home


def session_log(sshd: Sshd) -> int:
    return sshd.log.read_text(errors="replace").count("Starting session")


def assert_refused(sshd: Sshd, scheme: str, options: ConnectOptions, tmp_path: Path) -> str:
    """Run a command that would leave a marker; it must fail, run nothing, and say why in one line."""
    marker = tmp_path / f"ran-{scheme}"
    sessions = session_log(sshd)
    with pytest.raises(Exception) as info:  # noqa: B017 - each backend raises its own type
        open_host(sshd.spec(scheme), options).run("touch %s", str(marker))
    message = describe_error(info.value)
    assert message and "\n" not in message
    assert not marker.exists()
    assert session_log(sshd) == sessions, "sshd started a session"
    return message


@pytest.mark.parametrize("scheme", SCHEMES)
def test_verified_host_runs_commands(sshd: Sshd, scheme: str, tmp_path: Path) -> None:
    options = ConnectOptions(known_hosts=str(sshd.write_known_hosts(tmp_path / "known_hosts")))
    host = open_host(sshd.spec(scheme), options)
    result = host.run("printf 'out 1\\nout 2\\n'; printf 'err 1\\nerr 2' >&2; exit 3")
    assert (result.rc, result.stdout, result.stderr) == (3, "out 1\nout 2\n", "err 1\nerr 2")
    # Really over SSH to the throwaway sshd, as root, with no sudo; args are quoted.
    result = host.run(
        'id -un; echo "${SSH_CONNECTION##* }"; printf \'%%s|\' %s %s; echo "${SUDO_COMMAND-}"', "a b", "$(id -u)"
    )
    assert (result.rc, result.stdout, result.stderr) == (0, f"root\n{sshd.port}\na b|$(id -u)|\n", "")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_mismatched_host_key_is_refused(sshd: Sshd, scheme: str, tmp_path: Path, impostor_key: str) -> None:
    known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts", impostor_key)
    message = assert_refused(sshd, scheme, ConnectOptions(known_hosts=str(known_hosts)), tmp_path)
    assert "host key mismatch" in message and "refused" in message


@pytest.mark.parametrize("scheme", SCHEMES)
def test_unknown_host_refused_unless_accept_new(sshd: Sshd, scheme: str, tmp_path: Path) -> None:
    refused_file, accepted_file = tmp_path / "refused_known_hosts", tmp_path / "accepted_known_hosts"
    refused_file.write_text("")
    accepted_file.write_text("")
    message = assert_refused(sshd, scheme, ConnectOptions(known_hosts=str(refused_file)), tmp_path)
    assert "refused" in message and "--known-hosts" in message
    assert sshd.host_key_line not in refused_file.read_text()

    host = open_host(sshd.spec(scheme), ConnectOptions(known_hosts=str(accepted_file), accept_new_host_keys=True))
    result = host.run("echo accepted")
    assert (result.rc, result.stdout) == (0, "accepted\n")
    # Both clients record the accepted key in the given file, as `ssh -o StrictHostKeyChecking=accept-new`.
    assert sshd.host_key_line in accepted_file.read_text()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_identity_file_from_connect_options(sshd: Sshd, scheme: str, tmp_path: Path) -> None:
    options = ConnectOptions(
        known_hosts=str(sshd.write_known_hosts(tmp_path / "known_hosts")), ssh_identity_file=str(sshd.client_key)
    )
    result = open_host(sshd.spec(scheme, identity=False), options).run("echo key")
    assert (result.rc, result.stdout, result.stderr) == (0, "key\n", "")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_command_timeout_raises_host_error(sshd: Sshd, scheme: str, tmp_path: Path) -> None:
    # 3 s: the deadline covers opening the session too (and, for ssh://, the connection), which
    # took over 1 s on a loaded machine.
    options = ConnectOptions(known_hosts=str(sshd.write_known_hosts(tmp_path / "known_hosts")), command_timeout=3)
    host = open_host(sshd.spec(scheme), options)
    assert host.run("true").rc == 0  # connected: the clock below measures only the command
    start = time.monotonic()
    with pytest.raises(HostError, match=r"^command timed out after 3 s$"):
        host.run("sleep 30")
    assert time.monotonic() - start < 8


def test_command_timeout_while_output_never_stops(sshd: Sshd, tmp_path: Path) -> None:
    """paramiko: the deadline holds even when there is always data to read (below the output cap)."""
    options = ConnectOptions(
        known_hosts=str(sshd.write_known_hosts(tmp_path / "known_hosts")), command_timeout=3, max_output_bytes=1 << 40
    )
    host = open_host(sshd.spec("paramiko"), options)
    assert host.run("true").rc == 0
    start = time.monotonic()
    with pytest.raises(HostError, match="timed out"):
        host.run("yes 'line of output' | head -c 2000000000")
    assert time.monotonic() - start < 8


@pytest.mark.parametrize("scheme", SCHEMES)
def test_connect_failures_are_one_line(sshd: Sshd, scheme: str, tmp_path: Path) -> None:
    known_hosts = str(sshd.write_known_hosts(tmp_path / "known_hosts"))
    closed = free_port()  # nothing listens: refused at once
    start = time.monotonic()
    with pytest.raises(Exception) as info:  # noqa: B017
        open_host(f"{scheme}://root@127.0.0.1:{closed}", ConnectOptions(known_hosts=known_hosts)).run("true")
    message = describe_error(info.value)
    assert str(closed) in message and "\n" not in message and time.monotonic() - start < 5

    with socket.socket() as silent:  # accepts TCP but never sends a banner: the connect timeout fires once
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        spec = f"{scheme}://root@127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        with pytest.raises(Exception) as info:  # noqa: B017
            open_host(spec, ConnectOptions(known_hosts=known_hosts, connect_timeout=2)).run("true")
        elapsed = time.monotonic() - start
    message = describe_error(info.value)
    assert message and "\n" not in message
    assert 1.5 < elapsed < 3.5, f"connect took {elapsed:.1f} s for a 2 s timeout: {message}"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_command_cut_mid_run_is_sent_once_and_the_host_reconnects(sshd: Sshd, scheme: str, tmp_path: Path) -> None:
    """Regression: testinfra's paramiko backend sent a command again over a new connection when the
    first one died while it ran, so a connection lost mid-apply ran cisaudit/host/scripts/apply.sh twice."""
    marker = tmp_path / "sent"
    with Relay(sshd.port) as relay:
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{relay.port} {sshd.host_key_line}\n")
        spec = f"{scheme}://root@127.0.0.1:{relay.port}?ssh_identity_file={sshd.client_key}"
        host = open_host(spec, ConnectOptions(known_hosts=str(known_hosts), command_timeout=60))
        cut: list[int] = []

        def cut_once_sent() -> None:
            deadline = time.monotonic() + 30
            while not marker.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            cut.append(relay.cut())

        cutter = threading.Thread(target=cut_once_sent)
        cutter.start()
        start = time.monotonic()
        with pytest.raises(HostError) as info:
            host.run(f"echo sent >> {marker}; sleep 20")
        cutter.join()
        assert cut == [1] and time.monotonic() - start < 10
        assert scheme == "ssh" or str(info.value) == "connection lost during the command"
        assert "\n" not in str(info.value)
        assert host.run("echo again").stdout == "again\n"  # a new connection for the next command
    assert marker.read_text() == "sent\n", "the command ran more than once"


@pytest.mark.parametrize("scheme", [*SCHEMES, "local"])
def test_output_over_the_cap_is_host_error(sshd: Sshd, scheme: str, tmp_path: Path) -> None:
    """Regression: a host could send without limit and every byte was kept in memory."""
    options = ConnectOptions(
        known_hosts=str(sshd.write_known_hosts(tmp_path / "known_hosts")), command_timeout=30, max_output_bytes=1 << 20
    )
    host = open_host("local://" if scheme == "local" else sshd.spec(scheme), options)
    assert len(host.run("head -c 1000000 /dev/zero; head -c 48000 /dev/zero >&2").stdout_bytes) == 1_000_000
    start = time.monotonic()
    with pytest.raises(HostError, match=r"^command output over the limit of 1048576 bytes \(--max-output-mb\)"):
        host.run("head -c 600000 /dev/zero >&2; yes")  # stdout and stderr count together
    assert time.monotonic() - start < 10


@pytest.mark.parametrize("scheme", SCHEMES)
def test_large_stderr_does_not_hang(sshd: Sshd, scheme: str, tmp_path: Path) -> None:
    options = ConnectOptions(known_hosts=str(sshd.write_known_hosts(tmp_path / "known_hosts")), command_timeout=60)
    start = time.monotonic()
    result = open_host(sshd.spec(scheme), options).run(
        "head -c 3500000 /dev/zero | tr '\\0' E >&2; printf 'stdout after stderr'"
    )
    assert (result.rc, result.stdout, len(result.stderr_bytes)) == (0, "stdout after stderr", 3_500_000)
    assert set(result.stderr_bytes) == {ord("E")}
    assert time.monotonic() - start < 30


@pytest.mark.filterwarnings("ignore:Unknown ssh-ed25519 host key:UserWarning")  # its WarningPolicy
def test_testinfra_own_paramiko_backend_hangs_on_large_stderr(sshd: Sshd) -> None:
    """Why the test above matters: testinfra's backend, same server and command, is still stuck after 5 s."""
    backend = ParamikoBackend(f"root@127.0.0.1:{sshd.port}", ssh_identity_file=str(sshd.client_key))
    done = threading.Event()

    def run() -> None:
        with contextlib.suppress(Exception):  # the channel is closed below
            backend.run("head -c 3500000 /dev/zero | tr '\\0' E >&2; echo end")
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert not done.wait(5), "testinfra's paramiko backend no longer hangs: docs/kernel-behaviour.md is out of date"
    backend.client.close()


@pytest.mark.parametrize("spec", ["paramiko://", "paramiko://h:99999", "ftp://x", "ssh://:22", "", "a b"])
def test_malformed_spec_is_host_error(spec: str) -> None:
    with pytest.raises(HostError) as info:
        open_host(spec, ConnectOptions())
    assert str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("via", ["spec", "options"])
def test_sudo_wraps_commands(sshd: Sshd, scheme: str, via: str, tmp_path: Path) -> None:
    known_hosts = str(sshd.write_known_hosts(tmp_path / "known_hosts"))
    if open_host(sshd.spec(scheme), ConnectOptions(known_hosts=known_hosts)).run("command -v sudo").rc != 0:
        unavailable("sudo is not installed on the test host")
    if via == "spec":
        host = open_host(sshd.spec(scheme, sudo="true", sudo_user="nobody"), ConnectOptions(known_hosts=known_hosts))
    else:
        host = open_host(sshd.spec(scheme), ConnectOptions(known_hosts=known_hosts, sudo=True, sudo_user="nobody"))
    result = host.run('id -un; echo "$SUDO_USER:$SUDO_COMMAND"')
    assert result.rc == 0, result.stderr
    assert result.stdout.startswith("nobody\nroot:/bin/sh -c "), result.stdout
    assert result.command.startswith(b"sudo -u nobody /bin/sh -c ")


def run_suite(hosts: str, known_hosts: Path, out: Path) -> tuple[subprocess.CompletedProcess[str], ET.Element]:
    """The compliance suite as a user runs it, from the repo root; returns the run and its JUnit XML."""
    out.mkdir()
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        f"--hosts={hosts}",
        f"--known-hosts={known_hosts}",
        "--controls",
        "1.1.4,1.1.6",
        "-p",
        "no:cacheprovider",
        f"--junitxml={out / 'junit.xml'}",
        f"--html={out / 'r.html'}",
    ]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), f"suite did not run (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    assert (out / "r.html").stat().st_size > 0
    return proc, ET.parse(out / "junit.xml").getroot()


def cases(root: ET.Element) -> list[tuple[ET.Element, dict[str, str]]]:
    return [(tc, {p.get("name", ""): p.get("value", "") for p in tc.iter("property")}) for tc in root.iter("testcase")]


def test_end_to_end_over_paramiko(sshd: Sshd, tmp_path: Path, kernel_still: None) -> None:
    spec = sshd.spec("paramiko")
    proc, root = run_suite(spec, sshd.write_known_hosts(tmp_path / "known_hosts"), tmp_path / "out")
    written = proc.stdout + proc.stderr + "".join(f.read_text() for f in (tmp_path / "out").iterdir())
    assert str(sshd.client_key) not in written, "the identity file's path leaked into the output"
    found = cases(root)
    # 4 host checks + 2 controls x (live, persisted)
    assert len(found) == len(HOST_CHECKS) + 4  # the host checks, 2 controls x (live, persisted)
    for tc, props in found:
        assert {"control_id", "host", "check", "verdict"} <= props.keys(), props
        assert props["host"] == shown(spec) and shown(spec) in tc.get("name", "")
        assert props["control_id"] in tc.get("name", "") and props["control_id"] in ("host", "1.1.4", "1.1.6")
        assert props["verdict"] in ("pass", "fail", "not-applicable"), props
        assert props["remote_commands"] == "1", "one batched probe per host"
        assert tc.find("error") is None


def test_end_to_end_host_key_mismatch_errors_only_that_host(
    sshd: Sshd, tmp_path: Path, impostor_key: str, kernel_still: None
) -> None:
    spec = sshd.spec("paramiko")
    sessions = session_log(sshd)
    proc, root = run_suite(
        f"{spec},local://", sshd.write_known_hosts(tmp_path / "known_hosts", impostor_key), tmp_path / "out"
    )
    assert proc.returncode == 1
    by_host: dict[str, list[tuple[ET.Element, dict[str, str]]]] = {}
    for tc, props in cases(root):
        by_host.setdefault(props["host"], []).append((tc, props))
    assert sorted(by_host) == sorted([shown(spec), "local://"]) and all(
        len(v) == len(HOST_CHECKS) + 4 for v in by_host.values()
    )
    for tc, props in by_host[shown(spec)]:
        error = tc.find("error")
        assert error is not None and props["verdict"] == "error"
        reason = props["summary"]
        assert reason.startswith("host key mismatch for 127.0.0.1") and "\n" not in reason
        assert reason in error.get("message", "")
    for tc, props in by_host["local://"]:  # the other host goes on
        assert props["verdict"] in ("pass", "fail", "not-applicable") and tc.find("error") is None, props
    assert session_log(sshd) == sessions, "a session was opened despite the mismatch"


def test_known_hosts_option_with_space_separated_file_outside_repo(tmp_path: Path) -> None:
    """Regression: pytest took a space-separated FILE outside the repo for a test path and so never
    read pytest.ini (cisaudit/plugin/inifile.py finds it once the plugin's options are known)."""
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--hosts=local://",
            "--known-hosts",
            str(known_hosts),
            "--controls",
            "1.1.6",
            "-p",
            "no:cacheprovider",
            f"--junitxml={tmp_path / 'j.xml'}",
            f"--html={tmp_path / 'r.html'}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode in (0, 1), proc.stderr


USERS_OWN_TEST = """
def test_users_own(host):
    host.run("touch {marker}")
"""


def run_users_own_test(sshd: Sshd, scheme: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A user's own testinfra test (the `host` fixture) in a session with the suite's plugin."""
    test = tmp_path / "test_mine.py"
    test.write_text(USERS_OWN_TEST.format(marker=tmp_path / "ran"))
    cmd = [sys.executable, "-m", "pytest", "-c", str(REPO / "pytest.ini"), str(test), f"--hosts={sshd.spec(scheme)}"]
    outputs = [f"--junitxml={tmp_path / 'j.xml'}", f"--html={tmp_path / 'r.html'}"]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
    return subprocess.run([*cmd, *outputs, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_host_fixture_takes_the_suites_trust_decision(
    sshd: Sshd, scheme: str, tmp_path: Path, impostor_key: str
) -> None:
    """--known-hosts holds for a user's own tests too: a host whose key does not match is refused
    (testinfra's paramiko only warned and ran the command), the right key is trusted (testinfra's
    ssh never read --known-hosts), and a missing --known-hosts is a usage error."""
    sessions = session_log(sshd)
    wrong = sshd.write_known_hosts(tmp_path / "wrong_known_hosts", impostor_key)
    proc = run_users_own_test(sshd, scheme, tmp_path, f"--known-hosts={wrong}")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert not (tmp_path / "ran").exists() and session_log(sshd) == sessions, "the command ran on the impostor"

    missing = run_users_own_test(sshd, scheme, tmp_path, f"--known-hosts={tmp_path / 'missing'}")
    assert missing.returncode == 4 and "--known-hosts" in missing.stderr and "cannot read it" in missing.stderr
    assert session_log(sshd) == sessions

    right = sshd.write_known_hosts(tmp_path / "known_hosts")
    proc = run_users_own_test(sshd, scheme, tmp_path, f"--known-hosts={right}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "ran").exists()
