"""The suite's connection cut (TCP RST, selftests/relay.py) while cisaudit/host/scripts/apply.sh runs on a
test VM: the host must be reported "host state unknown; back out run ID with --backout", and the
backout, in the same run or a later one, must put the VM back exactly as it was (files under
/etc/audit and the tmpfiles.d file: sha256, mode, owner; `auditctl -l`).

The suite reaches the VM only through the relay; the test talks to the VM over its own
connection. On the VM a wrapper in /usr/local/sbin (first in root's PATH) stands in for
augenrules: apply.sh calls it after writing its rules file, so the wrapper marks that apply has
begun changing files and waits on a FIFO the test opens. The cut thus comes at a known point of
the apply; the guest is only ever waited on, never slept on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from selftests.e2e.scenarios import BASELINE, LOAD, rules_d
from selftests.relay import Relay
from selftests.suite_runner import SuiteRun, run_suite
from selftests.testhosts.vm import VM

pytestmark = pytest.mark.vm
STATE = (
    "cd /etc/audit && find . -type f | LC_ALL=C sort | xargs sha256sum; "
    "stat -c '%n %a %U' audit.rules rules.d/*; echo ---; "
    "sha256sum /etc/tmpfiles.d/cisaudit-docker.conf 2>&1; echo ---; auditctl -l"
)
HOOK = "/run/cut-test"
SETUP = (
    BASELINE
    + rules_d("-w /etc/passwd -p wa -k identity\n", "90-site.rules")
    + LOAD
    + f"""
mkdir -p {HOOK} && mkfifo {HOOK}/gate
cat > /usr/local/sbin/augenrules <<'EOF'
#!/bin/sh
: > {HOOK}/entered
read _ < {HOOK}/gate
exec /usr/sbin/augenrules "$@"
EOF
chmod 755 /usr/local/sbin/augenrules
"""
)
UNHOOK = f"rm -rf /usr/local/sbin/augenrules {HOOK}"
LOCK = "/run/cisaudit/cisaudit.lock"
UNKNOWN = re.compile(
    r"change failed: host state unknown \(connection lost during the command\); "
    r"back out run (\S+) with --backout"
)


def wait_on_guest(vm: VM, condition: str, what: str) -> None:
    """Block until the shell condition holds on the VM (at most 120 s)."""
    rc, out, err = vm.run(f"timeout 120 sh -c 'until {condition}; do sleep 0.1; done'", timeout=130)
    assert rc == 0, f"never {what}: {out}{err}"


def open_gate(vm: VM) -> None:
    rc, out, err = vm.run(f"timeout 30 sh -c 'echo go > {HOOK}/gate'", timeout=40)
    assert rc == 0, f"apply was not waiting at the gate: {out}{err}"


@pytest.fixture
def hooked(fleet) -> Iterator[tuple[VM, str, Relay]]:
    """A fresh VM with the augenrules wrapper, its state before, and a relay to its SSH port."""
    vm = fleet.reset(fleet[0])
    rc, out, err = vm.run(SETUP, timeout=180)
    assert rc == 0, f"setup failed: {out}{err}"
    before = vm.run(STATE)[1]
    with Relay(vm.port) as relay:
        yield vm, before, relay
    vm.run(UNHOOK)


def suite(tmp_path: Path, vm: VM, relay: Relay, *args: str) -> Callable[[], SuiteRun]:
    tmp_path.mkdir(exist_ok=True)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{relay.port} {vm.host_key}\n")
    spec = f"paramiko://root@127.0.0.1:{relay.port}?ssh_identity_file={vm.client_key}"
    return lambda: run_suite(tmp_path, [spec], f"--known-hosts={known_hosts}", *args, timeout=300)


def cut_mid_apply(vm: VM, relay: Relay, pool: ThreadPoolExecutor, run: Callable[[], SuiteRun]) -> Future[SuiteRun]:
    started = pool.submit(run)
    wait_on_guest(vm, f"[ -e {HOOK}/entered ]", "reached augenrules")
    assert relay.cut() == 1, "the suite should have had one connection open"
    return started


def run_id_of(run: SuiteRun, spec: str) -> str:
    summary = run.case(spec, "host", "remediation").summary
    match = UNKNOWN.fullmatch(summary)
    assert match, summary
    for (_, cid, check), props in run.cases.items():  # every check of the host says the same
        assert props.verdict == "error" or check == "backout", (cid, check, props.summary)
    return match.group(1)


def journal_state(vm: VM, run_id: str) -> str:
    return vm.run(f"cat /var/lib/cisaudit/journal/{run_id}/state")[1].strip()


def test_cut_during_remediate_backout_still_backs_out(hooked, tmp_path: Path) -> None:
    """--remediate --backout: the backout reconnects while the orphaned apply still holds the
    host lock, waits for it, and undoes the apply."""
    vm, before, relay = hooked
    run = suite(tmp_path, vm, relay, "--remediate", "--backout")
    with ThreadPoolExecutor(1) as pool:
        started = cut_mid_apply(vm, relay, pool, run)
        wait_on_guest(vm, "pgrep -x flock >/dev/null", "saw the backout wait for the host lock")
        open_gate(vm)
        result = started.result()
    spec = f"paramiko://root@127.0.0.1:{relay.port}?ssh_identity_file={vm.client_key}"
    run_id = run_id_of(result, spec)
    backout = result.case(spec, "host", "backout")
    assert backout.verdict == "pass" and f"backout restored (run {run_id})" in backout.summary, backout
    assert journal_state(vm, run_id) == "backed-out"
    assert vm.run(STATE)[1] == before
    assert relay.accepted == 2, "one connection before the cut, one for the backout"


def test_cut_during_remediate_then_a_later_backout_restores(hooked, tmp_path: Path) -> None:
    """--remediate alone, cut mid-apply; the orphaned apply goes on once the gate opens, and a
    later --backout undoes that run."""
    vm, before, relay = hooked
    with ThreadPoolExecutor(1) as pool:
        result = cut_mid_apply(vm, relay, pool, suite(tmp_path / "remediate", vm, relay, "--remediate")).result()
    spec = f"paramiko://root@127.0.0.1:{relay.port}?ssh_identity_file={vm.client_key}"
    run_id = run_id_of(result, spec)
    open_gate(vm)
    wait_on_guest(vm, f"flock -w 110 {LOCK} true", "saw the orphaned apply end")
    assert journal_state(vm, run_id) == "done"  # it ran to its end, its result kept on the host
    result_file = vm.run(f"cat /var/lib/cisaudit/journal/{run_id}/result.apply")[1]
    assert f"cisaudit-result: status=applied run_id={run_id}" in result_file, result_file
    backout = suite(tmp_path / "backout", vm, relay, "--backout")().case(spec, "host", "backout")
    assert backout.verdict == "pass" and f"backout restored (run {run_id})" in backout.summary, backout
    assert vm.run(STATE)[1] == before
