"""--reboot-proof over SSM against the project's SSM emulator (selftests/ssm_emulator.py), which
runs each script on this machine and cannot reboot: what it can show is that the reboot goes out
as one AWS-RunShellScript exiting 194 (the agent's reboot request, not wrapped in the suite's
frame, which never exits 194), and that a host that keeps its boot id ends in that host's error
within --command-timeout, not in a proof."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cisaudit.host.reboot import reboot_once
from cisaudit.host.session import HostSession
from cisaudit.host.transport import ConnectOptions, HostError
from selftests.ssm_emulator import SsmEmulator

IID = "i-0123456789abcdef0"


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[SsmEmulator]:
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with SsmEmulator({IID: "local://"}) as emu:
        for name, value in emu.environ.items():
            monkeypatch.setenv(name, value)
        yield emu


def test_the_reboot_is_one_unframed_exit_194_and_no_new_boot_is_the_hosts_error(emulator: SsmEmulator) -> None:
    session = HostSession(
        f"ssm://{IID}", ConnectOptions(ssm_region="us-east-1", command_timeout=120), "docker", version="1.7.0"
    )
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    started = time.monotonic()
    with pytest.raises(HostError, match=f"did not answer with a new boot id within 8 s .*boot id before: {boot_id}"):
        reboot_once(session, 8)
    assert time.monotonic() - started < 240
    assert emulator.stats()["reboots"] == 1
    assert session.reboot is not None and session.reboot.boot_id_before == boot_id
    assert session.reboot.persisted_before  # recorded before the reboot was asked for
    with pytest.raises(HostError, match="new boot id"):  # every case of the host gets the same error
        reboot_once(session, 8)
    assert emulator.stats()["reboots"] == 1  # and the host is not rebooted twice
