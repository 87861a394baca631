"""Run a command as on a machine with Docker installed: docker.io's, containerd's and runc's files
(unpacked by `scripts/setup.sh --test` into .cache/docker-root, not installed) laid over /usr and /etc
with overlayfs in a private mount namespace. The kernel and its audit rules are this machine's own,
so the command must take the kernel sandbox's lock as any kernel test does (selftests/kernel.py)."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from selftests.suite_runner import REPO

DOCKER_ROOT = REPO / ".cache" / "docker-root"
LAYERS = ("usr", "etc")


def available() -> bool:
    return (DOCKER_ROOT / "usr" / "sbin" / "dockerd").is_file()


def run_with_docker(command: list[str], scratch: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """command, in a mount namespace where /usr and /etc also hold Docker's files; writes go to scratch."""
    mounts = []
    for layer in LAYERS:
        upper, work = scratch / "upper" / layer, scratch / "work" / layer
        upper.mkdir(parents=True)
        work.mkdir(parents=True)
        options = f"lowerdir={DOCKER_ROOT / layer}:/{layer},upperdir={upper},workdir={work}"
        mounts.append(f"mount -t overlay overlay -o {shlex.quote(options)} /{layer}")
    script = " && ".join([*mounts, "exec " + shlex.join(command)])
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
