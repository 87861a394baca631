"""Issue 21.6 on this machine's kernel: on a directory that is a mount point (a tmpfs in a private
mount namespace), the benchmark's `-a exit,always -F path=DIR -F perm=war` and the tree watch the
suite writes there (`-w DIR -p rwa`) are two rules in the kernel. auditctl sends `-w` on a directory
as a `dir=` rule, so the second loads beside the first ("Rule exists" only for an exact duplicate),
the kernel's own list (read with the probe's reader) says `path` and `dir`, and only the tree watch
records: the three accesses (list, create in it, chmod of it) give 3 events with the key.
This is what model/rules.AuditRule.held and the plan rely on (selftests/unit/test_mount_point_model.py).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time

from cisaudit.host.probe import KERNEL_RULES
from selftests.kernel import KernelSandbox

KEY = "cisaudit_mntid"
ACCESS = r"type=SYSCALL .* syscall=(openat|fchmodat) .* comm=(ls|touch|chmod) "  # not auditctl's own records

SCRIPT = r"""
set -u
D=$(mktemp -d /tmp/cisaudit-mntid.XXXXXX)
mount --make-rprivate /
mount -t tmpfs tmpfs "$D"
auditctl -a exit,always -F path="$D" -F perm=war -k {key} >/dev/null; echo "path $?"
auditctl -w "$D" -p rwa -k {key} >/dev/null; echo "watch $?"
auditctl -w "$D" -p rwa -k {key} 2>&1 >/dev/null | sed 's/^/again /'
auditctl -a exit,always -F dir="$D" -F perm=rwa -k {key} 2>&1 >/dev/null | sed 's/^/dir /'
python3 -c {reader} | sed -n -e "s/^4 2 all 105:.*/kernel path/p" -e "s/^4 2 all 107:.*/kernel dir/p"
ls "$D" >/dev/null; touch "$D/new"; chmod 755 "$D"
echo "dir=$D"
"""


def test_a_tree_watch_loads_beside_a_path_rule_on_a_mount_point_and_only_it_records(kernel: KernelSandbox) -> None:
    script = SCRIPT.format(key=KEY, reader=shlex.quote(KERNEL_RULES.read_text()))
    run = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=60)
    lines = run.stdout.splitlines()
    assert lines[:2] == ["path 0", "watch 0"], run.stdout + run.stderr
    assert any(l.startswith("again ") and "Rule exists" in l for l in lines), run.stdout
    assert any(l.startswith("dir ") and "Rule exists" in l for l in lines), run.stdout  # -w DIR is dir=
    assert sorted(l for l in lines if l.startswith("kernel ")) == ["kernel dir", "kernel path"], run.stdout
    directory = next(l for l in lines if l.startswith("dir="))[4:]
    recorded = 0
    for _ in range(20):  # auditd writes asynchronously
        search = subprocess.run(
            ["ausearch", "--input-logs", "-k", KEY, "-f", directory, "-i"], capture_output=True, text=True
        )
        recorded = sum(1 for l in search.stdout.splitlines() if re.match(ACCESS, l))
        if recorded >= 3:
            break
        time.sleep(0.25)
    subprocess.run(["rmdir", directory], check=False)
    assert recorded == 3, search.stdout
