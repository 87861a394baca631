"""The test hosts themselves: each VM has its own kernel audit subsystem and its own host key,
host keys are checked strictly, and a fleet leaves no QEMU or overlay behind however it ends."""

from __future__ import annotations

import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import paramiko
import pytest

from selftests.suite_runner import REPO, require
from selftests.testhosts.fleet import Fleet, sweep_stale
from selftests.testhosts.image import unavailable_reason
from selftests.testhosts.qemu import QemuError
from selftests.testhosts.vm import ssh_client

pytestmark = pytest.mark.vm


@pytest.fixture(autouse=True)
def _testhosts_available() -> None:
    """Tests here that start their own Fleet skip (fail under CI=true) like the fleet fixture."""
    reason = unavailable_reason()
    require(reason is None, reason or "")


def processes_using(path: Path) -> list[str]:
    """Command lines of live processes that name path (QEMU and its helpers name their dir)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmdline and str(os.getpid()) != proc.name:
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def test_each_vm_has_its_own_kernel_audit_subsystem(fleet: Fleet) -> None:
    assert len(fleet) >= 2, "set CISAUDIT_FLEET_SIZE to 2 or more"
    for vm in fleet:
        rc, out, err = vm.run("auditctl -s")
        assert rc == 0, f"{vm.name}: {err}"
        assert re.search(r"^enabled [12]$", out, re.M), out
    key = f"fleet-{uuid.uuid4().hex[:12]}"
    first, others = fleet[0], list(fleet)[1:]
    if re.search(r"^enabled 2$", first.run("auditctl -s")[1], re.M):
        fleet.reset(first)  # an earlier test left its rules immutable
    rule = f"-w /etc/hostname -p wa -k {key}"
    rc, _, err = first.run(f"auditctl {rule}")
    assert rc == 0, err
    try:
        assert key in first.run("auditctl -l")[1]
        for vm in others:
            assert key not in vm.run("auditctl -l")[1], f"rule added on {first.name} shows on {vm.name}"
        require(shutil.which("auditctl") is not None and os.geteuid() == 0, "needs root and auditctl here")
        here = subprocess.run(["auditctl", "-l"], capture_output=True, text=True, timeout=30)
        require(here.returncode == 0, f"auditctl -l fails on this machine: {here.stderr.strip()}")
        assert key not in here.stdout, "rule added in a VM shows in this machine's kernel"
    finally:
        first.run(f"auditctl -W /etc/hostname -p wa -k {key}")


def test_host_keys_are_distinct_and_what_each_vm_presents(fleet: Fleet) -> None:
    entries = [line.split() for line in fleet.known_hosts.read_text().splitlines()]
    assert sorted(e[0] for e in entries) == sorted(f"[127.0.0.1]:{vm.port}" for vm in fleet)
    assert len({e[2] for e in entries}) == len(fleet), "host keys repeat across VMs"
    names = set()
    for vm in fleet:
        transport = vm.ssh().get_transport()
        assert transport is not None
        presented = transport.get_remote_server_key()
        assert f"{presented.get_name()} {presented.get_base64()}" == vm.host_key
        rc, out, _ = vm.run("cat /etc/ssh/ssh_host_ed25519_key.pub; hostname")
        pub, name = out.splitlines()
        assert rc == 0 and pub.split()[:2] == vm.host_key.split()
        names.add(name)
    assert len(names) == len(fleet)


def test_a_wrong_or_missing_known_hosts_entry_is_refused(fleet: Fleet, tmp_path: Path) -> None:
    first, second = fleet[0], fleet[1]
    swapped = tmp_path / "known_hosts"
    swapped.write_text(f"[127.0.0.1]:{first.port} {second.host_key}\n")
    with pytest.raises(paramiko.BadHostKeyException):
        ssh_client(first.port, first.client_key, known_hosts=swapped)
    (tmp_path / "empty").write_text("")
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        ssh_client(first.port, first.client_key, known_hosts=tmp_path / "empty")


def test_ssh_config_gives_strict_openssh_access(fleet: Fleet, tmp_path: Path) -> None:
    require(shutil.which("ssh") is not None, "needs the OpenSSH client (apt-get install openssh-client)")
    base = ["ssh", "-F", str(fleet.ssh_config), "-o", "BatchMode=yes"]
    ok = subprocess.run([*base, "cisaudit-vm0", "hostname"], capture_output=True, text=True, timeout=60)
    assert (ok.returncode, ok.stdout.strip()) == (0, "cisaudit-vm0"), ok.stderr
    swapped = tmp_path / "known_hosts"
    swapped.write_text(f"[127.0.0.1]:{fleet[0].port} {fleet[1].host_key}\n")
    bad = subprocess.run([*base, "-o", f"UserKnownHostsFile={swapped}", "cisaudit-vm0", "true"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 255 and "HOST IDENTIFICATION HAS CHANGED" in bad.stderr, bad.stderr


def test_fleet_leaves_nothing_behind_when_the_body_fails() -> None:
    with pytest.raises(RuntimeError, match="scenario failed"), Fleet(1) as fleet:
        workdir, pid = fleet.dir, fleet[0].proc.pid if fleet[0].proc else -1
        assert fleet[0].run("true")[0] == 0
        raise RuntimeError("scenario failed")
    assert not workdir.exists()
    assert not Path(f"/proc/{pid}").exists()
    assert not processes_using(workdir)


def test_reset_gives_a_clean_disk_on_the_same_address() -> None:
    with Fleet(1) as fleet:
        vm = fleet[0]
        assert vm.run("touch /root/dirty")[0] == 0
        port, key = vm.port, vm.host_key
        fleet.reset(vm)
        assert (vm.port, vm.host_key) == (port, key)
        assert vm.run("test -e /root/dirty")[0] == 1


def test_reset_all_gives_each_vm_a_clean_disk_on_its_address(fleet: Fleet) -> None:
    vms = list(fleet)[:2]
    for vm in vms:
        assert vm.run(f"echo {vm.name} > /root/dirty")[0] == 0
    addresses = [(vm.port, vm.host_key) for vm in vms]
    fleet.reset_all(vms)
    assert [(vm.port, vm.host_key) for vm in vms] == addresses
    for vm in vms:
        assert vm.run("test -e /root/dirty")[0] == 1
        assert vm.run("hostname")[1].strip() == f"cisaudit-{vm.name}"


def test_reboot_boots_the_same_disk_for_real(fleet: Fleet) -> None:
    vm = fleet.reset(fleet[0])
    boot_id = vm.run("cat /proc/sys/kernel/random/boot_id")[1]
    # Written without sync: only a clean poweroff puts it on the disk.
    assert vm.run("echo kept > /root/on-disk; touch /run/volatile")[0] == 0
    old_pid = vm.proc.pid if vm.proc else -1
    fleet.reboot(vm)
    assert vm.proc and vm.proc.pid != old_pid and not Path(f"/proc/{old_pid}").exists()
    rc, out, err = vm.run("cat /proc/sys/kernel/random/boot_id /root/on-disk; test -e /run/volatile; echo $?")
    new_boot_id, kept, volatile = out.splitlines()
    assert rc == 0, err
    assert new_boot_id != boot_id.strip() and kept == "kept" and volatile == "1"
    # The handed-back spec's key still verifies against the fleet's known_hosts, strictly.
    strict = ssh_client(vm.port, vm.client_key, known_hosts=fleet.known_hosts)
    try:
        transport = strict.get_transport()
        assert transport is not None
        presented = transport.get_remote_server_key()
        assert f"{presented.get_name()} {presented.get_base64()}" == vm.host_key
    finally:
        strict.close()
    assert vm.spec == f"paramiko://root@127.0.0.1:{vm.port}?ssh_identity_file={vm.client_key}"
    assert f"[127.0.0.1]:{vm.port} {vm.host_key}" in fleet.known_hosts.read_text().splitlines()


def test_a_vm_that_does_not_power_off_is_killed_and_reported(fleet: Fleet) -> None:
    vm = fleet.reset(fleet[0])
    assert vm.run("systemctl mask poweroff.target")[0] == 0
    proc = vm.proc
    try:
        with pytest.raises(QemuError, match="still running 10 s after poweroff"):
            fleet.reboot(vm, poweroff_timeout=10)
        assert proc and proc.returncode is not None  # killed, not left behind
    finally:
        fleet.reset(vm)


# SIGINT as a terminal's Ctrl-C gives it: a shell's background job (.ci/run's e2e session) starts
# with SIGINT ignored, and Python then installs no KeyboardInterrupt handler.
CHILD = """
import signal
import time
signal.signal(signal.SIGINT, signal.default_int_handler)
from selftests.testhosts.fleet import Fleet
from selftests.testhosts.image import unavailable_reason
with Fleet(1) as fleet:
    print(fleet.dir, flush=True)
    time.sleep(600)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_a_signalled_harness_leaves_nothing_behind(sig: signal.Signals) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        sel = selectors.DefaultSelector()
        sel.register(child.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        assert sel.select(timeout=400), "child fleet never came up"
        workdir = Path(child.stdout.readline().strip())  # type: ignore[union-attr]
        assert processes_using(workdir), "no QEMU running for the child's fleet"
        child.send_signal(sig)
        assert child.wait(60) == -sig  # Python re-raises an unhandled KeyboardInterrupt as SIGINT
    finally:
        child.kill()
        child.wait()
    if sig == signal.SIGKILL:
        # No handler runs: PDEATHSIG takes QEMU down, the next fleet sweeps the directory.
        deadline = time.monotonic() + 15
        while processes_using(workdir) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not processes_using(workdir)
        sweep_stale()
    assert not processes_using(workdir)
    assert not workdir.exists()
