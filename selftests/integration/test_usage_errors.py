"""Usage errors of the real suite, run as a user runs it (a pytest subprocess from the repo root):
each is found before any host is touched, is one line that says what to do, exits 4 and writes
no output. A host on a TCP listener of this test stands by, counting every connection; it also
records the SSH client's first line, so the test sees which client --connection chose."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest

from selftests.suite_runner import output_args, require, run_pytest

OUTPUTS = ("compliance.html", "results.json", "results.xccdf.xml", "junit.xml", "report.html")


class Listener:
    """A TCP port on 127.0.0.1 that counts connections and keeps each client's first line."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.banners: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    self.banners.append(conn.recv(255))
                except OSError:
                    self.banners.append(b"")

    def __enter__(self) -> Listener:
        self.thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    with Listener() as server:
        yield server


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_pytest(*output_args(tmp_path / "out"), *args, timeout=300, env={"HOME": str(tmp_path), **(env or {})})


def _files(tmp_path: Path) -> dict[str, str]:
    """Bad input files, as users make them."""
    utf16 = tmp_path / "waivers-utf16.yaml"
    utf16.write_bytes("1.1.4:\n  justification: rootless containerd\n".encode("utf-16"))  # BOM, as Notepad saves
    latin1 = tmp_path / "waivers-latin1.yaml"
    latin1.write_bytes("1.1.4:\n  justification: géré ailleurs\n".encode("latin-1"))
    (tmp_path / "inventory.ini").write_text("[docker]\nweb1\n")
    (tmp_path / "unapproved.yaml").write_text("1.1.4:\n  justification: x\n  expiration_date: 2000-01-01\n")
    (tmp_path / "newer.json").write_text('{"schema_version": "3.0", "results": []}')
    (tmp_path / "cut.json").write_text('{"schema_version": "1.3", "results": [{"host": "a"')
    return {
        "utf16": str(utf16),
        "latin1": str(latin1),
        "inventory": str(tmp_path / "inventory.ini"),
        "tmp": str(tmp_path),
    }


BAD = {  # arguments (the host is added unless they name --hosts) -> what the one line says
    ("--hosts=",): "--hosts is empty (an unset variable?)",
    ("--hosts=,",): "entry 1 is empty",
    ("--hosts={host},",): "entry 2 is empty",
    ("--connection=ansible", "--ansible-inventory={inventory}"): "--ansible-inventory: the CIS checks do not read",
    ("--connection=ansible",): "--connection=ansible: the CIS checks connect over local, ssh, paramiko, ssm, docker",
    ("--ssh-extra-args=-o StrictHostKeyChecking=no",): "--ssh-config FILE",
    ("--known-hosts={tmp}/missing_known_hosts",): "--known-hosts {tmp}/missing_known_hosts: cannot read it",
    ("--results-json={tmp}",): "--results-json {tmp}: is a directory",
    ("--xccdf=/dev/full",): "--xccdf /dev/full: not a regular file",
    ("--compliance-report=/proc/cisaudit.html",): "--compliance-report /proc/cisaudit.html: cannot write there",
    ("--waivers=",): "--waivers is empty",
    ("--waivers={utf16}",): "saved as UTF-16",
    ("--waivers={latin1}",): "not UTF-8 (byte 0xe9",
    ("--controls=1.1.99",): "valid ids: 1.1.3, 1.1.4",
    ("--controls=",): "--controls is empty",
    ("--audit-key=",): "--audit-key is empty",
    ("--connect-timeout=-5",): "--connect-timeout -5: give a number of seconds above 0",
    ("--command-timeout=0",): "--command-timeout 0",
    ("--aggregate-above=-1",): "--aggregate-above -1",
    ("--max-output-mb=0",): "--max-output-mb 0",
    ("--dry-run",): "add --remediate or --backout",
    ("--ssm-targets=web1",): "--ssm-targets: 'web1' is neither",
    ("--reboot-proof",): "add --require-all (golden image) or --i-may-reboot",
    ("--i-may-reboot",): "--i-may-reboot only permits --reboot-proof",
    ("--reboot-proof", "--require-all", "--remediate", "--dry-run"): "--dry-run changes nothing",
    ("--hosts=local://", "--reboot-proof", "--i-may-reboot"): "cannot reboot local://, the machine running",
    ("--baseline={tmp}/newer.json",): "schema version 3.0 is newer than this cisaudit reads (2.0)",
    ("--baseline={tmp}/cut.json",): "--baseline: {tmp}/cut.json: truncated or not JSON at byte",
    ("--baseline=",): "--baseline is empty",
    ("--waivers={tmp}/unapproved.yaml", "--require-approved-waivers"): (
        "--require-approved-waivers: {tmp}/unapproved.yaml:1: the waiver of 1.1.4 has no approved_by"
    ),
    ("--fail-on=old",): "--fail-on 'old': give any or new",
}


@pytest.mark.parametrize("args", BAD, ids=[" ".join(a) for a in BAD])
def test_bad_invocation_is_one_line_exit_4_and_touches_no_host(
    tmp_path: Path, listener: Listener, args: tuple[str, ...]
) -> None:
    host = f"paramiko://root@127.0.0.1:{listener.port}"
    given = [a.format(host=host, **_files(tmp_path)) for a in args]
    hosts = [] if any(a.startswith("--hosts=") for a in given) else [f"--hosts={host}"]
    proc = run(tmp_path, *hosts, *given)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), proc.stderr
    assert BAD[args].format(**_files(tmp_path)) in lines[0], lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr and proc.stdout == ""
    assert listener.banners == [], "a host was contacted"
    assert not any((tmp_path / "out" / name).exists() for name in OUTPUTS)


def test_connection_names_the_client_of_bare_hosts(tmp_path: Path, listener: Listener) -> None:
    """testinfra's --connection=ssh: a bare host goes over OpenSSH, not paramiko; the host then
    errors (the listener is no SSH server) and the run goes on to its reports."""
    for connection, client in (("ssh", b"SSH-2.0-OpenSSH"), ("paramiko", b"SSH-2.0-paramiko")):
        del listener.banners[:]
        proc = run(
            tmp_path / connection,
            f"--connection={connection}",
            f"--hosts=root@127.0.0.1:{listener.port}",
            "--controls=1.1.6",
            "--connect-timeout=5",
        )
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert listener.banners and all(b.startswith(client) for b in listener.banners), listener.banners


SABOTEUR = '''
import os

def pytest_sessionstart(session):
    """After the start checks: the results.json path becomes a directory."""
    os.makedirs(session.config.getoption("results_json"))
'''


@contextlib.contextmanager
def full_disk(path: Path) -> Iterator[Path]:
    """A 4 KiB tmpfs, filled: an (empty) file can be made at the start check, no byte written at the end."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(path)], capture_output=True)
    require(mounted.returncode == 0, f"needs to mount a tmpfs (root): {mounted.stderr!r}")
    try:
        with contextlib.suppress(OSError), (path / "filler").open("wb") as filler:
            filler.write(b"x" * 8192)
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.mark.parametrize("how", ["directory", "full disk"])
def test_an_output_that_fails_at_the_end_is_one_line_and_the_others_are_written(tmp_path: Path, how: str) -> None:
    out = tmp_path / "out"
    with contextlib.ExitStack() as stack:
        if how == "directory":
            (tmp_path / "saboteur.py").write_text(SABOTEUR)
            failing = out / "results.json"
            args = ["-p", "saboteur", f"--results-json={failing}"]
        else:
            failing = stack.enter_context(full_disk(tmp_path / "small")) / "results.json"
            args = [f"--results-json={failing}"]
        proc = run(tmp_path, "--hosts=local://", "--controls=1.1.6", *args, env={"PYTHONPATH": str(tmp_path)})
        left = failing.is_file()
    output = proc.stdout + proc.stderr
    why = "Is a directory" if how == "directory" else "No space left on device"
    assert "Traceback" not in output and "INTERNALERROR" not in output, output[-3000:]
    assert f"--results-json: cannot write {failing}: {why}" in proc.stdout, proc.stdout[-3000:]
    assert not left, "a truncated results.json was left"
    assert proc.returncode == 1, output[-3000:]
    assert "compliance per host" in proc.stdout  # the summary is not lost
    for name in ("compliance.html", "results.xccdf.xml", "junit.xml", "report.html"):
        assert (out / name).stat().st_size > 0, name


def test_help_shows_hosts_with_the_suite(tmp_path: Path) -> None:
    proc = run_pytest("--help", "--hosts=", "--ssm-targets=tag:Role=x")
    assert proc.returncode == 0, proc.stderr  # --help is not refused for the other options
    ours = proc.stdout.split("CIS Docker audit-rule checks:", 1)[1].split("\n\n", 1)[0]
    hosts = " ".join(ours.split("--benchmark", 1)[0].split())
    assert hosts.startswith("--hosts=HOSTS") and "default local://" in hosts and "ssm://i-" in hosts, hosts
    assert "--ssh-extra-args=SSH_EXTRA_ARGS SSH extra args. cisaudit: refused" in " ".join(proc.stdout.split())
