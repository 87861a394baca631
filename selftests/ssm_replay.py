"""Answers for the SSM emulator's instances from recorded real probe outputs (scale runs).

A recording is what the real probe printed on a real host (this machine, in a given audit
state). Replaying it for a new command puts that command's nonces in: the probe's section
nonce in the probe's stdout, and the wrapper's frame around it exactly as `frame.wrapper_script`
prints it, so the suite decodes and judges it as it would the host's own answer. Anything but
the probe (a follow-up command) is refused: the instance's invocation then ends Failed.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass

from cisaudit.host.probe import render_probe
from cisaudit.host.ssm import frame
from cisaudit.model.catalogue import controls

_PROBE_NONCE = re.compile(r"@@cisaudit-[0-9a-f]{16}")
# The wrapper's values, as frame.wrapper_script assigns them (shlex leaves these unquoted).
_FRAME_NONCE = re.compile(r"^CISAUDIT_FRAME_NONCE=([0-9a-f]{32})$", re.M)
_CHUNK = re.compile(r"^CISAUDIT_FRAME_CHUNK=(\d+)$", re.M)


@dataclass(frozen=True)
class Recording:
    """One real probe run: its nonce, exit code and streams, and how long it took."""

    nonce: str
    rc: int
    stdout: bytes
    stderr: bytes
    seconds: float


def record_local() -> Recording:
    """Run the real probe on this machine, as root would over any transport."""
    script, nonce = render_probe(controls("1.7.0"))
    t0 = time.perf_counter()
    proc = subprocess.run(["sh", "-c", script], stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    return Recording(nonce, proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - t0)


def frame_text(nonce: str, rc: int, stdout: bytes, stderr: bytes, chunk: int | None) -> str:
    """What the wrapper prints for a command that exited rc with these streams."""
    inner = f"{rc} {len(stdout)} {len(stderr)}\n".encode() + stdout + stderr
    b64 = base64.b64encode(gzip.compress(inner)).decode()
    if chunk is not None and len(b64) > chunk:
        raise ValueError(f"a replayed frame of {len(b64)} characters would need follow-up fetches")
    digest = hashlib.sha256(b64.encode()).hexdigest()
    return f"{frame.MAGIC} {nonce} {len(b64)} /tmp/cisaudit-ssm.replayed {digest}\n{b64}\n{frame.MAGIC} {nonce} END\n"


class Replayer:
    """The emulator's `runner`: instance id -> its recording, answered after the recording's time."""

    def __init__(self, recordings: Mapping[str, Recording], pace: bool = True) -> None:
        self.recordings = recordings
        self.pace = pace
        self.replayed = 0

    def __call__(self, instance_id: str, script: str) -> tuple[int, str, str]:
        probe, wrapper = _PROBE_NONCE.search(script), _FRAME_NONCE.search(script)
        if probe is None or wrapper is None:
            raise ValueError("only the probe is replayed")
        rec = self.recordings[instance_id]
        chunk = _CHUNK.search(script)
        stdout = rec.stdout.replace(rec.nonce.encode(), probe[0].encode())
        text = frame_text(wrapper[1], rec.rc, stdout, rec.stderr, int(chunk[1]) if chunk else None)
        if self.pace:
            time.sleep(rec.seconds)
        self.replayed += 1
        return 0, text, ""
