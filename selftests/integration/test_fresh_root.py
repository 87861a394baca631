"""The README's first commands on a fresh Debian 12 (debootstrap minbase: no python3, no pip), as root
(CISAUDIT_FRESH_ROOT_SUITE=trixie: Debian 13).

The root (selftests/testhosts/fresh_root.py, cached as a tarball) gets the checkout's tracked files in
/opt/cisaudit and runs, chrooted in a private mount namespace with CI=true, `sh scripts/setup.sh`, the
audit from the checkout (`.venv/bin/pytest --hosts=local://`), and the audit from another directory with
an option value written after a space (`--waivers /srv/waivers.yml`). Its kernel is this machine's: the
audits only read the audit rules (no --remediate). apt and pip caches are shared between runs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from cisaudit.outputs.results_json import records
from selftests.suite_runner import REPO, require
from selftests.testhosts import fresh_root

pytestmark = pytest.mark.fresh_root

CHECKOUT = "/opt/cisaudit"
EXPIRES = dt.date.today() + dt.timedelta(days=90)  # required, at most a year ahead
WAIVERS = f'1.1.6:\n  justification: "ticket SEC-1"\n  run: false\n  expiration_date: {EXPIRES}\n'
STEPS = f"""
step() {{ # step NAME COMMAND...: its output in /root/logs/NAME, then "step NAME RC MILLISECONDS"
    name=$1 && shift && start=$(date +%s%N) && rc=0
    "$@" >"/root/logs/$name" 2>&1 || rc=$?
    echo "step $name $rc $(( ($(date +%s%N) - start) / 1000000 ))"
}}
mkdir -p /root/logs
step no-python sh -c '! command -v python3'
step setup sh -c 'cd {CHECKOUT} && sh scripts/setup.sh' || exit 0
step setup-again sh -c 'cd {CHECKOUT} && sh scripts/setup.sh'
step audit-checkout sh -c 'cd {CHECKOUT} && .venv/bin/pytest --hosts=local://'
step audit-elsewhere sh -c 'cd /srv &&
    {CHECKOUT}/.venv/bin/pytest {CHECKOUT}/tests --hosts=local:// --waivers /srv/waivers.yml'
step plugin-from-venv {CHECKOUT}/.venv/bin/python -c 'import sys, importlib.metadata as m, cisaudit.plugin as p
print(sys.prefix, p.__file__, [e.value for e in m.entry_points(group="pytest11")])'
step system-python-untouched sh -c '! python3 -c "import pytest" && ! python3 -m pip --version'
"""


def _copy_tracked_files(dest: Path) -> None:
    """The checkout's tracked files (as `git ls-files` lists them; untracked ones stay out)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    files = [f for f in listed.decode().split("\0") if f and (REPO / f).exists()]
    dest.mkdir(parents=True)
    pack = subprocess.Popen(["tar", "-C", str(REPO), "--null", "-T", "-", "-cf", "-"], stdin=-1, stdout=-1)
    unpack = subprocess.Popen(["tar", "-C", str(dest), "-xf", "-"], stdin=pack.stdout)
    assert pack.stdin is not None and pack.stdout is not None
    pack.stdout.close()
    pack.stdin.write("\0".join(files).encode())
    pack.stdin.close()
    assert pack.wait() == 0 and unpack.wait() == 0


def _in_root(root: Path) -> subprocess.CompletedProcess[str]:
    """STEPS, chrooted into root in a private mount namespace (/proc, /sys, /dev, resolv.conf, caches)."""
    caches = {"apt-archives": "var/cache/apt/archives", "apt-lists": "var/lib/apt/lists", "pip": "root/.cache/pip"}
    mounts = ["mount -t proc proc proc", "mount --rbind /sys sys", "mount --rbind /dev dev"]
    mounts.append("touch etc/resolv.conf && mount --bind /etc/resolv.conf etc/resolv.conf")
    for name, inside in caches.items():
        shared = fresh_root.cache() / (name if name == "pip" else f"{name}-{fresh_root.suite()}")
        shared.mkdir(parents=True, exist_ok=True)
        (root / inside).mkdir(parents=True, exist_ok=True)
        mounts.append(f"mount --bind {shlex.quote(str(shared))} {inside}")
    # This machine's way to the registries (pip's certificate bundle for the egress proxy), as CI has it.
    keep = {k: v for k, v in os.environ.items() if k.startswith("PIP_") or k.lower().endswith("_proxy")}
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "CI": "true"}
    env |= {"LANG": "C.UTF-8", **keep}
    chroot = ["chroot", ".", "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items()), "sh", "/root/steps.sh"]
    script = f"cd {shlex.quote(str(root))} && " + " && ".join(mounts) + " && exec " + shlex.join(chroot)
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=1800,
    )


def _prepare(root: Path, tarball: Path) -> None:
    root.mkdir()
    subprocess.run(["tar", "-C", str(root), "--zstd", "-xf", str(tarball)], check=True)
    _copy_tracked_files(root / CHECKOUT.lstrip("/"))
    (root / "srv" / "waivers.yml").write_text(WAIVERS)
    (root / "root" / "steps.sh").write_text(STEPS)
    # This machine's trust store (its local CAs, e.g. an egress proxy's), as every machine here has it:
    # the bundle, and the local CAs that update-ca-certificates adds again when apt installs ca-certificates.
    for trusted in (Path("/etc/ssl/certs/ca-certificates.crt"), *Path("/usr/local/share/ca-certificates").glob("*")):
        if trusted.is_file():
            (root / trusted.parent.relative_to("/")).mkdir(parents=True, exist_ok=True)
            shutil.copy(trusted, root / trusted.relative_to("/"))


def _expected_exit(results: Path) -> int:
    """The suite's exit code for what it found: 1 when an applicable control fails or the host errors."""
    statuses = {r["status"] for r in records(json.loads(results.read_text()))}
    return 1 if statuses & {"fail", "error"} else 0


def test_readme_commands_on_a_fresh_debian_12(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "needs root (debootstrap, chroot, mounts)")
    missing = [t for t in (*fresh_root.TOOLS, "git") if shutil.which(t) is None]
    require(not missing, f"needs {', '.join(missing)} (apt-get install debootstrap zstd util-linux git)")
    start = time.monotonic()
    tarball, built = fresh_root.ensure_tarball()
    timings = {("build root" if built else "cached root"): time.monotonic() - start}
    root = tmp_path / "root"
    try:
        start = time.monotonic()
        _prepare(root, tarball)
        timings["unpack root, copy checkout"] = time.monotonic() - start
        run = _in_root(root)
        steps = {w[1]: (int(w[2]), int(w[3]) / 1000) for w in map(str.split, run.stdout.splitlines()) if w[0] == "step"}
        timings |= {name: seconds for name, (_rc, seconds) in steps.items()}
        print("fresh root:", ", ".join(f"{name} {s:.2f}s" for name, s in timings.items()))
        logs = {p.name: p.read_text(errors="replace") for p in (root / "root" / "logs").glob("*")}

        def check(step: str, *rcs: int) -> str:
            assert step in steps, f"{step} did not run\n{run.stdout}{run.stderr[-3000:]}"
            assert steps[step][0] in rcs, f"{step}: exit {steps[step][0]}\n{logs.get(step, '')[-4000:]}"
            return logs[step]

        check("no-python", 0)
        check("setup", 0)
        check("setup-again", 0)
        assert steps["setup-again"][1] < 15, "a second setup.sh should find everything in place"
        for step, reports in (("audit-checkout", CHECKOUT + "/reports"), ("audit-elsewhere", "/srv/reports")):
            results = root / reports.lstrip("/") / "results.json"
            log = check(step, 0, 1)
            assert results.is_file(), log[-3000:]
            assert steps[step][0] == _expected_exit(results), log[-3000:]
            assert all((results.parent / f).is_file() for f in ("junit.xml", "tests.html", "compliance.html")), log
        elsewhere = logs["audit-elsewhere"]
        assert f"rootdir: {CHECKOUT}" in elsewhere and "configfile: pytest.ini" in elsewhere, elsewhere[-3000:]
        assert "cisaudit-0.1.0" in elsewhere, elsewhere[-3000:]  # pytest's plugin line: the entry point
        waived = records(json.loads((root / "srv/reports/results.json").read_text()))
        assert {r["waiver"]["justification"] for r in waived if r["control_id"] == "1.1.6"} == {"ticket SEC-1"}
        venv = check("plugin-from-venv", 0).split()
        assert venv[:2] == [f"{CHECKOUT}/.venv", f"{CHECKOUT}/cisaudit/plugin/__init__.py"], venv
        assert "'cisaudit.plugin'," in venv[2:] or "['cisaudit.plugin'," in venv[2:], venv
        check("system-python-untouched", 0)
    finally:
        shutil.rmtree(root, ignore_errors=True)
