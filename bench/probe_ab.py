"""Two revisions' probes on one QEMU test VM: what each tells the model, and what each costs the
guest. A script that prints figures, not a timed test.

    flock /run/lock/cisaudit-vm.lock .venv/bin/python bench/probe_ab.py OLD_REV [--runs 11] [--rules 16,5000]

OLD_REV's probe comes from a `git worktree` of it (removed afterwards), this checkout's from here;
each revision renders and parses its own and judges every control (a subprocess in its tree). On
one VM restored from the saved state, in each state of STATES and for each benchmark version,
both probes run: the snapshot fields that differ are printed (a change of what the probe sends
may be meant), and every control's live and persisted verdict must be the same (status, summary,
evidence; else the exit code is 1). Then, with N rules loaded (bench/replay_scale.py's
VM_RULES), the default version's two probes run alternately:
`probe-ab rules=N old_cpu_s=.. new_cpu_s=.. old_processes=.. new_processes=..` (medians of the
guest's CPU-seconds from its /proc/stat, processes from its pid counter).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.guest_cost import counters  # noqa: E402
from bench.replay_scale import load_vm_rules  # noqa: E402
from cisaudit.model.catalogue import DEFAULT_VERSION, VERSIONS  # noqa: E402
from selftests.testhosts.fleet import Fleet  # noqa: E402
from selftests.testhosts.vm import VM  # noqa: E402

# The states whose unit and process facts the probe reads in different ways (set up as root on a
# VM just restored): as booted, docker running, a drop-in with a blank in its name resetting
# ExecStartPost (systemd quotes it), auditd disabled, auditd masked.
STATES = {
    "booted": "true",
    "docker-running": "systemctl start docker.socket docker.service containerd.service",
    "spaced-drop-in": (
        "mkdir -p /etc/systemd/system/auditd.service.d && printf '[Service]\\nExecStartPost=\\n"
        "ExecStartPost=-/sbin/auditctl -R /etc/audit/audit.rules\\n' "
        "> '/etc/systemd/system/auditd.service.d/my drop.conf' && systemctl daemon-reload"
    ),
    "auditd-disabled": "systemctl disable auditd.service 2>/dev/null",
    "auditd-masked": "systemctl mask auditd.service 2>/dev/null",
}
# Run in a revision's tree: `render VERSION` prints its probe and nonce; `parse VERSION NONCE FILE`
# the snapshot it reads from FILE (each field as JSON, sets sorted) and every control's live and
# persisted verdict (status, summary, evidence), as one JSON object.
HELPER = """
import dataclasses, json, sys
sys.path.insert(0, ".")
from cisaudit.host.probe import parse_probe, render_probe
from cisaudit.model.catalogue import controls
from cisaudit.model.evaluate import Assessment
def plain(x):
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (set, frozenset)):
        return sorted((plain(v) for v in x), key=repr)
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    return x if x is None or isinstance(x, (str, int, float, bool)) else repr(x)
mode, version = sys.argv[1:3]
if mode == "render":
    print(json.dumps(render_probe(controls(version))))
else:
    text = open(sys.argv[4], encoding="utf-8", errors="surrogateescape").read()
    snap = parse_probe(text, sys.argv[3], controls(version))
    fields = {k: json.dumps(plain(v), sort_keys=True) for k, v in dataclasses.asdict(snap).items()}
    assessment = Assessment(snap, "docker")
    verdicts = {
        f"{c.id} {check}": [str(v.status), v.summary, list(v.evidence)]
        for c in controls(version) for check in ("live", "persisted")
        for v in [assessment.control_verdict(c, check)]
    }
    print(json.dumps({"fields": fields, "verdicts": verdicts}))
"""


def helper(tree: Path, *args: str) -> str:
    run = subprocess.run([sys.executable, "-c", HELPER, *args], cwd=tree, capture_output=True, text=True, check=True)
    return run.stdout


def rendered(tree: Path, version: str) -> tuple[str, str]:
    """The probe of the revision in `tree` for `version`, and its nonce."""
    script, nonce = json.loads(helper(tree, "render", version))
    return str(script), str(nonce)


def same_verdicts(vm: VM, trees: dict[str, Path], probes: dict[tuple[str, str], tuple[str, str]], work: Path) -> bool:
    """Both revisions' view of the VM as it is, for each version: the snapshot fields that differ
    (printed: a change of what the probe sends can be meant) and whether every verdict agrees."""
    same = True
    for version in VERSIONS:
        seen = {}
        for label, tree in trees.items():
            script, nonce = probes[(label, version)]
            output = work / f"{label}-{version}.out"
            output.write_text(vm.run(script, timeout=300)[1], encoding="utf-8", errors="surrogateescape")
            seen[label] = json.loads(helper(tree, "parse", version, nonce, str(output)))
        old, new = seen["old"], seen["new"]
        fields = sorted(
            k for k in old["fields"].keys() | new["fields"].keys() if old["fields"].get(k) != new["fields"].get(k)
        )
        verdicts = sorted(k for k in old["verdicts"] if old["verdicts"][k] != new["verdicts"].get(k))
        print(f"probe-ab version={version} fields_differ={','.join(fields) or '-'} verdicts_differ={len(verdicts)}")
        for k in verdicts[:5]:
            print(f"  {k}: old={old['verdicts'][k]} new={new['verdicts'].get(k)}")
        same = same and not verdicts
    return same


def costs(vm: VM, probes: dict[tuple[str, str], tuple[str, str]], size: int, runs: int) -> None:
    """The two probes alternately, `runs` times each, with `size` rules loaded."""
    if size > 16:
        load_vm_rules(vm, size)
    cpu: dict[str, list[float]] = {"old": [], "new": []}
    processes: dict[str, list[int]] = {"old": [], "new": []}
    for i in range(runs):
        for label in ("old", "new") if i % 2 else ("new", "old"):
            pid0, cpu0 = counters(vm)
            vm.run(probes[(label, DEFAULT_VERSION)][0], timeout=300)
            pid1, cpu1 = counters(vm)
            cpu[label].append(cpu1 - cpu0)
            processes[label].append(pid1 - pid0)
    print(
        f"probe-ab rules={size} old_cpu_s={statistics.median(cpu['old']):.2f} "
        f"new_cpu_s={statistics.median(cpu['new']):.2f} old_processes={statistics.median(processes['old']):.0f} "
        f"new_processes={statistics.median(processes['new']):.0f}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="the revision to compare with this checkout (git rev)")
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--rules", default="16,5000", help="rule counts to time at, ascending")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cisaudit-probe-ab-") as tmp:
        work, old = Path(tmp), Path(tmp) / "old"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "-q", "--detach", str(old), args.old], check=True)
        try:
            trees = {"old": old, "new": REPO}
            probes = {(label, v): rendered(tree, v) for label, tree in trees.items() for v in VERSIONS}
            with Fleet(1) as fleet:
                vm, same = fleet[0], True
                for state, setup in STATES.items():
                    fleet.reset(vm)
                    rc, out, err = vm.run(setup, timeout=180)
                    if rc != 0:
                        raise SystemExit(f"state {state}: setup failed: {out}{err}")
                    agrees = same_verdicts(vm, trees, probes, work)
                    print(f"probe-ab state={state} same_verdicts={'yes' if agrees else 'no'}", flush=True)
                    same = same and agrees
                fleet.reset(vm)
                for size in (int(n) for n in args.rules.split(",")):
                    costs(vm, probes, size, args.runs)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)], check=False)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
