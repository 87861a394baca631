"""Issue 21.8 on a test VM's own kernel: a process forked before audit was first enabled is never
audited (kernel/auditsc.c audit_alloc), and the suite's live verdict says so.

The test VMs boot without `audit=1` (selftests/testhosts/qemu.py APPEND), so audit is first enabled
when auditd starts. A stand-in daemon named dockerd (dash under that name: pidof finds no
scripts), started by a unit ordered before auditd.service, reads /etc/docker/daemon.json itself (a
shell redirection opens the file in its own process) whenever asked. One boot: 1.1.6 is live FAIL
with the reason, and the kernel agrees (the daemon's read gives no event, the same read by another
process does); after a restart of the daemon, 1.1.6 is live PASS and its read is recorded.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from selftests.e2e.scenarios import benchmark_rules, rules_d
from selftests.e2e.test_reboot import fresh_vm, reboot
from selftests.e2e.test_scenarios import audit
from selftests.testhosts.fleet import Fleet
from selftests.testhosts.vm import VM

pytestmark = pytest.mark.vm

UNIT = "cisaudit-early-dockerd.service"
EARLY_DOCKERD = f"""mkdir -p /etc/docker && echo '{{}}' > /etc/docker/daemon.json
cp /bin/dash /usr/local/sbin/dockerd
cat > /usr/local/lib/early-dockerd.sh <<'EOF'
while :; do
	if [ -e /run/cisaudit-poke ]; then read -r _ < /etc/docker/daemon.json; rm -f /run/cisaudit-poke; fi
	sleep 0.2
done
EOF
cat > /etc/systemd/system/{UNIT} <<'EOF'
[Unit]
DefaultDependencies=no
After=local-fs.target
Before=auditd.service
[Service]
ExecStart=/usr/local/sbin/dockerd /usr/local/lib/early-dockerd.sh
[Install]
WantedBy=sysinit.target
EOF
systemctl enable {UNIT} 2>/dev/null
"""
# The daemon reads daemon.json once; the events its pid has with the key (0 when none).
POKE = f"""pid=$(systemctl show -p MainPID --value {UNIT})
touch /run/cisaudit-poke
for i in $(seq 50); do [ -e /run/cisaudit-poke ] || break; sleep 0.2; done
sleep 1
n=$(ausearch --input-logs -k docker -p "$pid" -f /etc/docker/daemon.json 2>/dev/null | grep -c '^type=SYSCALL')
echo "$pid $n"
"""
OTHER_READ = """sh -c 'read -r _ < /etc/docker/daemon.json; echo $$' > /tmp/reader; sleep 1
ausearch --input-logs -k docker -p "$(cat /tmp/reader)" -f /etc/docker/daemon.json 2>/dev/null | grep -c '^type=SYSCALL'
"""


def _poke(vm: VM) -> tuple[str, int]:
    rc, out, err = vm.run(POKE, timeout=60)
    assert rc == 0, err
    pid, events = out.split()
    return pid, int(events)


def test_a_daemon_started_before_audit_was_enabled_fails_live_until_restarted(fleet: Fleet, tmp_path: Path) -> None:
    vm = fresh_vm(fleet, rules_d(benchmark_rules(), "50-docker.rules") + EARLY_DOCKERD)
    reboot(fleet, vm)
    assert "audit=" not in vm.run("cat /proc/cmdline")[1]
    before = audit(fleet, tmp_path / "before", [vm], "--controls=1.1.6").case(vm.spec, "1.1.6", "live")
    assert before.verdict == "fail", before.summary + before.evidence
    assert "started before auditd" in before.summary + before.evidence, before.summary + before.evidence
    pid, events = _poke(vm)
    assert events == 0, f"dockerd {pid} was audited"
    assert vm.run(OTHER_READ)[1].strip() != "0"  # the rule records the same read by another process
    assert vm.run(f"systemctl restart {UNIT}")[0] == 0
    after = audit(fleet, tmp_path / "after", [vm], "--controls=1.1.6").case(vm.spec, "1.1.6", "live")
    assert after.verdict == "pass", after.summary + after.evidence
    new_pid, events = _poke(vm)
    assert new_pid != pid and events >= 1, (new_pid, events)
