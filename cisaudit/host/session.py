"""One host during one run: connect once, probe once, count every remote command."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from cisaudit.host.hostspec import address, scrub, transport_of
from cisaudit.host.probe import (
    ProbeError,
    parse_probe,
    parse_stat_output,
    render_probe,
    render_stat_script,
)
from cisaudit.host.reboot import Reboot
from cisaudit.host.ssm.spool import Spool, SpoolError
from cisaudit.host.transport import ConnectOptions, HostError, describe_error, open_host
from cisaudit.model.catalogue import Control, check_version, controls
from cisaudit.model.decisions import Change
from cisaudit.model.evaluate import Assessment
from cisaudit.model.kernel import AuditKeys
from cisaudit.model.locate import resolve, unknown_paths
from cisaudit.model.snapshot import Snapshot


def unusable_output(exc: BaseException) -> str:
    """One line for an exception raised by what a host sent (or by our code reading it)."""
    detail = " ".join(str(exc).split())[:200]
    return f"cannot use this host's output: {type(exc).__name__}: {detail}"


def probe_command(version: str) -> tuple[str, str]:
    """The probe of a benchmark version's controls and its nonce: what HostSession runs, and what
    the SSM fleet fan-out sends to every instance at once (plugin/fleet_audit.py), so that each
    host's session parses a fanned-out probe exactly as one it ran itself."""
    return render_probe(controls(version))


@dataclass
class HostSession:
    spec: str
    options: ConnectOptions
    key: str  # the key rules are written with (remediation)
    require_all: bool = False
    version: str = field(kw_only=True)  # the benchmark version whose controls are checked (required)
    fanned_out: Spool | None = None  # an ssm:// host whose probe the fleet fan-out ran (ssm/fleet.py)
    keys: AuditKeys | None = None  # the keys that count as recorded (--audit-key); None: `key`
    commands: int = 0  # remote commands sent to this host in this run
    events_output: str | None = None  # --verify-events: ausearch output, fetched once
    change: Change | None = None  # --remediate/--backout: what this run did to the host
    reboot: Reboot | None = None  # --reboot-proof: the boot ids and verdicts before it (host/reboot.py)
    _host: object | None = None
    _assessment: Assessment | None = None
    _error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        check_version(self.version)  # an unknown version fails here, not at the first probe

    def run(self, command: str, *, check_ok: bool = False) -> tuple[int, str, str]:
        """Run one remote command; any transport failure becomes HostError."""
        try:
            if self._host is None:
                self._host = open_host(self.spec, self.options)
            self.commands += 1
            result = self._host.run(command)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - every transport failure is this host's error
            raise HostError(scrub(describe_error(exc), self.spec, self.options.ssh_identity_file)) from None
        # Decode here: testinfra's .stdout runs python on the host to learn its encoding
        # whenever output is not ASCII, an uncounted extra round trip.
        out = result.stdout_bytes.decode("utf-8", errors="replace")
        err = result.stderr_bytes.decode("utf-8", errors="replace")
        if check_ok and result.rc != 0:
            raise HostError(f"remote command failed (exit {result.rc}): {(err or out).strip()[-300:]}")
        return result.rc, out, err

    def send_unframed(self, script: str) -> None:
        """ssm:// only: send one script as it is, not awaited (its exit code means what the agent says)."""
        try:
            if self._host is None:
                self._host = open_host(self.spec, self.options)
            self.commands += 1
            self._host.backend.send_unframed(script)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - every transport failure is this host's error
            raise HostError(scrub(describe_error(exc), self.spec, self.options.ssh_identity_file)) from None

    def drop_connection(self) -> None:
        """Connect afresh for the next command (after a timeout or a lost connection)."""
        reconnect = getattr(getattr(self._host, "backend", None), "reconnect", None)
        if callable(reconnect):  # testinfra caches hosts: the same backend object must reconnect
            reconnect()

    @property
    def controls(self) -> tuple[Control, ...]:
        return controls(self.version)

    def _probe_output(self) -> tuple[int, str, str, str]:
        """(rc, stdout, stderr, nonce) of the probe: run now, or taken from the fleet fan-out."""
        if self.fanned_out is None:
            script, nonce = probe_command(self.version)
            return (*self.run(script), nonce)
        self.commands += 1
        try:
            return (*self.fanned_out.take(address(self.spec)), self.fanned_out.nonce)
        except SpoolError as exc:
            raise HostError(str(exc)) from None

    def probe(self) -> Snapshot:
        rc, out, err, nonce = self._probe_output()
        try:
            snap = parse_probe(out, nonce, self.controls)
        except ProbeError as exc:
            raise HostError(f"{exc}; exit {rc}: {err.strip()[-200:]}") from None
        missing = unknown_paths([resolve(c, snap) for c in self.controls])
        if missing:  # a config named a path the probe could not foresee: one more command
            script, nonce = render_stat_script(missing)
            _, out, _ = self.run(script, check_ok=True)
            try:
                snap.paths.update(parse_stat_output(out, nonce))
            except ProbeError as exc:
                raise HostError(str(exc)) from None
        return snap

    def assessment(self) -> Assessment:
        """The host's assessment, probing on first use; a failure is cached and re-raised."""
        with self._lock:
            if self._error is None and self._assessment is None:
                try:
                    blind = transport_of(self.spec).blind
                    self._assessment = Assessment(self.probe(), self.key, self.require_all, self.keys, blind)
                except HostError as exc:
                    self._error = str(exc)
                except Exception as exc:  # noqa: BLE001 - crafted output must not reach the other hosts
                    self._error = unusable_output(exc)
            if self._error is not None:
                raise HostError(self._error)
            assert self._assessment is not None
            return self._assessment

    def release(self) -> None:
        """Drop what the host's tests needed, after its last one; counts and the change stay."""
        with self._lock:
            self._assessment = None
            self.events_output = None

    def refresh(self) -> Assessment:
        """Probe again (after a change to the host)."""
        with self._lock:
            self._assessment = None
        return self.assessment()
