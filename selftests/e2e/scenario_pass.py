"""One pass over every scenario state for the three fleet tests that walk them all.

Each batch of VMs (as many scenarios as the fleet has VMs) is put into its states once. On that
state the read-only checks run first: the SSH audit with `-n`, then serially (test_scenarios; the
two must agree), then the ssm:// audit through the emulator and the fleet fan-out, compared with
the `-n` SSH verdicts (test_ssm_fleet). One after another: the serial audit run beside the SSM
audits measured slower in the whole CI run (407 s against 356 s), the guests being CPU-bound. Then the
state-changing ones, each checked against the files and kernel rules the batch had before any of
them: over SSH `--remediate`, `--remediate` again and a later `--backout`
(test_remediation_fleet), then `--remediate --backout` in one run over SSM. Eight suite runs per
batch; problems are collected per test, which asserts its own list, and the wall time per step
goes to the session's output.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cisaudit.host.transport import ConnectOptions
from selftests.e2e.scenarios import BASELINE, SCENARIOS, Scenario
from selftests.s3_store import MotoS3
from selftests.ssm_emulator import Faults, SsmEmulator
from selftests.suite_runner import SuiteRun, run_suite, shown
from selftests.testhosts.vm import VM

Pairs = list[tuple[VM, Scenario]]
FAULTS = Faults(throttle_every=4, visibility_delay=1.0, pending_time=0.5)
STATE = (
    "cd /etc/audit && find . -type f | LC_ALL=C sort | xargs sha256sum; "
    "stat -c '%n %a %U' audit.rules rules.d/*; echo ---; auditctl -l"
)


@dataclass
class Findings:
    """Problems found in the pass, one list per test that reports them."""

    verdicts: list[str] = field(default_factory=list)  # test_scenarios
    ssm: list[str] = field(default_factory=list)  # test_ssm_fleet
    remediation: list[str] = field(default_factory=list)  # test_remediation_fleet
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per step, summed over batches

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.seconds[step] = self.seconds.get(step, 0.0) + time.monotonic() - start

    def timings(self) -> str:
        """One line for the session's output: where the pass spent its time."""
        parts = ", ".join(f"{step} {seconds:.0f} s" for step, seconds in self.seconds.items())
        return f"scenario pass: {sum(self.seconds.values()):.0f} s ({parts})"


def put_in_state(fleet, vm, scenario: Scenario) -> None:
    fleet.reset(vm)
    set_up(vm, scenario)


def set_up(vm: VM, scenario: Scenario) -> None:
    """Run the scenario's setup on a freshly reset vm."""
    rc, out, err = vm.run((BASELINE if scenario.baseline else "set -e\n") + scenario.setup, timeout=180)
    assert rc == 0, f"{scenario.name} setup failed on {vm.name}: {out}{err}"


def audit(fleet, tmp_path: Path, vms, *args: str) -> SuiteRun:
    return run_suite(tmp_path, [vm.spec for vm in vms], f"--known-hosts={fleet.known_hosts}", *args)


def scenario_batches(fleet) -> Iterator[tuple[int, Pairs]]:
    """Every scenario, as many at a time as the fleet has VMs, each VM put into its state (the
    batch's VMs restored and set up at once)."""
    for number, start in enumerate(range(0, len(SCENARIOS), len(fleet))):
        pairs = list(zip(fleet, SCENARIOS[start : start + len(fleet)], strict=False))
        fleet.reset_all([vm for vm, _ in pairs])  # QEMU starts from this (the main) thread
        with ThreadPoolExecutor(len(pairs)) as pool:
            for done in [pool.submit(set_up, vm, scenario) for vm, scenario in pairs]:
                done.result()
        yield number, pairs


def walk(fleet, tmp_path: Path) -> Findings:
    found = Findings()
    with MotoS3("cisaudit-e2e") as s3:
        batches = scenario_batches(fleet)
        while True:
            with found.timed("restore and set up"):
                number, pairs = next(batches, (-1, []))
            if not pairs:
                return found
            vms = [vm for vm, _ in pairs]
            before = {vm.name: vm.run(STATE)[1] for vm in vms}
            with found.timed("ssh audit (-n)"):
                ssh = audited_in_parallel(fleet, tmp_path, number, pairs, found.verdicts)
            with found.timed("ssh audit (serial)"):
                serial = audit(fleet, tmp_path / f"s{number}", vms, "-n=0")
                found.verdicts += disagreements(ssh, serial, pairs)
            mapping = {instance(i): vm.spec for i, vm in enumerate(vms)}
            options = ConnectOptions(known_hosts=str(fleet.known_hosts))
            with SsmEmulator(mapping, faults=FAULTS, connect_options=options, s3_endpoint=s3.endpoint_url) as emu:
                with found.timed("ssm audits (-n, fan-out)"):
                    audited_over_ssm(tmp_path, number, pairs, ssh, emu, s3, found.ssm)
                with found.timed("ssh remediation (3 runs)"):
                    found.remediation += remediated_over_ssh(fleet, tmp_path, number, pairs, before)
                with found.timed("ssm --remediate --backout"):
                    fix = run_suite(
                        tmp_path / f"fix{number}",
                        list(map(ssm_spec, mapping)),
                        "--ssm-region=us-east-1",
                        f"-n={len(vms)}",
                        "--remediate",
                        "--backout",
                        env=emu.environ,
                    )
                    found.ssm += remediated_over_ssm(fix, pairs, before)


# -- test_scenarios: the verdicts, with -n and serially ------------------------------------------
def audited_in_parallel(fleet, tmp_path: Path, number: int, pairs: Pairs, problems: list[str]) -> SuiteRun:
    vms = [vm for vm, _ in pairs]
    parallel = audit(fleet, tmp_path / f"p{number}", vms, f"-n={len(vms)}")
    for vm, scenario in pairs:
        got = parallel.verdicts(vm.spec)
        commands = {c.remote_commands for (spec, *_), c in parallel.cases.items() if spec == shown(vm.spec)}
        if commands != {1}:
            problems.append(f"{scenario.name}: remote commands {commands}, want 1")
        expected = scenario.expected()
        wrong = {k: (v, got.get(k)) for k, v in expected.items() if got.get(k) != v}
        if wrong:
            details = {k: parallel.case(vm.spec, *k).summary for k in wrong}
            problems.append(f"{scenario.name}: expected/got {wrong}\n  {details}")
    return parallel


def disagreements(parallel: SuiteRun, serial: SuiteRun, pairs: Pairs) -> list[str]:
    return [
        f"{scenario.name}: -n and serial runs disagree"
        for vm, scenario in pairs
        if parallel.verdicts(vm.spec) != serial.verdicts(vm.spec)
    ]


# -- test_ssm_fleet: ssm:// and the fan-out give the SSH verdicts; remediation over SSM ----------
def instance(index: int) -> str:
    return f"i-{index + 1:017x}"


def ssm_spec(instance_id: str) -> str:
    return f"ssm://{instance_id}"


def _sends(emu: SsmEmulator) -> int:
    """SendCommand requests the emulator answered (not throttled)."""
    stats = emu.stats()
    return stats["requests"].get("SendCommand", 0) - stats["throttled"].get("SendCommand", 0)


def audited_over_ssm(
    tmp_path: Path, number: int, pairs: Pairs, ssh: SuiteRun, emu: SsmEmulator, s3: MotoS3, problems: list[str]
) -> None:
    specs = [ssm_spec(instance(i)) for i in range(len(pairs))]
    # One worker per instance, as the SSH audit: the serial run (-n=0) is the SSH one's to prove.
    ssm = run_suite(tmp_path / f"ssm{number}", specs, "--ssm-region=us-east-1", f"-n={len(specs)}", env=emu.environ)
    sends = emu.stats()["calls"]["SendCommand"]
    for i, (vm, scenario) in enumerate(pairs):
        if ssm.verdicts(specs[i]) != ssh.verdicts(vm.spec):
            problems.append(f"{scenario.name}: ssm and ssh verdicts differ")
        if sends.get(instance(i)) != 1:
            problems.append(f"{scenario.name}: {sends.get(instance(i))} SendCommand calls for one audit")
    sent = _sends(emu)
    fanned = run_suite(
        tmp_path / f"fan{number}",
        specs,
        "--ssm-region=us-east-1",
        "--ssm-s3-bucket=cisaudit-e2e",
        env=emu.environ | s3.environ,
    )
    for i, (vm, scenario) in enumerate(pairs):
        if fanned.verdicts(specs[i]) != ssh.verdicts(vm.spec):
            problems.append(f"{scenario.name}: fan-out and ssh verdicts differ")
    if _sends(emu) - sent != 1:
        problems.append(f"batch {number}: the fan-out took {_sends(emu) - sent} SendCommand calls, not 1")


def remediated_over_ssm(fix: SuiteRun, pairs: Pairs, before: dict[str, str]) -> list[str]:
    problems = []
    for i, (vm, scenario) in enumerate(pairs):
        spec = ssm_spec(instance(i))
        problems += [f"{scenario.name} over ssm: {p}" for p in check_remediated(fix, spec, scenario)]
        if fix.verdict(spec, "host", "backout") != "pass":
            problems.append(f"{scenario.name} over ssm: backout {fix.cases[(spec, 'host', 'backout')]}")
        if vm.run(STATE)[1] != before[vm.name]:
            problems.append(f"{scenario.name} over ssm: files or kernel rules differ after backout")
    return problems


# -- test_remediation_fleet: remediate and backout over SSH --------------------------------------
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


def differences(pairs: Pairs, before: dict[str, str], step: str) -> list[str]:
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


def remediated_over_ssh(fleet, tmp_path: Path, number: int, pairs: Pairs, before: dict[str, str]) -> list[str]:
    """--remediate, --remediate again, then --backout in a later run. The two in one session
    (`--remediate --backout`) are proven on the same states over ssm:// (remediated_over_ssm: the
    same checks, the backout's verdict and the files and kernel rules after it); the plugin's
    combined mode does not depend on the transport, and test_connection_cut runs it over SSH
    with the connection cut mid-apply."""
    problems = []
    vms = [vm for vm, _ in pairs]
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
    return problems
