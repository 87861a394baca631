"""Remediation and backout on real VMs, over every scenario state, several hosts at once.

For each state: `--remediate --backout` must fix every control it can (the rest are left
alone because a rule the tool did not write keeps them failing), verify, and leave the rules
files byte-identical and the kernel's rule list unchanged; a second `--remediate` changes
nothing; a later `--backout` run undoes the earlier remediation exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from selftests.e2e.scenarios import Scenario
from selftests.e2e.test_scenarios import audit, scenario_batches
from selftests.suite_runner import SuiteRun

pytestmark = pytest.mark.vm
STATE = (
    "cd /etc/audit && find . -type f | LC_ALL=C sort | xargs sha256sum; "
    "stat -c '%n %a %U' audit.rules rules.d/*; echo ---; auditctl -l"
)


def check_remediated(run: SuiteRun, spec: str, scenario: Scenario) -> list[str]:
    problems = []
    remediation = run.case(spec, "host", "remediation")
    if remediation.verdict != scenario.remediation:
        problems.append(f"remediation {remediation.verdict}: {remediation.summary}")
    immutable = scenario.remediation == "fail"  # reboot required: persisted now, live after reboot
    for cid in scenario.paths:
        for check in ("live", "persisted"):
            want = "fail" if cid in scenario.unfixable or (immutable and check == "live") else "pass"
            case = run.case(spec, cid, check)
            if case.verdict != want:
                problems.append(f"{cid} {check}: want {want}, got {case.verdict}: {case.summary}")
    return problems


def differences(pairs, before: dict[str, str], step: str) -> list[str]:
    """Files (bytes, mode, owner) or kernel rules that are not as they were before."""
    found = []
    for vm, scenario in pairs:
        after = vm.run(STATE)[1]
        if after != before[vm.name]:
            found.append(
                f"{scenario.name} after {step}: files or kernel rules differ:\n{before[vm.name]}\n--- now ---\n{after}"
            )
    return found


def said_nothing_changed(run: SuiteRun, spec: str) -> bool:
    summary = run.case(spec, "host", "remediation").summary
    return summary.startswith("nothing to change") or "added nothing new" in summary


def test_remediate_and_backout_every_state(fleet, tmp_path: Path) -> None:
    problems = []
    for number, pairs in scenario_batches(fleet):
        vms = [vm for vm, _ in pairs]
        before = {vm.name: vm.run(STATE)[1] for vm in vms}

        qa = audit(fleet, tmp_path / f"qa{number}", vms, f"-n={len(vms)}", "--remediate", "--backout")
        for vm, scenario in pairs:
            problems += [f"{scenario.name} (QA run): {p}" for p in check_remediated(qa, vm.spec, scenario)]
            backout = qa.case(vm.spec, "host", "backout")
            if backout.verdict != "pass":
                problems.append(f"{scenario.name}: backout {backout.verdict}: {backout.summary}")
        problems += differences(pairs, before, "--remediate --backout")
        first = audit(fleet, tmp_path / f"r1-{number}", vms, f"-n={len(vms)}", "--remediate")
        second = audit(fleet, tmp_path / f"r2-{number}", vms, f"-n={len(vms)}", "--remediate")
        undo = audit(fleet, tmp_path / f"b{number}", vms, f"-n={len(vms)}", "--backout")
        for vm, scenario in pairs:
            problems += [f"{scenario.name} (--remediate): {p}" for p in check_remediated(first, vm.spec, scenario)]
            if not said_nothing_changed(second, vm.spec):
                problems.append(
                    f"{scenario.name}: a second --remediate changed something: "
                    f"{second.case(vm.spec, 'host', 'remediation').summary}"
                )
            backout = undo.case(vm.spec, "host", "backout")
            if backout.verdict != "pass":
                problems.append(f"{scenario.name}: later --backout {backout.verdict}: {backout.summary}")
        problems += differences(pairs, before, "--remediate, --remediate, then --backout")
    assert not problems, "\n".join(problems)
