"""A CIS-hardened test VM (issue 20.1): remediation that goes first, proven live, after a real
reboot, and undone exactly.

The VM gets the CIS Linux benchmark's rules as the ansible-lockdown role writes them
(selftests/rulesets/cis-ubuntu22-ansible-lockdown.rules, as /etc/audit/rules.d/99_auditd.rules,
loaded with augenrules; without its `-e 2`, so that the remediation can load rules live and the
backout remove them). Those rules take an unprivileged user's chmod of /etc/docker (key perm_mod)
and failed write of /etc/default/docker (key access): the VM's own kernel and auditd show it.
`--remediate` must make every applicable control pass live; after a real reboot they must still
pass and the same accesses carry `docker`; `--backout` must give back the files byte for byte and
the kernel's list in order, and the next boot must load exactly what loaded before.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from selftests.e2e.scenarios import LOAD, VM_PATHS, rules_d
from selftests.e2e.test_reboot import boot_load_log, fresh_vm, kernel_rules, reboot
from selftests.e2e.test_scenarios import audit
from selftests.suite_runner import SuiteRun
from selftests.testhosts.fleet import Fleet
from selftests.testhosts.vm import VM

pytestmark = pytest.mark.vm
RULESET = Path(__file__).resolve().parents[1] / "rulesets" / "cis-ubuntu22-ansible-lockdown.rules"
CIS_LIVE = RULESET.read_text().rstrip().removesuffix("-e 2")  # see the module docstring
STATE = (
    "cd /etc/audit && find . -type f | LC_ALL=C sort | xargs sha256sum; "
    "stat -c '%n %a %U' audit.rules rules.d/*; ls /etc/tmpfiles.d; echo ---; auditctl -l"
)
# (shell command run as uid 1000 with login uid 1000, the path its event names, the CIS key)
ACCESSES = {
    "chmod /etc/docker": ("exec chmod 0755 /etc/docker", "/etc/docker", "perm_mod"),
    "failed write /etc/default/docker": (": >> /etc/default/docker", "/etc/default/docker", "access"),
}
KEY_OF = """since=$(date +%H:%M:%S)
pid=$(sh -c 'echo $$; echo 1000 > /proc/self/loginuid && \
exec setpriv --reuid=1000 --regid=1000 --clear-groups -- sh -c "$0" 2>/dev/null' {command!r} | head -n 1)
for i in $(seq 40); do
  out=$(ausearch --input-logs -ts "$since" -p "$pid" -f {path} --raw 2>/dev/null | grep '^type=SYSCALL' | head -n 1)
  [ -n "$out" ] && break; sleep 0.25
done
printf '%s\\n' "$out" | sed -n 's/.* key=\\([^[:space:][:cntrl:]]*\\).*/\\1/p'
"""


def keys(vm: VM) -> dict[str, str]:
    """The key of each access's event, as the VM's auditd logged it."""
    found = {}
    for what, (command, path, _) in ACCESSES.items():
        rc, out, err = vm.run(KEY_OF.format(command=command, path=path), timeout=60)
        assert rc == 0, err
        found[what] = out.strip().strip('"')
    return found


def applicable(run: SuiteRun, vm: VM) -> dict[tuple[str, str], str]:
    return {(cid, check): run.verdict(vm.spec, cid, check) for cid in VM_PATHS for check in ("live", "persisted")}


def test_remediation_on_a_cis_hardened_vm_survives_a_reboot_and_backs_out_exactly(fleet: Fleet, tmp_path: Path) -> None:
    vm = fresh_vm(fleet, rules_d(CIS_LIVE + "\n", "99_auditd.rules") + LOAD)
    cis_rules = [line for line in CIS_LIVE.splitlines() if line.startswith(("-w ", "-a "))]
    assert len(kernel_rules(vm)) == len(cis_rules), "the CIS rules did not all load"
    before_state = vm.run(STATE)[1]
    assert keys(vm) == {what: key for what, (_, _, key) in ACCESSES.items()}
    before = audit(fleet, tmp_path / "before", [vm])
    assert set(applicable(before, vm).values()) == {"fail"}, before.output[-3000:]

    fixed = audit(fleet, tmp_path / "fixed", [vm], "--remediate")
    remediation = fixed.case(vm.spec, "host", "remediation")
    assert remediation.verdict == "pass", remediation.summary + remediation.evidence
    assert set(applicable(fixed, vm).values()) == {"pass"}, fixed.output[-3000:]
    for key in ("perm_mod", "access"):
        assert f"key {key}, from `-a always,exit -F arch=b64 -S " in remediation.summary, remediation.summary
    assert keys(vm) == dict.fromkeys(ACCESSES, "docker")
    live = kernel_rules(vm)

    reboot(fleet, vm)
    booted = audit(fleet, tmp_path / "booted", [vm])
    problems = [f"{k}: {v} after the reboot" for k, v in applicable(booted, vm).items() if v != "pass"]
    problems += [] if kernel_rules(vm) == live else [f"the boot loaded {kernel_rules(vm)}, live was {live}"]
    # The CIS rules as written and as listed (`-C euid!=uid -F auid!=unset` prints as
    # `-C uid!=euid -F auid!=-1`) are the same kernel rules: every persisted rule is loaded, before
    # and after the remediation and the boot.
    health = [run.case(vm.spec, "host", "load-health") for run in (before, booted)]
    problems += [f"load-health {c.verdict}: {c.summary}" for c in health if c.verdict != "pass"]
    assert not problems, "\n".join(problems) + "\n" + boot_load_log(vm)
    assert keys(vm) == dict.fromkeys(ACCESSES, "docker")

    undone = audit(fleet, tmp_path / "undone", [vm], "--backout")
    assert undone.verdict(vm.spec, "host", "backout") == "pass", undone.output[-3000:]
    assert vm.run(STATE)[1] == before_state
    reboot(fleet, vm)
    assert vm.run(STATE)[1] == before_state, "the boot after the backout loads another list"


def test_an_immutable_cis_vm_is_fixed_at_the_next_boot_with_e_2_still_last(fleet: Fleet, tmp_path: Path) -> None:
    """The role's file as written, `-e 2` included: the kernel is immutable, so the remediation is
    persisted only ("reboot required"); at the next boot our file loads first, the `-e 2` of
    99_auditd.rules still last, and every applicable control passes."""
    vm = fresh_vm(fleet, rules_d(RULESET.read_text(), "99_auditd.rules") + LOAD)
    assert vm.run("auditctl -s")[1].splitlines()[0] == "enabled 2"
    before_state = vm.run(STATE)[1]
    fixed = audit(fleet, tmp_path / "fixed", [vm], "--remediate")
    assert fixed.case(vm.spec, "host", "remediation").summary.startswith("reboot required: ")
    assert {fixed.verdict(vm.spec, cid, "persisted") for cid in VM_PATHS} == {"pass"}, fixed.output[-3000:]

    reboot(fleet, vm)
    booted = audit(fleet, tmp_path / "booted", [vm])
    assert set(applicable(booted, vm).values()) == {"pass"}, booted.output[-3000:] + boot_load_log(vm)
    assert vm.run("auditctl -s")[1].splitlines()[0] == "enabled 2"
    assert keys(vm) == dict.fromkeys(ACCESSES, "docker")

    undone = audit(fleet, tmp_path / "undone", [vm], "--backout")
    assert undone.case(vm.spec, "host", "backout").summary.startswith("backout reboot-required")
    reboot(fleet, vm)
    assert vm.run(STATE)[1] == before_state, "the boot after the backout loads another list"
