"""How the cost of judging one host grows with its number of rules: a script that prints figures,
not a timed test.

Model only (the default): each size is a host whose rules.d holds N rules (STIG-like watches and
syscall rules on other paths, plus the 16 benchmark rules) and whose kernel lists the same N; the
figure is the median wall time of parsing, replaying the boot-time load and judging every
control's live and persisted checks, in this process.

    .venv/bin/python bench/replay_scale.py [--sizes 16,1000,5000,10000] [--runs 5]

Whole audit (`--whole`, root, this machine's kernel): each size's rules are written to
/etc/audit/rules.d and loaded into the kernel (watches of absent paths and per-binary syscall
rules, as STIG writes them, plus the benchmark's rules for the paths this machine has), then
`pytest --hosts=local://` runs as a user runs it, probe included; the figure is the median wall
time of the whole run, and `ratio` is it against 16 rules (`cpu_pytest_s` and `cpu_children_s`:
the CPU of pytest's own process and of its children, the probe, apart). Then `collect-only`:
the same pytest collecting only (no probe, no judgement), whose ratio is the kernel's per-syscall
tax on a host with that many rules, the floor under the audit's. Holds the kernel lock
(/run/lock/cisaudit-selftest.lock) and restores the rules and /etc/audit afterwards.

    .venv/bin/python bench/replay_scale.py --whole [--sizes 16,5000,10000] [--runs 3] [--root-path]

QEMU test VM (`--vm`, root): one VM (selftests/testhosts; CISAUDIT_TESTHOSTS_CACHE names the image
cache), N rules written and loaded there, the whole audit over SSH: wall time, the QEMU process's CPU
(the guest's work; less disturbed by a loaded machine than wall time) and the suite's own CPU.
Holds the VM lock (run it without an outer `flock` on the same file: that would wait forever).

    .venv/bin/python bench/replay_scale.py --vm [--sizes 16,5000] [--runs 3]

--root-path runs pytest with a root login's PATH instead of the caller's: a pyenv `python3` shim
first on PATH costs the probe's kernel-list reader 0.4-0.8 s at 5,000 rules (docs/kernel-behaviour.md).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cisaudit.host.session import HostSession  # noqa: E402
from cisaudit.host.transport import ConnectOptions  # noqa: E402
from cisaudit.model.catalogue import controls  # noqa: E402
from cisaudit.model.evaluate import Assessment  # noqa: E402
from cisaudit.model.snapshot import PathInfo, Snapshot  # noqa: E402
from cisaudit.model.verdict import CONTROL_CHECKS, Check  # noqa: E402
from selftests.kernel import KernelSandbox, sh  # noqa: E402
from selftests.snapshots import audited_host  # noqa: E402

if TYPE_CHECKING:
    from selftests.testhosts.vm import VM

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


def filler_rules(count: int) -> list[str]:
    """Rules that load on any Linux host: watches of absent files in /etc, and STIG's per-binary
    privileged-command rules on absent files in /usr/bin (a path= rule needs only the parent)."""
    return [
        f"-w /etc/cisaudit-scale-{i}.conf -p wa -k site"
        if i % 2
        else f"-a always,exit -F arch=b64 -S execve -F path=/usr/bin/cisaudit-scale-{i} -F perm=x "
        "-F auid>=1000 -F auid!=unset -k privileged"
        for i in range(count)
    ]


# A root login's PATH on Debian (--root-path): no pyenv or cargo directories before the system's.
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# `python -m pytest` with the CPU of pytest's own process and of its children (the probe) apart,
# on stderr after the run: `cisaudit-bench-cpu PYTEST CHILDREN`.
SPLIT_CPU = (
    "import resource, sys, pytest\n"
    "code = pytest.main(sys.argv[1:])\n"
    "own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))\n"
    "print('cisaudit-bench-cpu', own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def _split_cpu(stderr: str) -> tuple[float, float]:
    """(pytest's process, its children) CPU seconds from SPLIT_CPU's line; (0, 0) without one."""
    for line in reversed(stderr.splitlines()):
        if line.startswith("cisaudit-bench-cpu "):
            own, kids = line.split()[1:3]
            return float(own), float(kids)
    return 0.0, 0.0


def audit_once(workdir: Path, path: str | None = None, args: list[str] | None = None) -> tuple[float, float]:
    """One `pytest --hosts=local://` run with every output, as a user runs it: its wall time, and
    the CPU time of it and its children (the probe), which a loaded machine disturbs less. `path`:
    the PATH it runs with (default the caller's); `args`: the hosts to audit instead of local://."""
    wall, cpu, _ = audit_split(workdir, path, args)
    return wall, cpu


def audit_split(
    workdir: Path, path: str | None = None, args: list[str] | None = None
) -> tuple[float, float, tuple[float, float]]:
    """audit_once, and its CPU split into pytest's own process and its children (the probe)."""
    cmd = [
        sys.executable,
        "-c",
        SPLIT_CPU,
        *(args or ["--hosts=local://"]),
        "-q",
        f"--junitxml={workdir / 'junit.xml'}",
        f"--html={workdir / 'tests.html'}",
        f"--compliance-report={workdir / 'compliance.html'}",
        f"--results-json={workdir / 'results.json'}",
        f"--xccdf={workdir / 'results.xccdf.xml'}",
    ]
    proc, elapsed, cpu = run_suite(cmd, path, (0, 1))
    return elapsed, cpu, _split_cpu(proc.stderr)


def run_suite(
    cmd: list[str], path: str | None, ok: tuple[int, ...]
) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run a pytest command from the repository: it, its wall time and its CPU (its children's
    included); exits with its output when its exit code is not one of `ok`."""
    start, used = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "PATH": path} if path else None
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False, env=env)
    elapsed = time.perf_counter() - start
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in ok:
        raise SystemExit(f"the suite failed to run (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-2000:]}")
    return proc, elapsed, now.ru_utime + now.ru_stime - used.ru_utime - used.ru_stime


def own_rules() -> list[str]:
    """The benchmark's rules for the objects this machine has (others would stop the load)."""
    assessment = Assessment(HostSession("local://", ConnectOptions(), "docker", version="1.7.0").probe(), "docker")
    targets = [assessment.target(c) for c in controls()]
    return [t.control.rule_text(assessment.audit_object(t).path) for t in targets if t.exists]


def listed_rules(expected: int) -> int:
    """How many rules `auditctl -l` lists; asked again when short (on a loaded machine a 10,000-rule
    listing came back cut twice: 9,998 and 0 lines, with the rules loaded)."""
    listed = 0
    for _ in range(3):
        listed = len(sh("auditctl -l").stdout.splitlines())
        if listed == expected:
            break
    return listed


def collect_only_cpu(runs: int, path: str | None) -> float:
    """Median CPU of `pytest --hosts=local:// --collect-only`: pytest starting, importing and
    collecting, no probe and no judgement. What it gains with the host's rules is the kernel's
    tax on every syscall (its exit filter walks every rule: docs/kernel-behaviour.md), which any
    program on that host pays: the floor under the whole audit's ratio."""
    cmd = [sys.executable, "-m", "pytest", "--hosts=local://", "--collect-only", "-q", "-p", "no:cacheprovider"]
    return statistics.median(run_suite(cmd, path, (0,))[2] for _ in range(runs))


def whole_audit(sizes: list[int], runs: int, path: str | None = None) -> None:
    """The whole local audit per size, with that many rules persisted and loaded."""
    with FileLock("/run/lock/cisaudit-selftest.lock"):
        sandbox = KernelSandbox()
        try:
            own = own_rules()
            base = cpu_base = floor_base = None
            for size in sizes:
                rules = own + filler_rules(max(size - len(own), 0))
                sandbox.write_rules_d("60-scale.rules", "\n".join(rules) + "\n")
                loaded = sandbox.load()
                listed = listed_rules(len(rules))
                if loaded.returncode != 0 or listed != len(rules):
                    raise SystemExit(f"loading {len(rules)} rules failed ({listed} listed): {loaded.stderr[-500:]}")
                with tempfile.TemporaryDirectory(prefix="cisaudit-scale-") as work:
                    walls, cpus, splits = zip(*(audit_split(Path(work), path) for _ in range(runs)), strict=True)
                median, cpu = statistics.median(walls), statistics.median(cpus)
                base, cpu_base = base or median, cpu_base or cpu
                in_pytest, in_children = (statistics.median(part) for part in zip(*splits, strict=True))
                print(
                    f"whole-audit rules={size} median_s={median:.2f} min_s={min(walls):.2f} "
                    f"max_s={max(walls):.2f} ratio={median / base:.2f} cpu_s={cpu:.2f} cpu_ratio={cpu / cpu_base:.2f} "
                    f"cpu_pytest_s={in_pytest:.2f} cpu_children_s={in_children:.2f}",
                    flush=True,
                )
                floor_cpu = collect_only_cpu(runs, path)
                floor_base = floor_base or floor_cpu
                floor = f"cpu_s={floor_cpu:.2f} cpu_ratio={floor_cpu / floor_base:.2f}"
                print(f"collect-only rules={size} {floor}", flush=True)
        finally:
            sandbox.restore()


# Written on the VM by its own shell (no 10,000-line command over SSH): filler_rules(N), in order.
VM_RULES = (
    'i=0; while [ $i -lt {n} ]; do if [ $((i % 2)) = 1 ]; then echo "-w /etc/cisaudit-scale-$i.conf -p wa -k site"; '
    'else echo "-a always,exit -F arch=b64 -S execve -F path=/usr/bin/cisaudit-scale-$i -F perm=x -F auid>=1000 '
    '-F auid!=unset -k privileged"; fi; i=$((i + 1)); done >/etc/audit/rules.d/60-scale.rules && '
    "augenrules --load >/dev/null 2>&1; for t in 1 2 3; do c=$(auditctl -l 2>/dev/null | grep -c scale); "
    "[ $c = {n} ] && break; done; echo $c"  # a listing of thousands can fail with ENOBUFS: asked again
)


def load_vm_rules(vm: VM, size: int) -> None:
    """filler_rules(size) persisted and loaded on the test VM (VM_RULES); exits when the kernel
    lists fewer."""
    rc, out, err = vm.run(VM_RULES.format(n=size), timeout=900)
    if out.strip() != str(size):
        raise SystemExit(f"loading {size} rules on the VM failed ({out.strip()} listed): {err[-500:]}")


def _qemu_cpu(pid: int) -> float:
    """CPU-seconds the VM's QEMU process has used: the guest's work under TCG, which a loaded
    machine inflates less than wall time."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm_audit(sizes: list[int], runs: int) -> None:
    """The whole audit of one QEMU test VM over SSH (selftests/testhosts), with N rules persisted and
    loaded there: wall time, QEMU's CPU (the guest's work) and the suite's own CPU (host side).
    Holds the VM lock."""
    from selftests.testhosts.fleet import Fleet  # noqa: PLC0415 (boots QEMU: only in this mode)

    with FileLock("/run/lock/cisaudit-vm.lock"), Fleet(1) as fleet:
        vm, base, qemu_base = fleet[0], None, None
        assert vm.proc is not None
        for size in sizes:
            load_vm_rules(vm, size)
            walls, qemus, hosts = [], [], []
            with tempfile.TemporaryDirectory(prefix="cisaudit-scale-") as work:
                args = [f"--hosts={vm.spec}", f"--known-hosts={fleet.known_hosts}"]
                for _ in range(runs):
                    before = _qemu_cpu(vm.proc.pid)
                    wall, cpu = audit_once(Path(work), args=args)
                    qemus.append(_qemu_cpu(vm.proc.pid) - before)
                    walls.append(wall)
                    hosts.append(cpu)
            median, qemu = statistics.median(walls), statistics.median(qemus)
            base, qemu_base = base or median, qemu_base or qemu
            print(
                f"vm-audit rules={size} median_s={median:.2f} min_s={min(walls):.2f} max_s={max(walls):.2f} "
                f"ratio={median / base:.2f} qemu_cpu_s={qemu:.2f} qemu_cpu_ratio={qemu / qemu_base:.2f} "
                f"host_cpu_s={statistics.median(hosts):.2f}",
                flush=True,
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=None, help="rule counts (default 16,1000,5000,10000; --whole 16,5000,10000)")
    parser.add_argument("--runs", type=int, default=None, help="runs per size (default 5; --whole 3)")
    parser.add_argument("--whole", action="store_true", help="the whole local audit on this kernel (root)")
    parser.add_argument(
        "--root-path", action="store_true", help=f"--whole: run pytest with PATH={ROOT_PATH} (not the caller's)"
    )
    parser.add_argument("--vm", action="store_true", help="the whole audit of one QEMU test VM over SSH")
    args = parser.parse_args()
    if args.vm:
        vm_audit([int(s) for s in (args.sizes or "16,5000").split(",")], args.runs or 3)
        return 0
    if args.whole:
        sizes = [int(s) for s in (args.sizes or "16,5000,10000").split(",")]
        whole_audit(sizes, args.runs or 3, ROOT_PATH if args.root_path else None)
        return 0
    args.sizes = args.sizes or "16,1000,5000,10000"
    args.runs = args.runs or 5
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
