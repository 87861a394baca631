"""How the cost of judging one host grows with its number of rules (issue 10.10): a script that
prints figures, not a timed test. Each size is a host whose rules.d holds N rules (STIG-like
watches and syscall rules on other paths, plus the 16 benchmark rules) and whose kernel lists the
same N; the figure is the median wall time of parsing, replaying the boot-time load and judging
every control's live and persisted checks, in this process.

    python3 bench/replay_scale.py [--sizes 16,1000,5000,10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cisaudit.model.catalogue import controls  # noqa: E402
from cisaudit.model.evaluate import Assessment  # noqa: E402
from cisaudit.model.snapshot import PathInfo, Snapshot  # noqa: E402
from cisaudit.model.verdict import CONTROL_CHECKS, Check  # noqa: E402
from selftests.snapshots import audited_host  # noqa: E402

UNIT = (
    "[Unit]\nAfter=local-fs.target systemd-tmpfiles-setup.service\n[Service]\nExecStartPost=-/sbin/augenrules --load\n"
)


def host(size: int) -> Snapshot:
    own = [c.rule_text(c.path) for c in controls() if c.id != "1.1.13"]
    filler = [
        f"-w /etc/site/f{i} -p wa -k site"
        if i % 2
        else f"-a always,exit -F arch=b64 -S openat -F dir=/srv/app{i} -F auid>=1000 -k app"
        for i in range(size - len(own))
    ]
    rules = own + filler
    paths = {
        c.path: PathInfo(c.path, "dir" if c.style == "syscall" or c.id == "1.1.6" else "file", c.path, "755 0 0")
        for c in controls()
    }
    for p in (
        "/etc",
        "/etc/site",
        "/run",
        "/usr/bin",
        "/var/lib",
        "/srv",
        "/etc/default",
        "/etc/containerd",
        "/lib/systemd/system",
        "/run/containerd",
        "/etc/docker",
        "/etc/sysconfig",
    ):
        paths[p] = PathInfo(p, "dir", p, "755 0 0")
    return audited_host(
        listing_text="\n".join(rules),
        auditd_unit=UNIT,
        rules_d=[("/etc/audit/rules.d/50-all.rules", "\n".join(rules) + "\n")],
        paths=paths,
        mounts="tmpfs /run tmpfs rw 0 0\n/dev/vda / ext4 rw 0 0\n",
    )


def judge_all(snap: Snapshot) -> None:
    assessment = Assessment(snap, "docker")
    for control in controls():
        for check in CONTROL_CHECKS:
            assessment.control_verdict(control, check)
    assessment.host_verdict(Check.LOAD_HEALTH)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,1000,5000,10000")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    base = None
    for size in (int(s) for s in args.sizes.split(",")):
        snap = host(size)
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            judge_all(snap)
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        base = base or median
        print(
            f"replay rules={size} median_s={median:.4f} min_s={min(times):.4f} max_s={max(times):.4f} "
            f"x16={median / base:.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
