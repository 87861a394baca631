"""What each kind of syscall costs on a host with thousands of rules on absent objects: a script
that prints figures, not a timed test (docs/kernel-behaviour.md, "The lookup tax").

Root, this machine's kernel: for each size, bench/replay_scale.py's filler rules (watches of absent
files in /etc, per-binary execve rules on absent files in /usr/bin, as STIG writes them) are written
to /etc/audit/rules.d and loaded, then this process times each call in a loop (median CPU per call
of several rounds): a syscall that names no path, a lookup of an existing path whose inode number
is 31 modulo 32 and one whose is not (the kernel files watches in 32 buckets by inode number, and a
watch of an absent path in the bucket of the unset inode, all ones: 31), a failed lookup, and an
exec of /bin/true. Holds the kernel lock (/run/lock/cisaudit-selftest.lock) and restores the rules
and /etc/audit afterwards.

    .venv/bin/python bench/lookup_tax.py [--sizes 16,10000] [--calls 2000]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from replay_scale import filler_rules, listed_rules  # noqa: E402

from selftests.kernel import KernelSandbox  # noqa: E402

BUCKETS = 32  # AUDIT_INODE_BUCKETS (kernel/audit.h); audit_hash_ino: inode & (BUCKETS - 1)


def cpu(who: int = resource.RUSAGE_SELF) -> float:
    used = resource.getrusage(who)
    return used.ru_utime + used.ru_stime


def per_call(call: Callable[[], object], calls: int, rounds: int = 5) -> float:
    """Median CPU microseconds per call over `rounds` loops of `calls`; an OSError is the call's answer."""

    def once() -> float:
        start = cpu()
        for _ in range(calls):
            try:  # noqa: SIM105 - contextlib.suppress would add its own cost to every call timed
                call()
            except OSError:
                pass
        return (cpu() - start) / calls * 1e6

    return statistics.median(once() for _ in range(rounds))


def files_in_bucket(bucket: int, count: int) -> list[str]:
    """Existing files under the Python library whose inode number falls in `bucket`."""
    found = []
    for root, _, names in os.walk(os.path.dirname(os.__file__)):
        for name in names:
            path = os.path.join(root, name)
            if os.lstat(path).st_ino % BUCKETS == bucket:
                found.append(path)
                if len(found) == count:
                    return found
    return found


def measure(size: int, calls: int) -> None:
    fd = os.open("/etc/hostname", os.O_RDONLY)
    unset, other = files_in_bucket(BUCKETS - 1, 100), files_in_bucket(5, 100)
    figures = {
        "no_path_us": per_call(lambda: os.lseek(fd, 0, os.SEEK_SET), calls),
        "exists_us": per_call(lambda: [os.stat(p) for p in other], calls // 100) / 100,
        "exists_bucket31_us": per_call(lambda: [os.stat(p) for p in unset], calls // 100) / 100,
        "absent_us": per_call(lambda: os.stat("/etc/cisaudit-lookup-tax-absent"), calls),
    }
    start = cpu(resource.RUSAGE_CHILDREN)
    for _ in range(50):
        subprocess.run(["/bin/true"], check=True)
    figures["exec_true_ms"] = (cpu(resource.RUSAGE_CHILDREN) - start) / 50 * 1e3
    os.close(fd)
    print(f"lookup-tax rules={size} " + " ".join(f"{k}={v:.2f}" for k, v in figures.items()), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,10000", help="rule counts (default 16,10000)")
    parser.add_argument("--calls", type=int, default=2000, help="calls per round (default 2000)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("lookup_tax.py: run it as root (it loads rules into this machine's kernel)", file=sys.stderr)
        return 2
    with FileLock("/run/lock/cisaudit-selftest.lock"):
        sandbox = KernelSandbox()
        try:
            for size in (int(s) for s in args.sizes.split(",")):
                sandbox.write_rules_d("60-scale.rules", "\n".join(filler_rules(size)) + "\n")
                if sandbox.load().returncode != 0 or listed_rules(size) != size:
                    raise SystemExit(f"loading {size} rules failed")
                measure(size, args.calls)
        finally:
            sandbox.restore()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
