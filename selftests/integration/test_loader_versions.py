"""The loader model against this machine's real augenrules and auditctl (3.0.9 on Debian 12).

Each test writes rules.d as a user might, runs `augenrules --load`, probes the host and checks
that the model's boot-time load (cisaudit/model/loader.py, userspace.py) is what the kernel
holds (`auditctl -l`), and that the persisted and live verdicts agree.
"""

from __future__ import annotations

import subprocess

import pytest

from cisaudit.host.session import HostSession
from cisaudit.host.transport import ConnectOptions
from cisaudit.model.catalogue import controls
from cisaudit.model.evaluate import Assessment
from cisaudit.model.verdict import Status
from selftests.kernel import AUDIT_DIR, KernelSandbox, sh

pytestmark = pytest.mark.kernel
RULES_D = AUDIT_DIR / "rules.d"
DOCKER_6 = next(c for c in controls() if c.id == "1.1.6")  # -w /etc/docker -k docker


def _load(kernel: KernelSandbox, files: dict[str, str], dirs: tuple[str, ...] = ()) -> Assessment:
    """Only these rules.d files and directories (the sandbox puts the machine's back), loaded as at boot."""
    kernel.make_path("/etc/docker", "dir")
    for path in RULES_D.glob("*"):
        path.unlink()
    for name in dirs:
        (RULES_D / name).mkdir()
    for name, text in files.items():
        kernel.write_rules_d(name, text)
    kernel.load()
    return Assessment(HostSession("local://", ConnectOptions(), "docker", version="1.7.0").probe(), "docker")


def _agrees(a: Assessment) -> None:
    """The model's boot-time load is the kernel's list after the real load, rule for rule."""
    modelled = sorted(str(l.rule.identity) for l in a.persisted.rules)
    listed = sorted(str(kr.rule.identity) for kr in a.live_state.exit)
    assert modelled == listed, (sh("auditctl -l").stdout, [l.line.text for l in a.persisted.rules])
    for check in ("persisted", "live"):
        assert a.control_verdict(DOCKER_6, check).status != Status.ERROR


def test_space_in_a_file_name_loads_nothing(kernel: KernelSandbox) -> None:
    a = _load(kernel, {"50 docker.rules": "-w /etc/docker -k docker\n"})
    _agrees(a)
    assert sh("auditctl -l").stdout.strip() == "No rules"
    persisted = a.control_verdict(DOCKER_6, "persisted")
    assert persisted.status == Status.FAIL == a.control_verdict(DOCKER_6, "live").status
    assert any("word-splits the file name `50 docker.rules`" in e for e in persisted.evidence), persisted.evidence


def test_directory_named_rules_is_skipped_not_an_error(kernel: KernelSandbox) -> None:
    a = _load(kernel, {"60-docker.rules": "-w /etc/docker -k docker\n"}, dirs=("50.rules",))
    _agrees(a)
    for check in ("persisted", "live"):
        assert a.control_verdict(DOCKER_6, check).status == Status.PASS
    assert a.host_verdict("load-health").status == Status.PASS


def test_carriage_return_stays_in_the_kernels_key(kernel: KernelSandbox) -> None:
    a = _load(kernel, {"60-docker.rules": "-w /etc/docker -k docker\r\n"})
    listed = subprocess.run(["auditctl", "-l"], capture_output=True, check=True).stdout
    assert b"-k docker\r\n" in listed  # bytes: text mode would turn \r\n into \n
    _agrees(a)
    persisted = a.control_verdict(DOCKER_6, "persisted")
    assert persisted.status == Status.FAIL == a.control_verdict(DOCKER_6, "live").status
    assert a.host_verdict("load-health").status == Status.PASS


def test_watch_with_F_key_loads_with_the_key(kernel: KernelSandbox) -> None:
    a = _load(kernel, {"60-docker.rules": "-w /etc/docker -p rwxa -F key=docker\n"})
    assert sh("auditctl -l").stdout.strip() == "-w /etc/docker -p rwxa -k docker"
    _agrees(a)
    for check in ("persisted", "live"):
        assert a.control_verdict(DOCKER_6, check).status == Status.PASS, a.control_verdict(DOCKER_6, check)
    assert a.host_verdict("load-health").status == Status.PASS


def test_rate_limit_fails_event_loss_live_and_after_boot(kernel: KernelSandbox) -> None:
    a = _load(kernel, {"10-base.rules": "-b 8192\n--backlog_wait_time 60000\n", "60-loss.rules": "-r 1\n"})
    assert "rate_limit 1" in sh("auditctl -s").stdout
    verdict = a.host_verdict("event-loss")
    assert verdict.status == Status.FAIL
    assert "live: rate_limit 1 (auditctl -s)" in verdict.summary
    assert f"after boot: rate_limit 1 (`-r 1` at {RULES_D}/60-loss.rules:1)" in verdict.summary
