"""What an audit costs per host and how a fleet scales, against the naive way.

    python bench/benchmark.py [--runs 5] [--sizes 1,3,6] [--json bench/results.json] [--skip-vms]
    python bench/benchmark.py --fleet 100,1000,10000 [--baseline 100,1000]   (SSM fleet scale only)
    python bench/benchmark.py --fleet 10000 --baseline-file   (--baseline's added time and memory)
    python bench/benchmark.py --shards 100000/8   (a list job, 8 --shard runs one after another, the merge)
    python bench/benchmark.py --shards 100000/8 --shards-dir DIR [--merge-only]   (keep them; the merge alone)

Every figure is a pytest subprocess run as a user would; CPU is user+sys of that process tree
(os.wait4 rusage, reaped xdist workers included), max RSS the largest process in it. QEMU CPU
is read from /proc for the fleet's VMs. Medians over --runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
sys.path.insert(0, str(REPO))

from cisaudit.host.probe import render_probe  # noqa: E402
from cisaudit.host.transport import ConnectOptions  # noqa: E402
from cisaudit.model.catalogue import benchmark, controls  # noqa: E402
from selftests.s3_store import MotoS3  # noqa: E402
from selftests.ssm_emulator import Faults, SsmEmulator  # noqa: E402
from selftests.ssm_replay import Recording, Replayer, record_local  # noqa: E402
from selftests.suite_runner import parse_junit, shown  # noqa: E402

PY = sys.executable
ISOLATED = ["-p", "no:cacheprovider", "-c", "/dev/null", "--noconftest", "-q"]
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    wall: float
    cpu: float  # user+sys of the pytest process tree
    maxrss_mb: float
    rc: int
    vm_cpu: float = 0.0  # user+sys of the fleet's QEMU processes during the run
    load: float = 0.0  # 1-min load average before the run
    machine_cpu: float = 0.0  # busy CPU-seconds of the whole machine during the run (/proc/stat)
    summary: str = ""  # pytest's last output line

    @property
    def other_cpu(self) -> float:
        """CPU used by anything else: other people's work, plus this script (SSM emulator)."""
        return max(0.0, self.machine_cpu - self.cpu - self.vm_cpu)


@dataclass
class Row:
    name: str
    hosts: int
    workers: int
    samples: list[Sample] = field(default_factory=list)
    commands_per_host: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def med(self, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in self.samples)


def qemu_cpu(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def machine_cpu() -> float:
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / TICK


def measure(cmd: list[str], env: dict[str, str] | None = None, qemu_pids: Sequence[int] = ()) -> Sample:
    load = os.getloadavg()[0]
    vm0, m0 = qemu_cpu(qemu_pids), machine_cpu()
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        vm, busy = qemu_cpu(qemu_pids) - vm0, machine_cpu() - m0
        rc = proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if rc not in (0, 1):  # 1: failing controls are a normal audit outcome
        raise RuntimeError(f"{' '.join(cmd)} exited {rc}:\n{text[-2000:]}")
    summary = text.strip().splitlines()[-1] if text.strip() else ""
    return Sample(wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, rc, vm, load, busy, summary)


def suite_cmd(hosts: list[str], tmp: Path, workers: int, *extra: str) -> list[str]:
    return [
        PY,
        "-m",
        "pytest",
        f"--hosts={','.join(hosts)}",
        f"--junitxml={tmp}/junit.xml",
        f"--html={tmp}/report.html",
        "-p",
        "no:cacheprovider",
        "-q",
        *n_opt(workers),
        *extra,
    ]


def naive_cmd(hosts: list[str], workers: int) -> list[str]:
    return [
        PY,
        "-m",
        "pytest",
        str(BENCH / "naive" / "test_naive_audit.py"),
        "-p",
        "naive_counter",
        *ISOLATED,
        f"--rootdir={BENCH / 'naive'}",
        f"--hosts={','.join(hosts)}",
        *n_opt(workers),
    ]


def n_opt(workers: int) -> list[str]:
    return ["-n", str(workers)] if workers > 1 else []


def suite_commands(tmp: Path, hosts: list[str]) -> float:
    cases = parse_junit(tmp / "junit.xml")
    per_host: dict[str, int] = {}
    for (host, _, _), props in cases.items():
        per_host[host] = max(per_host.get(host, 0), props.remote_commands)
    assert set(per_host) == {shown(h) for h in hosts}, f"JUnit hosts {sorted(per_host)} != {hosts}"
    return statistics.mean(per_host.values())


def naive_commands(count_dir: Path, hosts: int) -> float:
    total = sum(sum(json.loads(f.read_text()).values()) for f in count_dir.glob("*.json"))
    for f in count_dir.glob("*.json"):
        f.unlink()
    return total / hosts


def run_suite(
    name: str,
    hosts: list[str],
    workers: int,
    runs: int,
    extra: Sequence[str] = (),
    env: dict[str, str] | None = None,
    qemu_pids: Sequence[int] = (),
    after: Callable[[Row], None] | None = None,
) -> Row:
    row = Row(name, len(hosts), workers)
    with tempfile.TemporaryDirectory() as d:
        for _ in range(runs):
            row.samples.append(measure(suite_cmd(hosts, Path(d), workers, *extra), env, qemu_pids))
            row.commands_per_host = suite_commands(Path(d), hosts)
            if after:
                after(row)
    return row


def run_naive(name: str, hosts: list[str], workers: int, runs: int, qemu_pids: Sequence[int] = ()) -> Row:
    row = Row(name, len(hosts), workers)
    with tempfile.TemporaryDirectory() as d:
        env = {"NAIVE_COUNT_DIR": d, "PYTHONPATH": str(BENCH / "naive")}
        for _ in range(runs):
            row.samples.append(measure(naive_cmd(hosts, workers), env, qemu_pids))
            row.commands_per_host = naive_commands(Path(d), len(hosts))
    return row


def bench_local(runs: int) -> list[Row]:
    return [run_suite("suite local://", ["local://"], 1, runs), run_naive("naive local://", ["local://"], 1, runs)]


def probe_alone(vms: Sequence[Any], runs: int) -> dict[str, float]:
    """The probe command by itself over a warm SSH connection: per VM alone, and all at once."""
    script, _ = render_probe(controls("1.7.0"))
    alone = []
    for vm in vms:
        times = []
        for _ in range(min(runs, 2)):
            t0 = time.perf_counter()
            vm.run(script)
            times.append(time.perf_counter() - t0)
        alone.append(statistics.median(times))
    together = []
    for _ in range(min(runs, 3)):
        threads = [threading.Thread(target=vm.run, args=(script,)) for vm in vms]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        together.append(time.perf_counter() - t0)
    return {
        "probe_alone_median_s": statistics.median(alone),
        "probe_alone_max_s": max(alone),
        f"probe_all_{len(vms)}_concurrent_s": statistics.median(together),
    }


def idle_qemu_cpu(pids: Sequence[int], seconds: float = 5.0) -> float:
    """Cores the idle fleet burns (TCG timers, guest housekeeping)."""
    c0 = qemu_cpu(pids)
    time.sleep(seconds)
    return (qemu_cpu(pids) - c0) / seconds


def bench_fleet(
    sizes: list[int], runs: int, naive_runs: int, cap: int, suite_cap: int
) -> tuple[list[Row], dict[str, Any]]:
    from selftests.testhosts.fleet import Fleet

    rows: list[Row] = []
    t0 = time.monotonic()
    with Fleet(max(sizes)) as fleet:
        info: dict[str, Any] = {
            "fleet_start_s": round(time.monotonic() - t0, 1),
            "fleet_ready_s": round(fleet.ready_seconds, 1),
        }
        pids = [vm.proc.pid for vm in fleet if vm.proc]
        info["idle_fleet_cores"] = round(idle_qemu_cpu(pids), 2)
        info |= {k: round(v, 2) for k, v in probe_alone(list(fleet), runs).items()}
        kh = [f"--known-hosts={fleet.known_hosts}"]
        for k in sizes:
            specs = [vm.spec for vm in fleet.vms[:k]]
            rows.append(run_suite(f"suite paramiko x{k}", specs, min(k, suite_cap), runs, kh, qemu_pids=pids))
        for k in sizes:  # the fresh image fails most controls: every run fixes them, then reverts
            specs = [vm.spec for vm in fleet.vms[:k]]
            rows.append(
                run_suite(
                    f"remediate+backout paramiko x{k}",
                    specs,
                    min(k, suite_cap),
                    runs,
                    [*kh, "--remediate", "--backout"],
                    qemu_pids=pids,
                )
            )
        for k in sizes:  # the same over ssm:// (emulator, 1 s per API call) to the same VMs
            ids = [f"i-{n + 1:017x}" for n in range(k)]
            options = ConnectOptions(known_hosts=str(fleet.known_hosts))
            with SsmEmulator(
                dict(zip(ids, (vm.spec for vm in fleet.vms), strict=False)),
                faults=Faults(latency=1.0),
                connect_options=options,
            ) as emu:
                rows.append(
                    run_suite(
                        f"remediate+backout ssm->vm x{k} (1s/call)",
                        [f"ssm://{i}" for i in ids],
                        min(k, suite_cap),
                        runs,
                        ["--ssm-region=us-east-1", "--remediate", "--backout"],
                        env=emu.environ,
                        qemu_pids=pids,
                        after=lambda row, emu=emu, ids=ids: row.extra.update(
                            send_command_per_host=emu.stats()["calls"]["SendCommand"].get(ids[0], 0) / len(row.samples)
                        ),
                    )
                )
        for k in sizes:
            specs = [vm.spec for vm in fleet.vms[:k]]
            rows.append(run_naive(f"naive paramiko x{k}", specs, min(k, cap), naive_runs, qemu_pids=pids))
    return rows, info


def bench_ssm(sizes: list[int], runs: int, suite_cap: int, latency: float) -> list[Row]:
    rows = []
    for k in sizes:
        ids = [f"i-{n + 1:017x}" for n in range(k)]
        with SsmEmulator(dict.fromkeys(ids, "local://"), faults=Faults(latency=latency)) as emu:

            def after(row: Row, emu: SsmEmulator = emu, ids: list[str] = ids) -> None:
                calls = emu.stats()["calls"]
                total = sum(sum(counts.values()) for counts in calls.values())
                row.extra = {
                    "send_command_per_host": calls["SendCommand"].get(ids[0], 0) / len(row.samples),
                    "api_calls_per_host": round(total / len(row.samples) / len(ids), 1),
                    "calls": calls,
                }

            rows.append(
                run_suite(
                    f"suite ssm x{k} ({latency:g}s/call)",
                    [f"ssm://{i}" for i in ids],
                    min(k, suite_cap),
                    runs,
                    env=emu.environ,
                    after=after,
                )
            )
    return rows


def bench_report(runs: int, hosts: int) -> tuple[Row, Row]:
    base = [
        PY,
        "-m",
        "pytest",
        str(BENCH / "synth" / "test_synthetic_report.py"),
        "-p",
        "cisaudit.plugin",
        *ISOLATED,
        f"--rootdir={BENCH / 'synth'}",
        "-o",
        "junit_family=xunit1",
    ]
    env = {"SYNTH_HOSTS": str(hosts)}
    plain, reports = Row(f"synthetic {hosts}x16x2, no reports", hosts, 1), Row("  + --html + --junitxml", hosts, 1)
    with tempfile.TemporaryDirectory() as d:
        with_reports = [*base, f"--html={d}/r.html", "--self-contained-html", f"--junitxml={d}/j.xml"]
        for _ in range(runs):  # interleaved, so drifting machine load hits both alike
            plain.samples.append(measure(base, env))
            reports.samples.append(measure(with_reports, env))
        reports.extra = {
            "html_mb": round(Path(d, "r.html").stat().st_size / 2**20, 1),
            "junit_mb": round(Path(d, "j.xml").stat().st_size / 2**20, 1),
        }
    return plain, reports


FLEET_BUCKET = "cisaudit-bench"
OUTPUTS = ("compliance.html", "results.json", "results.xccdf.xml", "results.xccdf.hosts", "junit.xml", "tests.html")


def output_sizes(tmp: Path) -> dict[str, list[int]]:
    """Each output (a directory: the per-host XCCDF files) -> the sizes of its files, in bytes."""
    sizes: dict[str, list[int]] = {}
    for name in OUTPUTS:
        path = tmp / name
        files = sorted(path.iterdir()) if path.is_dir() else [path] if path.exists() else []
        sizes[name] = [f.stat().st_size for f in files]
    return sizes


def size_fields(tmp: Path) -> str:
    """`report_mb=.. largest_file_mb=..` for the ssm-fleet line: every output file, and the largest one."""
    files = [size for sizes in output_sizes(tmp).values() for size in sizes]
    return f"report_mb={sum(files) / 2**20:.1f} largest_file_mb={max(files, default=0) / 2**20:.1f}"


def outputs_line(kind: str, hosts: int, tmp: Path) -> str:
    """`outputs hosts=.. compliance.html=..MB ...`: each output's size (a directory: its files' total)."""
    sizes = output_sizes(tmp)
    return f"{kind}-outputs hosts={hosts} " + " ".join(
        f"{name}={sum(found) / 2**20:.1f}MB" + (f"({len(found)}files)" if (tmp / name).is_dir() else "")
        for name, found in sizes.items()
        if found
    )


# The fleet runs' pytest command, every instance by its tag through the emulator (bench_* below).
FLEET_PYTEST = (PY, "-m", "pytest", "--ssm-targets=tag:Role=docker-host", "--ssm-region=us-east-1")


def fleet_line(kind: str, hosts: int, sample: Sample, requests: dict[str, int], throttled: int, tmp: Path) -> str:
    return (
        f"{kind} hosts={hosts} wall_s={sample.wall:.1f} peak_rss_mb={sample.maxrss_mb:.0f} {size_fields(tmp)} "
        f"cpu_s={sample.cpu:.1f} ssm_calls={sum(requests.values())} send_command={requests.get('SendCommand', 0)} "
        f"calls_per_host={sum(requests.values()) / hosts:.3f} throttled={throttled} load={sample.load:.1f} "
        f"[{sample.summary.strip('= ')}]"
    )


PROBE_SECONDS: list[float] = []  # --probe-seconds: the replayed probe's pace, fixed (runs compared)


def record_quiet(runs: int = 5) -> Recording:
    """The local probe recorded while no selftest owns the kernel's audit rules (their lock): a
    test that loaded thousands of rules made the recording 1.1 MB and 2.2 s instead of 39 KB and
    0.3 s, and every emulated instance replays it. Its pace: --probe-seconds, else the median of
    `runs` recordings (one ranged from 0.24 to 0.70 s with the machine's load)."""
    from filelock import FileLock

    with FileLock("/run/lock/cisaudit-selftest.lock"):
        recordings = [record_local() for _ in range(runs)]
    pace = PROBE_SECONDS[0] if PROBE_SECONDS else statistics.median(r.seconds for r in recordings)
    return dataclasses.replace(recordings[-1], seconds=pace)


def bench_fleet_ssm(sizes: list[int], baseline: list[int], latency: float, throttle_rate: float) -> None:
    """Audits of N emulated instances by tag (`ssm-fleet`: the fan-out, output through moto's S3
    server) and over today's per-host path (`ssm-per-host`), 0.2 s per API call, throttled above
    `throttle_rate` calls/s. The instances answer from one recorded real probe output of this
    machine, paced at the probe's own run time; everything else (the suite, the SSM API, S3) is real."""
    rec = record_quiet()
    print(
        f"# instances answer from a recorded real probe output of this machine (local://, "
        f"{len(rec.stdout)} bytes, {rec.seconds:.2f} s per probe); latency {latency} s per API call; "
        f"throttling above {throttle_rate:g} calls/s",
        flush=True,
    )
    runs = [("ssm-fleet", n, [f"--ssm-s3-bucket={FLEET_BUCKET}"]) for n in sizes]
    runs += [("ssm-per-host", n, []) for n in baseline]
    with MotoS3(FLEET_BUCKET) as s3:
        for kind, hosts, extra in runs:
            ids = [f"i-{n + 1:017x}" for n in range(hosts)]
            replayer = Replayer(dict.fromkeys(ids, rec))
            faults = Faults(latency=latency, throttle_rate=throttle_rate)
            with (
                SsmEmulator(
                    dict.fromkeys(ids),
                    tags=dict.fromkeys(ids, {"Role": "docker-host"}),
                    faults=faults,
                    s3_endpoint=s3.endpoint_url,
                    runner=replayer,
                ) as emu,
                tempfile.TemporaryDirectory() as d,
            ):
                tmp = Path(d)
                cmd = [
                    *FLEET_PYTEST,
                    f"--junitxml={tmp}/junit.xml",
                    f"--html={tmp}/tests.html",
                    f"--compliance-report={tmp}/compliance.html",
                    f"--results-json={tmp}/results.json",
                    f"--xccdf={tmp}/results.xccdf.xml",
                    "-p",
                    "no:cacheprovider",
                    "-q",
                    *extra,
                ]
                sample = measure(cmd, emu.environ | s3.environ)
                stats = emu.stats()
                print(
                    fleet_line(kind, hosts, sample, stats["requests"], sum(stats["throttled"].values()), tmp)
                    + f" replayed={replayer.replayed}",
                    flush=True,
                )
                print(outputs_line(kind, hosts, tmp), flush=True)


def _synthetic_fleet(hosts: int, failing_every: int) -> Any:
    """A fleet's RunResults as a 10,000-host run keeps them: every control live and persisted and the
    host checks per host, with realistic text; 1.1.4 fails on every `failing_every`-th host."""
    from cisaudit.model.catalogue import controls
    from cisaudit.model.verdict import CONTROL_CHECKS, HOST_CHECKS, Check, Status
    from cisaudit.outputs.record import CaseRecord
    from cisaudit.outputs.results import RunInfo, RunResults

    rule = "`-w /etc/docker -p rwxa -k docker` (/etc/audit/rules.d/60-cis-docker.rules:3)"
    checks = [(c.id, k) for c in controls() for k in CONTROL_CHECKS] + [("host", k) for k in HOST_CHECKS]
    cases = []
    for n in range(hosts):
        host = f"ssm://i-{n + 1:017x}"
        for control_id, check in checks:
            failing = control_id == "1.1.4" and n % failing_every == 0
            status = Status.FAIL if failing else Status.PASS
            summary = "no rule audits /run/containerd" if failing else f"live rule {rule}"
            cases.append(CaseRecord(host, control_id, Check(check), status, summary, evidence=rule, title="t"))
    return RunResults(RunInfo("pytest", "audit", False, 0.0, 1.0, "0", "bench", benchmark=benchmark("1.7.0")), cases)


def _timed(run: Callable[..., None], *args: Any) -> float:
    t0 = time.perf_counter()
    run(*args)
    return time.perf_counter() - t0


def _write_outputs(results: Any, out: Path, html: Path) -> None:
    """The outputs that carry the delta: results.json (streamed, as the run writes it), the report."""
    from cisaudit.outputs.compliance_html import render_html
    from cisaudit.outputs.results_json import iter_json

    with out.open("w") as stream:
        stream.writelines(iter_json(results))
    html.write_text(render_html(results))


def bench_baseline_file(sizes: list[int]) -> None:
    """--baseline's cost at fleet size (issue 25), in process on a synthetic fleet: the outputs
    that carry the delta (results.json, the compliance report) written with and without it; the
    added time includes reading the baseline, classifying every check and the report's section.
    Memory: the Python heap the delta keeps and peaks at while the baseline is read (tracemalloc)."""
    import tracemalloc

    from cisaudit.outputs.baseline import load_baseline
    from cisaudit.outputs.delta_report import delta_of
    from cisaudit.outputs.results_json import SCHEMA_VERSION, iter_json

    for hosts in sizes:
        before, now = _synthetic_fleet(hosts, 7), _synthetic_fleet(hosts, 5)
        with tempfile.TemporaryDirectory() as d:
            base, out, html = Path(d) / "baseline.json", Path(d) / "results.json", Path(d) / "compliance.html"
            base.write_text("".join(iter_json(before)))
            t0 = time.perf_counter()
            delta = delta_of(now.cases, *load_baseline(str(base), SCHEMA_VERSION))
            delta.counted  # noqa: B018 - the class counts, computed once per run
            read = time.perf_counter() - t0
            plain, carried = [], []  # writes without and with the delta, alternated (a loaded machine)
            for _ in range(3):
                now.delta = None
                plain.append(_timed(_write_outputs, now, out, html))
                now.delta = delta
                carried.append(_timed(_write_outputs, now, out, html))
            added = read + min(carried) - min(plain)
            now.delta = None
            tracemalloc.start()
            now.delta = delta_of(now.cases, *load_baseline(str(base), SCHEMA_VERSION))
            kept, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(
                f"baseline-file hosts={hosts} checks={len(now.cases)} baseline_mb={base.stat().st_size / 2**20:.1f} "
                f"outputs_s={min(plain):.1f} delta_added_s={added:.1f} (read+classify {read:.1f}; best of 3 writes) "
                f"delta_kept_mb={kept / 2**20:.1f} delta_peak_mb={peak / 2**20:.1f} "
                f"classes={ {str(k): v for k, v in now.delta.counted.items() if v} }",
                flush=True,
            )


def bench_shards(
    hosts: int,
    shards: int,
    latency: float,
    throttle_rate: float,
    only: list[int] | None = None,
    keep: Path | None = None,
) -> None:
    """`ssm-shards`: N emulated instances audited as CI would: one list job (`python -m
    cisaudit.plugin.ssm_list`, timed as `list_s`) pages the tag once and writes the ids; then
    `shards` `--shard K/N --ssm-instances-file` runs, one after another (a CI runs them side by
    side), then `python -m cisaudit.plugin.merge` over their results.json.
    `only`: run just these shards (no merge then: it needs every shard; the line says `ran=`).
    `keep`: the shards' directory, kept (`--shards-dir`; `--merge-only` then re-runs the merge)."""
    rec = record_quiet()
    ids = [f"i-{n + 1:017x}" for n in range(hosts)]
    walls, rss = [], []
    with (
        MotoS3(FLEET_BUCKET) as s3,
        SsmEmulator(
            dict.fromkeys(ids),
            tags=dict.fromkeys(ids, {"Role": "docker-host"}),
            faults=Faults(latency=latency, throttle_rate=throttle_rate),
            s3_endpoint=s3.endpoint_url,
            runner=Replayer(dict.fromkeys(ids, rec)),
        ) as emu,
        _shards_dir(keep) as d,
    ):
        instances = Path(d) / "instances.txt"
        listing = measure([*SSM_LIST, f"--out={instances}"], emu.environ | s3.environ)
        print(f"# list job: list_s={listing.wall:.1f} list_rss_mb={listing.maxrss_mb:.0f} load={listing.load:.1f}")
        for k in only or range(1, shards + 1):
            before = emu.stats()["requests"]
            sample = measure(shard_cmd(Path(d), instances, k, shards), emu.environ | s3.environ)
            walls.append(sample.wall)
            rss.append(sample.maxrss_mb)
            calls = {op: n - before.get(op, 0) for op, n in emu.stats()["requests"].items()}
            print(
                f"# shard {k}/{shards}: wall_s={sample.wall:.1f} peak_rss_mb={sample.maxrss_mb:.0f} "
                f"load={sample.load:.1f} ssm_calls={sum(calls.values())} "
                f"describe_calls={calls.get('DescribeInstanceInformation', 0)} [{sample.summary.strip('= ')}]",
                flush=True,
            )
        head = (
            f"ssm-shards hosts={hosts} shards={shards} list_s={listing.wall:.1f} list_rss_mb={listing.maxrss_mb:.0f} "
            f"max_shard_wall_s={max(walls):.1f} max_shard_rss_mb={max(rss):.0f}"
        )
        if only:
            print(f"{head} merge_s=- merge_rss_mb=- ran={','.join(map(str, only))}", flush=True)
            return
        merged = measure_merge(Path(d), shards)
    print(f"{head} merge_s={merged.wall:.1f} merge_rss_mb={merged.maxrss_mb:.0f}", flush=True)


def _shards_dir(keep: Path | None) -> Any:
    """The shards' directory: `keep` (made, kept) or a temporary one."""
    import contextlib

    if keep is None:
        return tempfile.TemporaryDirectory()
    keep.mkdir(parents=True, exist_ok=True)
    return contextlib.nullcontext(str(keep.resolve()))


def measure_merge(d: Path, shards: int) -> Sample:
    """`python -m cisaudit.plugin.merge` over the shards in `d` into `d`/merged (emptied first)."""
    import shutil

    shutil.rmtree(d / "merged", ignore_errors=True)
    merge = [PY, "-m", "cisaudit.plugin.merge", *(f"{d}/shard-{k}/results.json" for k in range(1, shards + 1))]
    return measure([*merge, f"--out={d}/merged"])


def bench_merge_only(hosts: int, shards: int, keep: Path) -> None:
    """`ssm-shards-merge`: the merge alone, over the shards a `--shards-dir` run kept."""
    sample = measure_merge(keep.resolve(), shards)
    print(
        f"ssm-shards-merge hosts={hosts} shards={shards} merge_s={sample.wall:.1f} "
        f"merge_rss_mb={sample.maxrss_mb:.0f} merge_cpu_s={sample.cpu:.1f} load={sample.load:.1f}",
        flush=True,
    )


SSM_LIST = (PY, "-m", "cisaudit.plugin.ssm_list", "--ssm-targets=tag:Role=docker-host", "--ssm-region=us-east-1")


def shard_cmd(tmp: Path, instances: Path, k: int, shards: int) -> list[str]:
    """Shard k of `shards` over the list job's ids (README "Past one runner"): no tag listing."""
    out = tmp / f"shard-{k}"
    return [
        *(PY, "-m", "pytest", f"--ssm-instances-file={instances}", "--ssm-region=us-east-1"),
        f"--ssm-s3-bucket={FLEET_BUCKET}",
        f"--shard={k}/{shards}",
        f"--junitxml={out}/junit.xml",
        f"--compliance-report={out}/compliance.html",
        f"--results-json={out}/results.json",
        f"--xccdf={out}/results.xccdf.xml",
        "-p",
        "no:cacheprovider",
        "-q",
    ]


def bench_publish(hosts: int, latency: float, throttle_rate: float, publish: list[str]) -> None:
    """The fleet audit of `hosts` emulated instances (as bench_fleet_ssm), without and then with the
    AWS publishers (`publish`: --ssm-compliance, --security-hub): the wall time and API calls they
    add. SSM Compliance goes to the SSM emulator (same latency and throttling); Security Hub to
    selftests/securityhub_standin.py (same latency, 10 calls/s): moto's import is quadratic at this
    size; STS to moto's server. Said in every line: emulated, not AWS."""
    from selftests.securityhub_standin import SecurityHubStandin

    rec = record_quiet()
    ids = [f"i-{n + 1:017x}" for n in range(hosts)]
    print(
        f"# publish: {hosts} emulated instances, latency {latency} s per call, throttling above "
        f"{throttle_rate:g} SSM calls/s and 10 Security Hub calls/s (emulator + stand-in, not AWS)",
        flush=True,
    )
    walls: dict[str, float] = {}
    with MotoS3(FLEET_BUCKET) as s3:
        for kind, extra in (("audit", []), ("audit+publish", publish)):
            faults = Faults(latency=latency, throttle_rate=throttle_rate)
            with (
                SsmEmulator(
                    dict.fromkeys(ids),
                    tags=dict.fromkeys(ids, {"Role": "docker-host"}),
                    faults=faults,
                    s3_endpoint=s3.endpoint_url,
                    runner=Replayer(dict.fromkeys(ids, rec)),
                ) as emu,
                SecurityHubStandin(latency=latency, rate=10) as hub,
                tempfile.TemporaryDirectory() as d,
            ):
                env = (
                    emu.environ
                    | s3.environ
                    | {"AWS_ENDPOINT_URL_SECURITYHUB": hub.endpoint_url, "AWS_ENDPOINT_URL_STS": s3.endpoint_url}
                )
                cmd = [
                    *FLEET_PYTEST,
                    f"--ssm-s3-bucket={FLEET_BUCKET}",
                    f"--results-json={d}/results.json",
                    "--compliance-report=",
                    "--xccdf=",
                    "-p",
                    "no:cacheprovider",
                    "-q",
                    *extra,
                ]
                sample = measure(cmd, env)
                walls[kind] = sample.wall
                stats = emu.stats()
                print(
                    f"{kind} hosts={hosts} wall_s={sample.wall:.1f} peak_rss_mb={sample.maxrss_mb:.0f} "
                    f"put_compliance_items={stats['requests'].get('PutComplianceItems', 0)} "
                    f"compliance={stats['compliance']} security_hub_calls={dict(hub.requests)} "
                    f"findings_held={len(hub.findings)} [{sample.summary.strip('= ')}]",
                    flush=True,
                )
    added = walls["audit+publish"] - walls["audit"]
    print(
        f"publish added_s={added:.1f} added_pct={100 * added / walls['audit']:.0f}% (one run each: noisy)", flush=True
    )


def table(rows: list[Row], baselines: dict[str, float]) -> str:
    head = (
        f"{'run':<34} {'hosts':>5} {'-n':>3} {'wall s':>7} {'xN/x1':>6} {'cpu s':>6} {'qemu s':>7} {'other s':>7} "
        f"{'maxRSS MB':>9} {'cmds/host':>9}  note"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        kind = r.name.rsplit(" x", 1)[0]
        ratio = r.med("wall") / baselines[kind] if kind in baselines and r.hosts > 1 else None
        cmds = f"{r.commands_per_host:.1f}" if r.commands_per_host is not None else "-"
        note = ", ".join(f"{k}={v}" for k, v in r.extra.items() if k != "calls")
        if "error" in r.samples[-1].summary:
            note += f" [{r.samples[-1].summary.strip('= ')}]"
        lines.append(
            f"{r.name:<34} {r.hosts:>5} {r.workers:>3} {r.med('wall'):>7.2f} "
            f"{f'{ratio:.2f}' if ratio else '':>6} {r.med('cpu'):>6.2f} "
            f"{r.med('vm_cpu'):>7.2f} {r.med('other_cpu'):>7.2f} "
            f"{max(s.maxrss_mb for s in r.samples):>9.0f} {cmds:>9}  {note}"
        )
    return "\n".join(lines)


def _sizes(text: str) -> list[int]:
    return [int(n) for n in text.split(",") if n]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--sizes", default="1,3,6")
    p.add_argument("--json", type=Path, default=BENCH / "results.json")
    p.add_argument("--skip-vms", action="store_true")
    p.add_argument("--naive-runs", type=int, default=1, help="runs of the (slow) naive audit on VMs (default 1)")
    p.add_argument("--workers-cap", type=int, default=6, help="max xdist workers of the naive audit (default 6)")
    p.add_argument(
        "--suite-workers",
        type=int,
        default=1,
        help="max xdist workers of the suite (default 1: one process probes all hosts concurrently)",
    )
    p.add_argument("--ssm-latency", type=float, default=1.0)
    p.add_argument("--report-hosts", type=int, default=100)
    p.add_argument(
        "--fleet",
        default=None,
        help="only the SSM fleet scale runs, at these sizes (e.g. 100,1000,10000; empty: baseline only)",
    )
    p.add_argument("--baseline", default="100,1000", help="with --fleet: sizes of the per-host baseline runs")
    p.add_argument("--throttle-rate", type=float, default=20.0, help="with --fleet: API calls/s before throttling")
    p.add_argument(
        "--baseline-file",
        action="store_true",
        help="with --fleet: --baseline's added time and memory at these sizes (in process, a synthetic fleet)",
    )
    p.add_argument("--shards", default=None, metavar="HOSTS/N", help="only the sharded fleet run, e.g. 100000/8")
    p.add_argument(
        "--shard-runs", default=None, metavar="K,...", help="with --shards: run only these shards (no merge then)"
    )
    p.add_argument("--shards-dir", type=Path, default=None, help="with --shards: keep the shards' results here")
    p.add_argument(
        "--merge-only", action="store_true", help="with --shards and --shards-dir: only the merge, over the kept shards"
    )
    p.add_argument("--ssm-compliance", action="store_true", help="with --fleet N: the time SSM Compliance adds")
    p.add_argument("--security-hub", action="store_true", help="with --fleet N: the time Security Hub adds")
    p.add_argument(
        "--probe-seconds", type=float, default=None, help="with --fleet/--shards: the replayed probe's pace (s)"
    )
    a = p.parse_args(argv)
    if a.probe_seconds is not None:
        PROBE_SECONDS.append(a.probe_seconds)
    if a.fleet and (a.ssm_compliance or a.security_hub):
        publish = ["--ssm-compliance"] * a.ssm_compliance + ["--security-hub"] * a.security_hub
        for hosts in _sizes(a.fleet):
            bench_publish(hosts, 0.2, a.throttle_rate, publish)
        return 0
    if a.shards is not None:
        total, _, count = a.shards.partition("/")
        only = _sizes(a.shard_runs) if a.shard_runs else None
        if a.merge_only and a.shards_dir is not None:
            bench_merge_only(int(total), int(count), a.shards_dir)
        else:
            bench_shards(int(total), int(count), 0.2, a.throttle_rate, only, a.shards_dir)
        return 0
    if a.fleet is not None and a.baseline_file:
        bench_baseline_file(_sizes(a.fleet))
        return 0
    if a.fleet is not None:
        bench_fleet_ssm(_sizes(a.fleet), _sizes(a.baseline), 0.2, a.throttle_rate)
        return 0
    sizes = sorted({int(s) for s in a.sizes.split(",")})
    rows: list[Row] = []
    info: dict[str, Any] = {"cpus": os.cpu_count(), "runs": a.runs}
    rows += bench_local(a.runs)
    if not a.skip_vms:
        try:
            fleet_rows, fleet_info = bench_fleet(sizes, a.runs, a.naive_runs, a.workers_cap, a.suite_workers)
            rows += fleet_rows
            info |= fleet_info
        except Exception as exc:  # noqa: BLE001 - report and go on with the non-VM parts
            info["fleet_error"] = f"{type(exc).__name__}: {exc}"
    rows += bench_ssm(sizes, a.runs, a.suite_workers, a.ssm_latency)
    plain, reports = bench_report(a.runs, a.report_hosts)
    rows += [plain, reports]
    info["report_overhead_wall_s"] = round(reports.med("wall") - plain.med("wall"), 2)
    info["report_overhead_cpu_s"] = round(reports.med("cpu") - plain.med("cpu"), 2)
    baselines = {r.name.rsplit(" x", 1)[0]: r.med("wall") for r in rows if r.hosts == 1 and " x" in r.name}
    print(table(rows, baselines))
    print("\n" + "\n".join(f"{k}: {v}" for k, v in info.items()))
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(
        json.dumps(
            {
                "info": info,
                "rows": [
                    asdict(r)
                    | {
                        "median_wall_s": r.med("wall"),
                        "median_cpu_s": r.med("cpu"),
                        "median_qemu_cpu_s": r.med("vm_cpu"),
                        "max_rss_mb": max(s.maxrss_mb for s in r.samples),
                        "median_other_cpu_s": r.med("other_cpu"),
                        "summary": r.samples[-1].summary,
                    }
                    for r in rows
                ],
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
