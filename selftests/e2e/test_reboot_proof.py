"""--reboot-proof on a test VM (issue 25.3): the suite itself reboots the VM over SSH and audits
it again; the proof must hold where the model predicted right and catch where it predicted wrong.

One VM, one boot, both states: the benchmark's rules (with the tmpfiles entry that lets the boot
load every one, test_reboot.py) are persisted and loaded, so the model predicts every control
PASS; and a boot-time unit the model cannot see deletes one persisted rule right after auditd
loaded them. The model reads the rules files, the auditd unit, tmpfiles.d and the mount table,
never what an arbitrary unit runs: only the boot breaks the prediction for /etc/docker (1.1.6),
and only --reboot-proof can tell. Every other control's proof must agree.

The VMs run QEMU with -no-reboot: the guest's `systemctl reboot` ends its QEMU, and the test boots
the same disk again (Fleet.boot_again) while the suite waits for the new boot id.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from cisaudit.outputs.results_json import records
from selftests.e2e.scenarios import LOAD, VM_PATHS, benchmark_rules, rules_d
from selftests.e2e.test_reboot import SETTLED, TMPFILES_ENTRY, fresh_vm, kernel_rules, listed_rule
from selftests.e2e.test_scenarios import audit
from selftests.suite_runner import SuiteRun
from selftests.testhosts.fleet import Fleet

pytestmark = pytest.mark.vm

BROKEN = "1.1.6"  # the control whose persisted rule the unit deletes at boot
LISTED = listed_rule(BROKEN, VM_PATHS[BROKEN])  # as auditctl -l lists the benchmark rule
DELETE = LISTED.replace("-w ", "-W ", 1)
SABOTEUR = f"""cat > /etc/systemd/system/site-audit-tweak.service <<'EOF'
[Unit]
Description=a site's boot-time audit tweak the model cannot see
After=auditd.service
[Service]
Type=oneshot
ExecStart=/sbin/auditctl {DELETE}
[Install]
WantedBy=multi-user.target
EOF
systemctl enable site-audit-tweak.service 2>/dev/null
echo '{TMPFILES_ENTRY}' > /etc/tmpfiles.d/cisaudit-docker.conf
"""


def audit_through_the_reboot(fleet: Fleet, vm, out: Path) -> tuple[SuiteRun, float]:
    """Run the suite with --reboot-proof; when the guest's reboot ends its QEMU, boot it again."""
    done: dict[str, SuiteRun] = {}
    suite = threading.Thread(
        target=lambda: done.setdefault(
            "run", audit(fleet, out, [vm], "--reboot-proof", "--i-may-reboot", "--command-timeout=600")
        )
    )
    started = time.monotonic()
    suite.start()
    assert vm.proc is not None
    while vm.proc.poll() is None and suite.is_alive():
        time.sleep(0.5)
    if vm.proc.poll() is not None:  # QEMU is started from this (the main) thread only
        fleet.boot_again(vm)
    suite.join(900)
    assert "run" in done, "the suite did not finish"
    return done["run"], time.monotonic() - started


def test_reboot_proof_holds_where_the_model_is_right_and_catches_a_rule_only_the_boot_breaks(
    fleet: Fleet, tmp_path: Path
) -> None:
    vm = fresh_vm(fleet, rules_d(benchmark_rules(), "50-docker.rules") + SABOTEUR + LOAD)
    vm.run(SETTLED, timeout=180)
    before_boot = vm.run("cat /proc/sys/kernel/random/boot_id")[1].strip()
    assert LISTED in kernel_rules(vm)
    run, seconds = audit_through_the_reboot(fleet, vm, tmp_path / "proof")
    print(f"--reboot-proof run, reboot included: {seconds:.0f} s")
    after_boot = vm.run("cat /proc/sys/kernel/random/boot_id")[1].strip()
    assert after_boot != before_boot, run.output[-3000:]
    assert LISTED not in kernel_rules(vm)  # the unit ran

    problems = []
    for cid in VM_PATHS:
        case = run.case(vm.spec, cid, "reboot-proof")
        proof = _proof(tmp_path, vm.spec, cid)
        want_agree = cid != BROKEN
        if proof["agree"] != want_agree or proof["boot_id_before"] != before_boot:
            problems.append(f"{cid}: {proof}")
        if case.verdict != ("pass" if want_agree else "fail"):
            problems.append(f"{cid}: reboot-proof {case.verdict}: {case.summary}")
    assert run.verdict(vm.spec, BROKEN, "persisted") == "pass"  # the model still cannot see the unit
    broken = run.case(vm.spec, BROKEN, "reboot-proof")
    assert "persisted PASS before the boot is not live after it: live fail" in broken.summary, broken.summary
    assert _proof(tmp_path, vm.spec, BROKEN) == {
        "boot_id_before": before_boot,
        "boot_id_after": after_boot,
        "persisted_before": "pass",
        "live_after": "fail",
        "agree": False,
    }
    assert not problems, "\n".join(problems) + "\n" + run.output[-3000:]
    assert run.returncode == 1


def _proof(tmp_path: Path, spec: str, cid: str) -> dict[str, object]:
    """The control's reboot_proof as results.json carries it."""
    document = json.loads((tmp_path / "proof" / "results.json").read_text())
    for record in records(document):
        if record["control_id"] == cid and record["check"] == "reboot-proof":
            return dict(record["reboot_proof"])
    raise AssertionError(f"no reboot-proof record of {cid} for {spec}")
