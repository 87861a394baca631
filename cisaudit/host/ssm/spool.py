"""Where a fleet fan-out (`fleet.py`) leaves each instance's probe result for its host session:
one small file per instance on the runner's disk, not a fleet's worth of output in memory, and
readable by xdist workers too."""

from __future__ import annotations

import json
import os
from pathlib import Path


class SpoolError(RuntimeError):
    """The fan-out has no result for this instance; the message is its one-line error."""


class Spool:
    """One JSON file per instance: {"rc", "stdout", "stderr"} or {"error"}; `nonce` frames the probe."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @property
    def nonce(self) -> str:
        return (self.directory / "nonce").read_text()

    def set_nonce(self, nonce: str) -> None:
        (self.directory / "nonce").write_text(nonce)

    def _write(self, instance_id: str, record: dict[str, object]) -> None:
        tmp = self.directory / f".{instance_id}.tmp"
        tmp.write_text(json.dumps(record))
        os.replace(tmp, self.directory / f"{instance_id}.json")

    def put_result(self, instance_id: str, rc: int, stdout: bytes, stderr: bytes) -> None:
        # Decoded as HostSession.run decodes any host's output.
        out, err = (b.decode("utf-8", errors="replace") for b in (stdout, stderr))
        self._write(instance_id, {"rc": rc, "stdout": out, "stderr": err})

    def put_error(self, instance_id: str, message: str) -> None:
        self._write(instance_id, {"error": message})

    def take(self, instance_id: str) -> tuple[int, str, str]:
        try:
            record = json.loads((self.directory / f"{instance_id}.json").read_text())
        except (OSError, ValueError) as exc:
            raise SpoolError(f"ssm://{instance_id}: no result from the fleet probe ({exc})") from None
        if "error" in record:
            raise SpoolError(record["error"])
        return record["rc"], record["stdout"], record["stderr"]
