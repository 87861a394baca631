"""Where a fleet fan-out (`fleet.py`) leaves each instance's probe result for its host session:
one small file per instance on the runner's disk, not a fleet's worth of output in memory, and
readable by xdist workers too. A result is read by its session once the service's report has
bound it (`publish`), while the fan-out goes on; `finish` marks the end."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

_POLL = 0.5  # s between looks for a result not there yet, at most


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

    def put_result(self, instance_id: str, rc: int, stdout: bytes, stderr: bytes, source: str = "") -> None:
        """Keep a result aside until `publish` (the service's report has not bound it yet);
        `source` (the command) keeps apart what two commands probed on one instance."""
        # Decoded as HostSession.run decodes any host's output.
        out, err = (b.decode("utf-8", errors="replace") for b in (stdout, stderr))
        self._write(f".{instance_id}.{source}.unbound", {"rc": rc, "stdout": out, "stderr": err})

    def publish(self, instance_id: str, source: str = "") -> None:
        """The result kept aside from `source` is the instance's: its session may read it now."""
        os.replace(self.directory / f".{instance_id}.{source}.unbound.json", self.directory / f"{instance_id}.json")

    def put_error(self, instance_id: str, message: str) -> None:
        self._write(instance_id, {"error": message})
        for kept in self.directory.glob(f".{instance_id}.*.unbound.json"):
            kept.unlink(missing_ok=True)

    def finish(self) -> None:
        """The fan-out is over: an instance without a file now has no result."""
        (self.directory / "done").touch()

    def _wait(self, path: Path) -> None:
        """Until `path` or the fan-out's end: the sessions judge each host as its result comes."""
        pause = 0.01
        while not path.exists() and not (self.directory / "done").exists():
            time.sleep(pause)
            pause = min(2 * pause, _POLL)

    def take(self, instance_id: str) -> tuple[int, str, str]:
        path = self.directory / f"{instance_id}.json"
        self._wait(path)
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SpoolError(f"ssm://{instance_id}: no result from the fleet probe ({exc})") from None
        if "error" in record:
            raise SpoolError(record["error"])
        return record["rc"], record["stdout"], record["stderr"]
