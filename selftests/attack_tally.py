"""Tally issue 21's local attacks: each one RUNS times in selftests/attacker.py's sandbox, and how
many runs changed a verdict (or, for --verify-events, root's file mode) against an idle attacker.

    flock /run/lock/cisaudit-selftest.lock python3 -m selftests.attack_tally --runs 10

(the lock keeps other tests from changing /etc/audit between the baseline and the attacks).
"""

from __future__ import annotations

import argparse

from cisaudit.host import events, probe
from cisaudit.model.catalogue import controls
from cisaudit.model.decisions import Accesses
from selftests.attacker import attacked
from selftests.integration.test_local_attackers import FORGED, NL, PROCESS, READ_MARKER, SWAPPER, verdicts

PROBE_ATTACKS = {
    "21.1 forged sections in a dockerd's argv": f'{READ_MARKER}{NL}{PROCESS} dockerd "{FORGED}" &\nsleep 0.3\n',
    "21.2 a process named auditd": f"{PROCESS} auditd &\nsleep 0.3\n",
    "21.3 a dockerd --data-root=/tmp/x": f"mkdir /tmp/x\n{PROCESS} dockerd --data-root=/tmp/x &\nsleep 0.3\n",
}


def probe_attack(attacker: str, runs: int) -> tuple[int, int]:
    """(runs, runs whose verdicts differ from an idle attacker's)."""
    script, nonce = probe.render_probe(controls("1.7.0"))
    [idle] = attacked(script, "touch /tmp/.ready\nsleep 600\n").outputs
    baseline = verdicts(probe.parse_probe(idle, nonce, controls("1.7.0")))
    outs = attacked(script, attacker + "touch /tmp/.ready\nsleep 600\n", runs=runs).outputs
    changed = 0
    for out in outs:
        try:
            changed += verdicts(probe.parse_probe(out, nonce, controls("1.7.0"))) != baseline
        except probe.ProbeError:
            changed += 1  # a forged probe that makes the host unreadable is a changed verdict too
    return len(outs), changed


def events_attack(runs: int) -> tuple[int, int]:
    """(chmod attempts, runs after which root's 0600 file had another mode)."""
    script = events.render_script([Accesses("/tmp/evil/f", "a")] * 8, "docker", timeout=0)
    setup = "printf s >/tmp/secret\nchmod 0600 /tmp/secret\nmkdir /tmp/evil\nchown nobody:nogroup /tmp/evil\n"
    changed = 0
    for _ in range(runs):
        result = attacked(script, SWAPPER, setup=setup, after="stat -c %a /tmp/secret\n")
        changed += result.after.strip() != "600"
    return runs * 8, changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    tried = changed = 0
    for name, attacker in PROBE_ATTACKS.items():
        n, c = probe_attack(attacker, runs)
        print(f"{name}: {n} runs, {c} changed a verdict")
        tried, changed = tried + n, changed + c
    n, c = events_attack(runs)
    print(f"21.4 --verify-events symlink race: {runs} runs ({n} stat+chmod attempts), {c} changed root's file mode")
    print(f"total: {tried + runs} attacked runs, {changed + c} changed a verdict or a file")


if __name__ == "__main__":
    main()
