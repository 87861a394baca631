"""Issue 21.6, measured on a test VM's own kernel (Debian 12, 6.1): which audit rules on a directory
that is a mount point (a data-root on its own filesystem, as CIS 1.1.1 recommends) record accesses
to it. Each case loads one rule with a key of its own, on a fresh tmpfs in a private mount
namespace; the accesses are listing the directory, creating a file in it and chmod of it (three
syscalls: openat, openat, fchmodat), counted with `ausearch --input-logs`.

What the kernel does (the assertions below): `-F path=DIR` binds the inode the path names when the
rule is loaded, and a lookup of a mount point's last component stops at the directory underneath
(the hidden one): the rule never fires, loaded before the mount or after it. `-w DIR` (a tree
watch, as auditctl makes it of a directory) and `-F dir=DIR` fire when loaded after the mount, and
not when loaded before it. The benchmark's own 1.1.5 rule (`path=`) is therefore silent on such a
host; the model and --remediate take it into account (docs/kernel-behaviour.md).
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from selftests.e2e.scenarios import LOAD, benchmark_rules, rules_d
from selftests.e2e.test_reboot import fresh_vm, kernel_rules
from selftests.e2e.test_scenarios import audit
from selftests.testhosts.fleet import Fleet

pytestmark = pytest.mark.vm

MEASURE = r"""
B=/root/rbm; mkdir -p $B
ACCESS='s/^type=SYSCALL.* syscall=\(openat\|fchmodat\) .*/\1/p'
mount --make-rprivate /
one() {  # one NAME WHEN(before|after|plain) KIND(path|dir|w)
	k="rbm_$1_$$"; D=$B/$1; mkdir -p $D
	case $3 in
	path) add="-a exit,always -F path=$D -F perm=war -k $k"; del="-d exit,always -F path=$D -F perm=war -k $k" ;;
	dir) add="-a exit,always -F dir=$D -F perm=war -k $k"; del="-d exit,always -F dir=$D -F perm=war -k $k" ;;
	w) add="-w $D -p war -k $k"; del="-W $D -p war -k $k" ;;
	esac
	[ "$2" = before ] && auditctl $add >/dev/null
	[ "$2" != plain ] && mount -t tmpfs tmpfs $D
	[ "$2" != before ] && auditctl $add >/dev/null
	ls $D >/dev/null; touch $D/new; chmod 755 $D
	for i in $(seq 20); do
		n=$(ausearch --input-logs -k $k -i 2>/dev/null | sed -n "$ACCESS" | wc -l)
		[ "$n" -ge 3 ] && break; sleep 0.25
	done
	echo "$1 $n"
	auditctl $del >/dev/null
	[ "$2" != plain ] && umount $D
	rm -rf $D
}
one plain-path plain path; one plain-w plain w
one path-before before path; one path-after after path; one dir-after after dir
one w-before before w; one w-after after w
"""
# case -> accesses recorded (of 3)
EXPECTED = {
    "plain-path": 3,
    "plain-w": 3,
    "path-before": 0,  # the hidden directory's inode
    "path-after": 0,  # still the hidden one: the lookup stops at the mount point
    "dir-after": 3,
    "w-before": 0,
    "w-after": 3,
}


def test_rules_on_a_mount_point_record_only_as_tree_watches_loaded_after_the_mount(fleet: Fleet) -> None:
    vm = fleet.reset(fleet[0])
    rc, out, err = vm.run(f"unshare -m sh -c {shlex.quote(MEASURE)}", timeout=240)
    assert rc == 0, err
    got = {name: int(count) for name, count in (line.split() for line in out.splitlines())}
    assert got == EXPECTED, out
    assert vm.run("auditctl -l | grep -c rbm_")[1].strip() == "0"


def test_a_data_root_on_its_own_mount_fails_with_the_benchmarks_rule_and_passes_remediated(
    fleet: Fleet, tmp_path: Path
) -> None:
    """The suite on a VM whose /var/lib/docker is a mount point. With the benchmark's rules loaded
    after the mount, 1.1.5 FAILs live and says why, and the kernel agrees (a chmod gets no
    docker-key event). With the benchmark's path= rule still persisted and loaded, --remediate
    writes a tree watch beside it (in the kernel `-w DIR` is a dir= rule, another rule than
    path=DIR), keeps the user's rule, and 1.1.5 PASSes live and persisted with a recorded event
    (--verify-events)."""
    mounted = "mount -t tmpfs tmpfs /var/lib/docker\n"
    vm = fresh_vm(fleet, mounted + rules_d(benchmark_rules(), "50-docker.rules") + LOAD)
    before = audit(fleet, tmp_path / "before", [vm], "--controls=1.1.5")
    live = before.case(vm.spec, "1.1.5", "live")
    assert live.verdict == "fail" and "is a mount point (tmpfs)" in live.evidence, live.summary + live.evidence
    assert vm.run("chmod 711 /var/lib/docker; sleep 1; ausearch --input-logs -k docker -f /var/lib/docker")[0] != 0
    fixed = audit(fleet, tmp_path / "fixed", [vm], "--controls=1.1.5", "--remediate", "--verify-events")
    remediation = fixed.case(vm.spec, "host", "remediation")
    for check in ("live", "persisted", "events"):
        case = fixed.case(vm.spec, "1.1.5", check)
        assert case.verdict == "pass", f"{check}: {case.summary}\n{case.evidence}\n{remediation.summary}"
    assert kernel_rules(vm).count("-w /var/lib/docker -p rwa -k docker") == 2  # the user's path= rule and ours
    assert "-F path=/var/lib/docker" in vm.run("cat /etc/audit/rules.d/50-docker.rules")[1]
