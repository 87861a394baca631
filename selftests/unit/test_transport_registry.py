"""The suite's verified backends do not replace testinfra's own outside a session
(docs/architecture.md); inside one, testinfra's SSH names take the session's trust decision."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import testinfra
import testinfra.backend
from testinfra.backend.local import LocalBackend
from testinfra.backend.paramiko import ParamikoBackend
from testinfra.backend.ssh import SafeSshBackend, SshBackend

from cisaudit.host.paramiko_backend import SessionParamikoBackend, VerifiedParamikoBackend
from cisaudit.host.ssm.backend import SsmBackend
from cisaudit.host.transport import (
    ConnectOptions,
    SessionSafeSshBackend,
    SessionSshBackend,
    TimedLocalBackend,
    VerifiedSshBackend,
    install_session_trust,
    open_host,
    remove_session_trust,
)
from selftests.suite_runner import require


def test_testinfra_registry_keeps_its_own_backends() -> None:
    for name, klass in (("local", LocalBackend), ("ssh", SshBackend), ("paramiko", ParamikoBackend)):
        assert testinfra.backend.get_backend_class(name) is klass
    assert testinfra.backend.get_backend_class("ssm") is SsmBackend  # a new name, for users' own tests


def test_open_host_uses_the_verified_backends() -> None:
    # Backends connect lazily: nothing listens on port 1 and nothing is contacted here.
    for spec, klass in (
        ("local://", TimedLocalBackend),
        ("ssh://root@127.0.0.1:1", VerifiedSshBackend),
        ("paramiko://root@127.0.0.1:1", VerifiedParamikoBackend),
    ):
        host = open_host(spec, ConnectOptions(command_timeout=7))
        assert type(host.backend) is klass
        assert host.backend.command_timeout == 7
    assert type(testinfra.get_host("paramiko://root@127.0.0.1:1").backend) is ParamikoBackend


def test_spec_parameters_reach_the_backend() -> None:
    host = open_host("paramiko://root@127.0.0.1:1?sudo=true&sudo_user=audit", ConnectOptions())
    assert host.backend.sudo is True and host.backend.sudo_user == "audit"


def test_a_session_trust_decision_holds_for_testinfra_hosts_and_is_undone() -> None:
    """The `host` fixture and testinfra.get_host in a user's tests: --known-hosts, accept-new and
    the timeouts apply as they do to the suite's own connections (nothing is contacted here)."""
    options = ConnectOptions(known_hosts="/etc/fleet_known_hosts", connect_timeout=3, command_timeout=9)
    install_session_trust(options)
    try:
        paramiko = testinfra.backend.get_backend("paramiko://root@127.0.0.1:1", sudo=True)
        ssh = testinfra.backend.get_backend("ssh://root@127.0.0.1:1")
        safe = testinfra.backend.get_backend("safe-ssh://root@127.0.0.1:1")
        spec_wins = testinfra.backend.get_backend("paramiko://root@127.0.0.1:1?timeout=5")
    finally:
        remove_session_trust()
    assert type(paramiko) is SessionParamikoBackend and isinstance(ssh, SessionSshBackend)
    assert type(safe) is SessionSafeSshBackend and isinstance(safe, SafeSshBackend)
    assert (paramiko.known_hosts, paramiko.timeout, paramiko.command_timeout, paramiko.sudo) == (
        "/etc/fleet_known_hosts",
        3,
        9,
        True,
    )
    assert spec_wins.timeout == 5
    for backend in (ssh, safe):
        assert "StrictHostKeyChecking=yes" in backend.ssh_extra_args
        assert 'UserKnownHostsFile="/etc/fleet_known_hosts"' in backend.ssh_extra_args
    test_testinfra_registry_keeps_its_own_backends()


def test_a_callers_ssh_extra_args_come_after_the_trust_options() -> None:
    """ssh takes the first value of an option: a caller's StrictHostKeyChecking=no cannot win."""
    backend = VerifiedSshBackend("root@127.0.0.1", ssh_extra_args="-o StrictHostKeyChecking=no")
    assert backend.ssh_extra_args.index("StrictHostKeyChecking=yes") < backend.ssh_extra_args.index(
        "StrictHostKeyChecking=no"
    )


@pytest.mark.parametrize("path", ["/k  h/known  hosts", '/odd"quote\\back%percent', "/plain"])
def test_known_hosts_path_reaches_ssh_as_one_file(path: str) -> None:
    """Issue 21.18: ssh split `--known-hosts "/k  h"` into two files (-G shows one blank between
    them) and expanded % tokens."""
    require(shutil.which("ssh") is not None, "needs the OpenSSH client")
    backend = VerifiedSshBackend("ssh://nobody@127.0.0.1", known_hosts=path)
    shown = subprocess.run(
        ["sh", "-c", f"ssh -G {backend.ssh_extra_args} 127.0.0.1"], capture_output=True, text=True, check=True
    ).stdout
    line = next(x for x in shown.splitlines() if x.startswith("userknownhostsfile "))
    assert line == f"userknownhostsfile {path} {Path.home()}/.ssh/known_hosts"


def test_paramiko_is_imported_only_by_its_backend() -> None:
    """Regression: cisaudit.host.transport imported paramiko (and cryptography) on every run, about
    0.1 s and a few hundred path lookups a local:// or ssh:// audit never needed."""
    code = (
        "import importlib, pkgutil, sys, cisaudit\n"
        "for m in pkgutil.walk_packages(cisaudit.__path__, 'cisaudit.'):\n"
        "    if m.name != 'cisaudit.host.paramiko_backend' and not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "from cisaudit.host.transport import ConnectOptions, open_host\n"
        "open_host('local://', ConnectOptions()).run('true')\n"
        "sys.stderr.write(' '.join(sorted(n for n in sys.modules if n.split('.')[0] == 'paramiko')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr == ""


def test_paramiko_errors_are_described_once_its_backend_is_loaded() -> None:
    import paramiko  # noqa: PLC0415 (the backend's own import)

    from cisaudit.host.paramiko_backend import describe_paramiko_error  # noqa: PLC0415
    from cisaudit.host.transport import describe_error  # noqa: PLC0415

    assert describe_error(paramiko.AuthenticationException("no key")) == "authentication failed: no key"
    assert describe_error(paramiko.SSHException("kex failed")) == "cannot connect: kex failed"
    assert describe_error(TimeoutError("slow")) == "connection timed out: slow"
    assert describe_paramiko_error(OSError("x")) is None
