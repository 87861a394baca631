"""--reboot-proof, the host half: audit, reboot the host through its own transport, wait for a new
boot id, audit again (the comparison is pure: cisaudit/model/reboot_proof.py).

How a host is rebooted: over SSH `systemctl reboot`; over SSM an AWS-RunShellScript that exits
194, which makes the agent reboot the instance and run the script again after the boot (the
script, host/scripts/reboot.sh, only reports the new boot id then). The wait reconnects every few
seconds, each attempt bounded by --connect-timeout, all of them by --command-timeout; it ends when
the host answers with a boot id other than the one recorded before, once systemd has started what
the boot starts (host/scripts/booted.sh), so the audit after the boot does not see a half-booted host.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from cisaudit.host.hostspec import TRANSPORTS, RebootHow
from cisaudit.host.probe import BOOT_ID
from cisaudit.host.shell import compose
from cisaudit.host.transport import HostError
from cisaudit.model.catalogue import Control
from cisaudit.model.evaluate import Assessment
from cisaudit.model.reboot_proof import Proof
from cisaudit.model.verdict import Check, Verdict

POLL_SECONDS = 3.0


def how_for(spec: str) -> RebootHow:
    """The way to reboot the host spec's transport (hostspec.TRANSPORTS); one without a way is
    refused before any host (options.check_reboot_proof)."""
    scheme = spec.split("://", 1)[0] if "://" in spec else "paramiko"
    transport = TRANSPORTS.get(scheme)
    if transport is None or transport.reboot is None:
        raise HostError(f"--reboot-proof cannot reboot a {scheme}:// host")
    return transport.reboot


def render_reboot(boot_id: str, how: RebootHow) -> str:
    return compose({"RB_BEFORE": boot_id, "RB_HOW": how.value}, "reboot.sh")


@dataclass
class Reboot:
    """One host's proof state: the boot ids and the persisted verdicts recorded before the boot."""

    boot_id_before: str = ""
    boot_id_after: str = ""
    persisted_before: dict[str, Verdict] = field(default_factory=dict)  # control id -> verdict
    error: str | None = None

    def proof(self, control: Control, live_after: Verdict) -> Proof:
        before = self.persisted_before.get(control.id)
        if before is None:
            raise HostError(f"--reboot-proof: no persisted verdict of {control.id} was recorded before the boot")
        return Proof(self.boot_id_before, self.boot_id_after, before, live_after)


class Rebootable(Protocol):
    """What the proof needs of a host session (host/session.py HostSession has it)."""

    spec: str
    reboot: Reboot | None

    @property
    def controls(self) -> tuple[Control, ...]: ...
    def run(self, command: str, *, check_ok: bool = False) -> tuple[int, str, str]: ...
    def send_unframed(self, script: str) -> None: ...
    def drop_connection(self) -> None: ...
    def assessment(self) -> Assessment: ...
    def refresh(self) -> Assessment: ...


def wait_for_new_boot(
    session: Rebootable,
    before: str,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """The host's new boot id, once it answers with one; HostError when the timeout passes first."""
    deadline = clock() + timeout
    while clock() < deadline:
        sleep(POLL_SECONDS)
        session.drop_connection()
        with contextlib.suppress(HostError):  # down, booting, or the old connection dying
            rc, out, _ = session.run(compose({"RB_BEFORE": before}, "booted.sh"))
            now = out.strip()
            if rc == 0 and BOOT_ID.fullmatch(now) and now != before:
                return now
    raise HostError(
        f"--reboot-proof: the host did not answer with a new boot id within {timeout:g} s "
        f"(--command-timeout) after the reboot; boot id before: {before}"
    )


def send_reboot(session: Rebootable, before: str) -> None:
    """Ask the host to reboot; the connection may die with it (not an error: the wait decides)."""
    how = how_for(session.spec)
    if how == RebootHow.EXIT_194:  # the suite's frame wrapper never exits 194: send the script as it is
        session.send_unframed(render_reboot(before, how))
        return
    with contextlib.suppress(HostError):
        session.run(render_reboot(before, how))


def reboot_once(session: Rebootable, timeout: float) -> None:
    """Record the boot id and every control's persisted verdict, reboot, wait, probe again: once
    per session; a failure is kept and raised for every case of the host."""
    if session.reboot is None:
        session.reboot = state = Reboot()
        try:
            before = session.assessment()
            state.boot_id_before = before.snap.boot_id
            state.persisted_before = {c.id: before.control_verdict(c, Check.PERSISTED) for c in session.controls}
            if not BOOT_ID.fullmatch(state.boot_id_before):
                raise HostError("--reboot-proof: the probe found no boot id (/proc/sys/kernel/random/boot_id)")
            send_reboot(session, state.boot_id_before)
            state.boot_id_after = wait_for_new_boot(session, state.boot_id_before, timeout)
            session.refresh()
        except HostError as exc:
            state.error = str(exc)
    if session.reboot.error:
        raise HostError(session.reboot.error)


def proof_of(session: Rebootable, control: Control) -> Proof:
    """The control's proof: its persisted verdict before the boot, its live verdict now (after it)."""
    assert session.reboot is not None  # reboot_once() ran first
    return session.reboot.proof(control, session.assessment().control_verdict(control, Check.LIVE))
