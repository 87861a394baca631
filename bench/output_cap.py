"""What a host that sends too much costs the runner (issue 10.3): a script that prints figures,
not a timed test. Each row runs one command over local:// (the same bounded reader the ssh
backend uses) or decodes one crafted SSM frame, with the default 32 MiB cap, in a fresh child
process, and prints its wall time, its peak RSS and how it ended.

    python3 bench/output_cap.py
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHILD = """
import json, resource, sys, time
sys.path.insert(0, {repo!r})
from cisaudit.host.transport import ConnectOptions, HostError, open_host
from cisaudit.host.ssm import frame
start = time.perf_counter()
try:
    if {kind!r} == "local":
        result = open_host("local://", ConnectOptions()).run({arg!r})
        outcome = f"ok, {{len(result.stdout_bytes)}} bytes"
    else:
        b64, digest = json.load(sys.stdin)
        rc, out, err = frame.decode(b64, digest, 32 * 1024 * 1024)
        outcome = f"ok, {{len(out)}} bytes"
except Exception as exc:  # noqa: BLE001 - the figure is how it ended
    outcome = f"{{type(exc).__name__}}: {{exc}}"
print(json.dumps({{"wall_s": time.perf_counter() - start,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "outcome": outcome}}))
"""


def gzip_bomb(size: int) -> tuple[str, str]:
    """An SSM frame body (cisaudit/host/ssm/frame.py: gzip of "rc len len\\n" and the streams) whose
    stdout is `size` zero bytes: about 130 KB of base64 for 100 MiB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip, streamed: this process stays small
    parts = [packer.compress(f"0 {size} 0\n".encode())]
    zeros = bytes(1 << 20)
    parts += [packer.compress(zeros) for _ in range(size >> 20)]
    text = base64.b64encode(b"".join([*parts, packer.flush()])).decode()
    return text, hashlib.sha256(text.encode()).hexdigest()


def run(name: str, kind: str, arg: object) -> None:
    code = CHILD.format(repo=str(REPO), kind=kind, arg=arg if kind == "local" else "")
    figures = json.loads(
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            input=json.dumps(arg) if kind == "ssm" else "",
        ).stdout
    )
    print(
        f"output-cap case={name} wall_s={figures['wall_s']:.2f} peak_rss_mb={figures['peak_rss_mb']:.0f} "
        f"outcome={figures['outcome'][:90]!r}"
    )


def main() -> int:
    run("local-1MiB", "local", "head -c 1048576 /dev/zero")
    run("local-100MiB", "local", "head -c 104857600 /dev/zero")
    run("local-endless", "local", "cat /dev/zero")
    bomb = gzip_bomb(100 * 1024 * 1024)
    print(f"output-cap ssm-gzip-bomb base64_kb={len(bomb[0]) / 1024:.0f}")
    run("ssm-gzip-bomb-100MiB", "ssm", bomb)
    small = gzip_bomb(1024 * 1024)
    run("ssm-frame-1MiB", "ssm", small)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
