"""The naive baseline: CIS Docker 1.1 audit rules checked the way testinfra tests usually are.

One or more remote commands per check (package/service modules, `auditctl -l` per control,
`host.file(...)` per path and per rules file). Kept only to measure against; not a product test.
Run: pytest bench/naive/test_naive_audit.py --hosts=... (see bench/benchmark.py for isolation).
"""

import pytest

KEY = "docker"
RULES_DIR = "/etc/audit/rules.d"
CONTROLS = [
    ("1.1.3", "/usr/bin/dockerd"),
    ("1.1.4", "/run/containerd"),
    ("1.1.5", "/var/lib/docker"),
    ("1.1.6", "/etc/docker"),
    ("1.1.7", "/lib/systemd/system/docker.service"),
    ("1.1.8", "/run/containerd/containerd.sock"),
    ("1.1.9", "/lib/systemd/system/docker.socket"),
    ("1.1.10", "/etc/default/docker"),
    ("1.1.11", "/etc/docker/daemon.json"),
    ("1.1.12", "/etc/containerd/config.toml"),
    ("1.1.13", "/etc/sysconfig/docker"),
    ("1.1.14", "/usr/bin/containerd"),
    ("1.1.15", "/usr/bin/containerd-shim"),
    ("1.1.16", "/usr/bin/containerd-shim-runc-v1"),
    ("1.1.17", "/usr/bin/containerd-shim-runc-v2"),
    ("1.1.18", "/usr/bin/runc"),
]


def _matches(line: str, path: str) -> bool:
    words = line.split()
    return (f"path={path}" in words or ("-w" in words and path in words)) and KEY in line


def test_auditd_installed(host) -> None:
    assert host.package("auditd").is_installed


def test_auditd_running(host) -> None:
    assert host.service("auditd").is_running


def test_audit_enabled(host) -> None:
    status = host.run("auditctl -s")
    assert status.rc == 0 and ("enabled 1" in status.stdout or "enabled 2" in status.stdout)


@pytest.mark.parametrize(("control", "path"), CONTROLS)
def test_rule_loaded(host, control: str, path: str) -> None:
    if not host.file(path).exists:
        pytest.skip(f"{path} does not exist")
    rules = host.run("auditctl -l").stdout.splitlines()
    assert any(_matches(line, path) for line in rules), f"{control}: no live rule for {path}"


@pytest.mark.parametrize(("control", "path"), CONTROLS)
def test_rule_persisted(host, control: str, path: str) -> None:
    if not host.file(path).exists:
        pytest.skip(f"{path} does not exist")
    assert host.file(RULES_DIR).is_directory
    found = False
    for name in host.run("ls %s", RULES_DIR).stdout.split():
        rules_file = host.file(f"{RULES_DIR}/{name}")
        if name.endswith(".rules") and rules_file.is_file:
            found |= any(_matches(line, path) for line in rules_file.content_string.splitlines())
    assert found, f"{control}: no rule for {path} in {RULES_DIR}"
