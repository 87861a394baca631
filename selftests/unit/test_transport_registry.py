"""The suite's verified backends do not replace testinfra's own (docs/architecture.md)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import testinfra
import testinfra.backend
from testinfra.backend.local import LocalBackend
from testinfra.backend.paramiko import ParamikoBackend
from testinfra.backend.ssh import SshBackend

from cisaudit.host.ssm.backend import SsmBackend
from cisaudit.host.transport import (
    ConnectOptions,
    TimedLocalBackend,
    VerifiedParamikoBackend,
    VerifiedSshBackend,
    open_host,
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
