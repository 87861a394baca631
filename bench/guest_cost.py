"""What the probe, the remediation and the backout cost inside one QEMU test VM: a script that
prints figures, not a timed test.

First the milliseconds one run of each tool the scripts start costs, timed inside the guest. Then
each named scenario (selftests/e2e/scenarios.py) is set up on a VM restored from the saved state,
and the probe, the apply of the plan the suite would make, the probe again and the backout run
over SSH one after another. Per step: wall seconds, the guest's CPU-seconds (its /proc/stat, busy
jiffies) and the processes it started (its pid counter, /proc/sys/kernel/ns_last_pid; the SSH
channel itself starts about 3). Under TCG each process costs the guest milliseconds, so these
counts are the CI's scenario pass's main cost (README, "The project's own tests").

    CISAUDIT_TESTHOSTS_CACHE=... flock /run/lock/cisaudit-vm.lock \\
        .venv/bin/python bench/guest_cost.py [--scenarios empty,benchmark-rules] [--runs 1]

`--rules 16,5000` instead splits the probe of a host with N rules (bench/replay_scale.py's, loaded
in the guest): the whole probe over SSH and into /dev/null (their difference is what sending its
output costs the guest), the guest CPU between marks the probe's own shell records (builtins only:
`read` of /proc/stat, no process), the tools alone (and 110 processes doing nothing: about as
many as the probe starts, the floor of its exec costs), the output's size and the host's parse
of it.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cisaudit.host.probe import kernel_rules_py, parse_probe  # noqa: E402
from cisaudit.host.remediation_io import parse_result, render_apply, render_backout  # noqa: E402
from cisaudit.host.session import HostSession, probe_command  # noqa: E402
from cisaudit.host.transport import ConnectOptions  # noqa: E402
from cisaudit.model.catalogue import DEFAULT_VERSION, benchmark, controls  # noqa: E402
from cisaudit.model.plan import make_plan  # noqa: E402
from selftests.e2e.scenarios import BASELINE, SCENARIOS  # noqa: E402
from selftests.testhosts.fleet import Fleet  # noqa: E402
from selftests.testhosts.vm import VM  # noqa: E402

COUNTERS = "cat /proc/sys/kernel/ns_last_pid; head -n 1 /proc/stat"
RUN_ID = "guest-cost-1"


def counters(vm: VM) -> tuple[int, float]:
    """(last pid, busy CPU-seconds) of the guest."""
    pid, cpu = vm.run(COUNTERS)[1].splitlines()[:2]
    jiffies = [int(x) for x in cpu.split()[1:]]
    return int(pid), (sum(jiffies) - jiffies[3] - jiffies[4]) / 100  # not idle, not iowait


TOOLS = {
    "true": "/bin/true",
    "auditctl-l": "auditctl -l",
    "systemctl-cat": "systemctl cat auditd.service",
    "systemctl-is-enabled": "systemctl is-enabled auditd.service",
    "augenrules": "augenrules",
    "python3": "python3 -I -S -c pass",
    "sha256sum": "sha256sum </etc/passwd",
}


def tool_costs(vm: VM) -> None:
    """Milliseconds of one run of each tool the scripts start, timed inside the guest (its second
    run: the first reads the tool from disk into a VM just restored)."""
    for name, command in TOOLS.items():
        once = f"{command} >/dev/null 2>&1"
        timed = f"{once}; t=$(date +%s%N); {once}; echo $((($(date +%s%N) - t) / 1000000))"
        print(f"guest-cost tool={name} ms={vm.run(timed)[1].strip()}")


def step(vm: VM, label: str, command: str) -> str:
    pid0, cpu0 = counters(vm)
    start = time.monotonic()
    rc, out, _ = vm.run(command, timeout=600)
    wall = time.monotonic() - start
    pid1, cpu1 = counters(vm)
    print(f"guest-cost step={label} wall_s={wall:.2f} guest_cpu_s={cpu1 - cpu0:.2f} processes={pid1 - pid0} rc={rc}")
    return out


def measure(fleet: Fleet, vm: VM, name: str) -> None:
    scenario = next(s for s in SCENARIOS if s.name == name)
    fleet.reset(vm)
    rc, out, err = vm.run((BASELINE if scenario.baseline else "set -e\n") + scenario.setup, timeout=180)
    assert rc == 0, out + err
    probe, _ = probe_command(DEFAULT_VERSION)
    step(vm, f"{name}:probe", probe)
    session = HostSession(
        vm.spec, ConnectOptions(known_hosts=str(fleet.known_hosts)), "docker", version=DEFAULT_VERSION
    )
    version = benchmark(DEFAULT_VERSION)
    plan = make_plan(session.assessment(), list(controls()), version)
    print(f"guest-cost scenario={name} rules={len(plan.rule_lines)} tmpfiles={len(plan.tmpfiles)}")
    if plan.rule_lines or plan.tmpfiles:
        apply = render_apply(
            RUN_ID, plan.mode, plan.target, plan.rule_lines, False, version, tmpfiles=list(plan.tmpfiles)
        )
        print(f"  apply: {parse_result(step(vm, f'{name}:apply', apply)).status}")
        step(vm, f"{name}:probe-again", probe)
        print(f"  backout: {parse_result(step(vm, f'{name}:backout', render_backout(RUN_ID, False))).status}")


# Marks inserted before the first line that starts with each anchor:
# the guest's busy jiffies, read by the shell's own `read` (no process), appended to a file.
MARK = (
    "__m() { read -r _ u n s _ _ q sq st _ </proc/stat; "
    'printf "%s %s\\n" "$1" "$((u + n + s + q + sq + st))" >>/tmp/probe-marks; }\n'
)
ANCHORS = (
    "LC_ALL=C",
    "  sec args",
    "  listed_absent",
    "  by_line lstat_all",
    "  sec lstat",
    "  tr '\\0'",
    "  by_file resolve_links",
    "status=$(auditctl -s",
    "listing=$(auditctl -l",
    "sec auditctl-l",
    "sys_cmd()",
    "sec auditd;",
    "if [ -d /run/systemd/system ]",
    "  sec unit-show",
    "dump_line cmdline",
    "dump_each",
    "sec rules-d-order",
    "dump audit-rules",
    "run audit-version",
    "dockerd_pids=",
    "bins=''",
    ': >"$named/rule-paths"',
    "data_root=",
    "case $arch",
    "wanted=",
    "for t in $tables",
    "if [ -r /sys/kernel/security/lsm ]",
    "starts()",
    "IFS='",
    'stat_lines "$@"',
    "stat_lines ",
    "sec 'done'",
)


ABSENT_ARGS = 'set --; i=0; while [ $i -lt 1000 ]; do set -- "$@" /etc/cisaudit-absent-$i; i=$((i + 1)); done;'


def marked(probe: str) -> str:
    """The probe with a mark before the first line that starts with each anchor it has (in any
    order: the marks say what ran when; older probes lack some), and around its exit's framing."""
    lines = probe.splitlines()
    first = ((next((i for i, line in enumerate(lines) if line.startswith(a)), None), a) for a in ANCHORS)
    at = {i: anchor for i, anchor in first if i is not None}
    for i in sorted(at, reverse=True):
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        lines.insert(i, f"{indent}__m {re.sub('[^A-Za-z0-9_.=-]+', '_', at[i].strip())}")
    text = "\n".join(lines) + "\n__m end\n"
    return MARK + text.replace("trap 'flush; rm -rf", "trap '__m flush; flush; __m rm; rm -rf")


def split_probe(fleet: Fleet, vm: VM, size: int) -> None:
    from bench.replay_scale import load_vm_rules  # noqa: PLC0415

    load_vm_rules(vm, size)
    probe, nonce = probe_command(DEFAULT_VERSION)
    step(vm, f"rules={size}:probe-warm", probe)
    output = step(vm, f"rules={size}:probe-ssh", probe)
    step(vm, f"rules={size}:probe-devnull", "{ " + probe + "\n} >/dev/null")
    step(vm, f"rules={size}:probe-marked", "rm -f /tmp/probe-marks; { " + marked(probe) + "\n} >/dev/null")
    marks = [line.rsplit(" ", 1) for line in vm.run("cat /tmp/probe-marks")[1].splitlines()]
    for (label, jiffies), (_, after) in zip(marks, marks[1:], strict=False):
        print(f"guest-cost rules={size} from={label!r} cpu_s={(int(after) - int(jiffies)) / 100:.2f}")
    for name, command in {
        # The floor any probe pays here: as many processes as it starts, each doing nothing (their
        # exec's lookups, taxed by the rules: docs/kernel-behaviour.md), the kernel's list, the files.
        "spawn-110": "i=0; while [ $i -lt 110 ]; do /bin/true; i=$((i + 1)); done",
        # 1,000 lookups that find nothing in one process, and the same shell loop with one that
        # finds /: their difference is what the rules tax a failed lookup.
        "absent-1000": f'{ABSENT_ARGS} stat -- "$@" 2>/dev/null',
        "absent-0": f"{ABSENT_ARGS} stat -- / 2>/dev/null",
        "auditctl-l": "auditctl -l",
        "kernel-rules-py": 'python3 -I -S -c "$KERNEL_RULES_PY"',
        "cat-rules": "cat /etc/audit/rules.d/*.rules /etc/audit/audit.rules",
    }.items():
        values = "KERNEL_RULES_PY=" + shlex.quote(kernel_rules_py()) + "\n"
        step(vm, f"rules={size}:{name}", f"{values}{command} >/dev/null")
    start = time.perf_counter()
    parse_probe(output, nonce, controls(DEFAULT_VERSION))
    print(f"guest-cost rules={size} output_bytes={len(output.encode())} host_parse_s={time.perf_counter() - start:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="empty,benchmark-rules")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--rules", default=None, help="split the probe of hosts with these rule counts: 16,5000")
    args = parser.parse_args()
    if args.rules:
        with Fleet(1) as fleet:
            for _ in range(args.runs):
                for size in args.rules.split(","):
                    split_probe(fleet, fleet[0], int(size))
        return
    names = args.scenarios.split(",")
    unknown = set(names) - {s.name for s in SCENARIOS}
    if unknown:
        parser.error(f"unknown scenario(s) {sorted(unknown)}; see selftests/e2e/scenarios.py")
    with Fleet(1) as fleet:
        tool_costs(fleet[0])
        for _ in range(args.runs):
            for name in names:
                measure(fleet, fleet[0], name)


if __name__ == "__main__":
    main()
