"""A PASS must mean the kernel records every access of every required permission class to the
control's object with the key (issue #9). For each rule state, loaded into this machine's real
kernel, the suite's live verdict of a synthetic control must equal what the kernel recorded:
one access per required class (rwxa for a watch-style control, rwa for a syscall-style one;
on a directory watch also a file inside it), natively and through the 32-bit ABI, by root and
by a login user, each by its own process, read back with ausearch. No mocks. The module ends by
printing each case's ground truth and the agreement figure.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cisaudit.host.events import recorded, render_script
from cisaudit.model.decisions import Accesses
from selftests import docker_root
from selftests.integration.kernel_truth import (
    KEY,
    LOGIN_UID,
    Actor,
    Case,
    actor_lines,
    assessment_of,
    build_access32,
    ground_truth,
    make_objects,
    suite_verdicts,
    synthetic_control,
    truth_table,
)
from selftests.integration.ruleset_truth import (
    AGREE,
    ERROR,
    FALSE_FAIL,
    FALSE_PASS,
    NOT_APPLICABLE,
    PRIVATE,
    RULESETS,
    UNMET,
    compare,
    compare_cells,
)
from selftests.kernel import KernelSandbox, sh
from selftests.locked_tmp import locked_tmpdir
from selftests.suite_runner import require

pytestmark = pytest.mark.kernel
WATCH_F = "-w {T}/d/f -k docker"
EXECVE_OTHER = "-a always,exit -F arch=b64 -S execve -F euid=0 -k other"
# Hardened hosts' rules before the Docker rule (issue 20), as (name, rules). Rules whose syscalls
# are in no permission class take nothing; rules of the CIS Linux benchmark that do take some
# classes take them for login users only (auid>=1000). The ground truth makes one syscall per
# class (openat for r and w, execve, fchmodat; open, execve, chmod in the 32-bit ABI), so a rule
# state here must decide through those syscalls (the model judges every syscall of a class).
HARDENED = [
    (
        "time-change-first",
        (
            "-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time-change",
            "-a always,exit -F arch=b32 -S adjtimex,settimeofday,clock_settime,stime -k time-change",
        ),
    ),
    (
        "unshare-setns-first",
        (
            "-a always,exit -F arch=b64 -S unshare,setns -F key=container-config",
            "-a always,exit -F arch=b32 -S unshare,setns -F key=container-config",
        ),
    ),
    ("finit-module-first", ("-a always,exit -F arch=b64 -S init_module,finit_module -F auid!=unset -k modules",)),
    (
        "perm-mod-first",
        (
            "-a always,exit -F arch=b64 -S chmod,fchmod,fchmodat -F auid>=1000 -F auid!=unset -k perm_mod",
            "-a always,exit -F arch=b32 -S chmod,fchmod,fchmodat -F auid>=1000 -F auid!=unset -k perm_mod",
        ),
    ),
    (
        "access-first",
        (
            "-a always,exit -F arch=b64 -S open,openat,truncate,ftruncate -F exit=-EACCES -F auid>=1000 "
            "-F auid!=unset -k access",
            "-a always,exit -F arch=b32 -S open,openat,truncate,ftruncate -F exit=-EACCES -F auid>=1000 "
            "-F auid!=unset -k access",
        ),
    ),
    # Without -F arch auditctl numbers -S names for x86_64; in the 32-bit ABI the same numbers are
    # other syscalls: fchmodat (268) takes 64-bit chmod only, rt_sigreturn (15) takes 32-bit chmod.
    ("fchmodat-without-arch-first", ("-a always,exit -S fchmodat -F auid>=1000 -F auid!=unset -k perm_mod",)),
    ("b32-chmod-by-number-first", ("-a always,exit -S rt_sigreturn -F auid>=1000 -F auid!=unset -k sig",)),
    ("subj-type-never-first", ("-a never,exit -F subj_type=crond_t",)),
]
CASES = [
    Case("watch-file", "watch", "d/f", (WATCH_F,)),
    Case("watch-dir", "watch", "d", ("-w {T}/d -k docker",)),
    Case("syscall-file", "syscall", "d/f", ("-a exit,always -F path={T}/d/f -F perm=war -k docker",)),
    Case("syscall-dir", "syscall", "d", ("-a exit,always -F path={T}/d -F perm=war -k docker",)),
    Case("syscall-control-dir-watched", "syscall", "d", ("-w {T}/d -k docker",)),
    Case("wrong-key", "watch", "d/f", ("-w {T}/d/f -k other",)),
    Case("two-keys", "watch", "d/f", ("-w {T}/d/f -k other -k docker",)),
    Case("narrower-perms-wa", "watch", "d/f", ("-w {T}/d/f -p wa -k docker",)),
    Case("conditional-uid", "watch", "d/f", ("-a always,exit -F path={T}/d/f -F perm=rwxa -F uid!=0 -k docker",)),
    Case("never-first", "watch", "d/f", ("-a never,exit -F path={T}/d/f -F perm=rwxa", WATCH_F)),
    Case("ancestor-watch-other-key-first", "watch", "d/f", ("-w {T}/d -p wa -k other", WATCH_F)),
    Case("pathless-execve-rule-first", "watch", "d/f", (EXECVE_OTHER, WATCH_F)),
    Case("pathless-execve-rule-after", "watch", "d/f", (WATCH_F, EXECVE_OTHER)),
    Case("task-never-first", "watch", "d/f", ("-a task,never", WATCH_F)),
    Case("exclude-syscall-records", "watch", "d/f", ("-a always,exclude -F msgtype=SYSCALL", WATCH_F)),
    Case("exclude-path-records", "watch", "d/f", ("-a always,exclude -F msgtype=PATH", WATCH_F)),
    Case("audit-disabled", "watch", "d/f", (WATCH_F, "-e 0")),
    Case("symlink-end-rule-on-link", "watch", "link", ("-w {T}/link -k docker",)),
    Case("symlink-end-rule-on-target", "watch", "link", (WATCH_F,)),
    Case("symlink-middle", "watch", "ld/f", ("-w {T}/ld/f -k docker",)),
    Case("dir-path-field", "watch", "d", ("-a always,exit -F path={T}/d -F perm=rwxa -k docker",)),
    Case("dir-dir-field", "watch", "d", ("-a always,exit -F dir={T}/d -F perm=rwxa -k docker",)),
    Case("parent-subtree-covers-file", "watch", "d/f", ("-w {T}/d -k docker",)),
    Case("b64-only", "syscall", "d/f", ("-a always,exit -F arch=b64 -F path={T}/d/f -F perm=war -k docker",)),
    Case(
        "b64-and-b32",
        "syscall",
        "d/f",
        (
            "-a always,exit -F arch=b64 -F path={T}/d/f -F perm=war -k docker",
            "-a always,exit -F arch=b32 -F path={T}/d/f -F perm=war -k docker",
        ),
    ),
    *(Case(name, "watch", "d/f", (*rules, WATCH_F)) for name, rules in HARDENED),
    Case("perm-mod-after", "watch", "d/f", (WATCH_F, *HARDENED[3][1])),
]


def load(kernel: KernelSandbox, rules: list[str]) -> None:
    kernel.kernel(*(shlex.join(rule.split()) for rule in rules))  # `auid>=1000` is no redirection


RESULTS: dict[str, tuple[str, str, bool]] = {}  # case -> (ground truth, suite's live verdict, agree)


@pytest.fixture(scope="module")
def access32(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    return build_access32(tmp_path_factory.mktemp("access32"))


@pytest.fixture
def objects() -> Iterator[Path]:
    tmp = locked_tmpdir("cisaudit-kt-")
    make_objects(tmp)
    yield tmp
    shutil.rmtree(tmp)


@pytest.fixture(scope="module", autouse=True)
def summary(request: pytest.FixtureRequest, access32: Path | None) -> Iterator[None]:
    yield
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is None or capture is None or not RESULTS:
        return
    agreeing = sum(agree for _, _, agree in RESULTS.values())
    with capture.global_and_fixture_disabled():  # to the terminal, not into a test's captured output
        reporter.write_line("\nkernel truth (case: each access recorded with the key? -> suite's live verdict)")
        for name, (truth, verdict, agree) in RESULTS.items():
            reporter.write_line(f"  {'agree   ' if agree else 'DISAGREE'} {name}: {truth} -> {verdict}")
        reporter.write_line(
            f"kernel truth agreement: {agreeing}/{len(RESULTS)}"
            + ("" if access32 else " (no 32-bit syscalls here: b32 not triggered)")
        )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_live_verdict_is_kernel_truth(objects: Path, kernel: KernelSandbox, access32: Path | None, case: Case) -> None:
    path, rules = case.expand(str(objects))
    load(kernel, rules)
    control = synthetic_control(path, case.style)
    verdict = suite_verdicts(control, ("live",))["live"]
    truth = ground_truth(control, objects, access32)
    inside = 2 if case.style == "watch" and Path(path).is_dir() else 1
    assert len(truth) == len(control.required_perms) * inside * (2 if access32 else 1) * 2, truth
    kernel_says = "pass" if all(truth.values()) else "fail"
    table = truth_table(truth, str(objects))
    RESULTS[case.name] = (table, verdict, verdict == kernel_says)
    assert verdict == kernel_says, f"kernel recorded: {table}; the suite's live verdict: {verdict}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_persisted_verdict_equals_live_after_augenrules(objects: Path, kernel: KernelSandbox, case: Case) -> None:
    """The same state written to /etc/audit/rules.d and loaded by a real `augenrules --load`."""
    path, rules = case.expand(str(objects))
    load(kernel, rules)
    listed = sh("auditctl -l").stdout
    kernel.write_rules_d("60-kernel-truth.rules", "".join(r + "\n" for r in rules))
    assert kernel.load().returncode == 0
    assert sh("auditctl -l").stdout == listed, "the rules file does not load the same kernel state"
    verdicts = suite_verdicts(synthetic_control(path, case.style))
    assert verdicts["persisted"] == verdicts["live"], verdicts


RULESET_RESULTS: dict[str, dict[str, int]] = {}  # set -> outcome -> cases
CELL_BLAME: dict[str, dict[str, int]] = {}  # set -> rule the model blames for a cell the kernel recorded -> cells


def ruleset_params() -> list[str]:
    return sorted(p.name.removesuffix(".rules") for p in RULESETS.iterdir() if p.is_dir() or p.suffix == ".rules")


@pytest.fixture(scope="module", autouse=True)
def ruleset_summary(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is None or capture is None or not RULESET_RESULTS:
        return
    columns = (AGREE, UNMET, FALSE_PASS, FALSE_FAIL, ERROR, NOT_APPLICABLE)
    with capture.global_and_fixture_disabled():
        reporter.write_line("\nrule sets: (state, control, check) cases, suite's verdict against the kernel's events")
        reporter.write_line(f"  {'set':38} {'cases':>5} " + " ".join(f"{c:>10}" for c in columns) + "  seconds")
        for name, tally in RULESET_RESULTS.items():
            counts = " ".join(f"{tally.get(c, 0):>10}" for c in columns)
            cells = f"{tally['cells']:>5} {tally['cell false PASS']:>4} {tally['cell false FAIL']:>4}"
            reporter.write_line(f"  {name:38} {tally['cases']:>5} {counts}  {tally['seconds']:>7}  cells {cells}")
        reporter.write_line(
            "cells (permission/ABI of a case, informational): model says lost, kernel recorded, blamed rule:"
        )
        for name, blamed in CELL_BLAME.items():
            for rule, count in sorted(blamed.items(), key=lambda kv: -kv[1])[:4]:
                reporter.write_line(f"  {name}: {count} x {rule[:150]}")


@pytest.mark.parametrize("ruleset", ruleset_params())
def test_ruleset_verdicts_are_kernel_truth(
    kernel: KernelSandbox, access32: Path | None, ruleset: str, tmp_path: Path
) -> None:
    """Each real-world rule set in selftests/rulesets, with the benchmark's rules after it and
    after the suite's --remediate, live and after a boot-like load: every (control, check) verdict
    equals what the kernel recorded for every access by root (auid unset), root with a login uid
    and an unprivileged user, 64-bit and 32-bit (selftests/integration/ruleset_truth.py).
    `-e 2` and `--loginuid-immutable` lines are not loaded (they would lock this machine's kernel)."""
    require(docker_root.available(), "needs Docker's files unpacked: sh scripts/setup.sh --test")
    for path in ("/var/lib/docker", *map(str, PRIVATE)):
        kernel.make_path(path)
    out = tmp_path / "result.json"
    command = [sys.executable, "-m", "selftests.integration.ruleset_truth", ruleset, str(access32 or "-"), str(out)]
    proc = docker_root.run_with_docker(command, tmp_path / "ns", timeout=600)
    assert proc.returncode == 0 and out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    rows = compare(result)
    tally = {"cases": sum(r[3] != NOT_APPLICABLE for r in rows), "seconds": result["seconds"]}
    for row in rows:
        tally[row[3]] = tally.get(row[3], 0) + 1
    cells = compare_cells(result)
    tally["cells"] = len(cells)
    for outcome in (FALSE_PASS, FALSE_FAIL):
        tally[f"cell {outcome}"] = sum(c[4] == outcome for c in cells)
    blamed: dict[str, int] = {}
    for cell in cells:
        if cell[4] == FALSE_FAIL:
            blamed[cell[5]] = blamed.get(cell[5], 0) + 1
    CELL_BLAME[ruleset] = blamed
    RULESET_RESULTS[ruleset] = tally
    wrong = [" ".join(r[:4]) + ": " + r[4] for r in rows if r[3] not in (AGREE, UNMET, NOT_APPLICABLE)]
    assert not wrong, f"{len(wrong)} disagreement(s):\n" + "\n".join(wrong)


@dataclass(frozen=True)
class Spared:
    """A condition of a real set's rule that no access of the rule-set comparison meets (every
    access it makes is by root, root with a login uid or an unprivileged user, through open,
    execve and chmod), so there the kernel records what the model says this rule may take. The
    claim is proven another way: `meet` is one access that meets the condition (sh run in {T},
    announced with `spawned LABEL PATH`), or `twin` the same rule with a condition an actor meets."""

    name: str
    rule: str  # placed before WATCH_F; it has another key or is `never`
    why: str
    meet: str = ""
    twin: str = ""
    model_takes: bool = True  # the model says the rule may take accesses (a process meeting it can run here)


_AS_USER = Actor.USER.prefix()
# An execute of {T}/d/f by a process whose real uid is LOGIN_UID and effective uid 0 (a setuid program).
_EXEC_AS_ROOT_OF_ANOTHER_UID = (
    f"sh -c 'echo {LOGIN_UID} > /proc/self/loginuid && exec setpriv --ruid={LOGIN_UID} \"$@\"' actor"
    ' sh -p -c \'exec "$0" "$(head -c $(( $(getconf PAGESIZE) * 32 )) /dev/zero | tr "\\0" x)"\' {T}/d/f'
    " 2>/dev/null & spawned x/ruid {T}/d/f"
)
SPARED = [
    Spared(
        "subj_type",  # neo23x0-auditd, bfuzzy-auditd-attack
        "-a never,exit -F subj_type=crond_t",
        "an SELinux label: this kernel has no SELinux, so the rule loads and matches nothing here",
        twin=f"-a never,exit -F auid={LOGIN_UID}",
        model_takes=False,  # no active LSM implements subj_type: the model knows it matches nothing
    ),
    Spared(
        "uid-not-euid",  # CIS Linux 'user_emulation' (ansible-lockdown DEBIAN12-CIS, RHEL9-CIS)
        "-a always,exit -F arch=b64 -C euid!=uid -F auid!=unset -S execve -k user_emulation",
        "a process whose real and effective uids differ (a setuid program; dash keeps them apart only with -p);"
        " the actors have uid == euid",
        meet=_EXEC_AS_ROOT_OF_ANOTHER_UID,
    ),
    Spared(
        "uid-not-euid-root",  # upstream-pci-dss 30-pci-dss-v31.rules 10.2.5.b-elevated-privs-setuid
        "-a always,exit -F arch=b64 -S execve -C uid!=euid -F euid=0 -F key=10.2.5.b-elevated-privs-setuid",
        "a process running as root through a setuid program (euid 0, another real uid); the actors have uid == euid",
        meet=_EXEC_AS_ROOT_OF_ANOTHER_UID,
    ),
    Spared(
        "truncate-eacces",  # upstream-ospp 30-ospp-v42-2-modify-failed.rules
        "-a always,exit -F arch=b64 -S truncate,ftruncate -F exit=-EACCES -F auid>=1000 -F auid!=unset"
        " -F key=unsuccessful-modification",
        "truncate(2) by path (truncate(1) opens the file first), a write the actors never make",
        meet=f"{_AS_USER}python3 -c 'import os, sys; os.truncate(sys.argv[1], os.stat(sys.argv[1]).st_size)'"
        " {T}/d/f 2>/dev/null & spawned w/truncate {T}/d/f",
    ),
    Spared(
        "o-creat-eacces",  # upstream-ospp 30-ospp-v42-1-create-failed.rules
        "-a always,exit -F arch=b64 -S openat,open_by_handle_at -F a2&0100 -F exit=-EACCES -F auid>=1000"
        " -F auid!=unset -F key=unsuccessful-create",
        "an open with O_CREAT; the actors' opens never create",
        meet=f"{_AS_USER}dd if=/dev/null of={{T}}/d/f oflag=append conv=notrunc count=0 2>/dev/null"
        " & spawned w/creat {T}/d/f",
    ),
]


@pytest.mark.parametrize("spared", SPARED, ids=lambda s: s.name)
def test_condition_no_comparison_access_meets_is_proven_otherwise(
    objects: Path, kernel: KernelSandbox, access32: Path | None, spared: Spared
) -> None:
    """The rule-set comparison cannot see these rules take anything (the kernel records every access
    it makes, while the model says the rule may take some: the cells the summary lists), so:
    the model names the rule (or, for a field no active LSM implements, says it takes nothing),
    every comparison access is recorded, and the access that meets the condition (or the rule's
    twin with a condition an actor meets) is not recorded with the key."""
    objects.chmod(0o755)  # the unprivileged actor must reach {T}/d/f
    tmp = str(objects)
    control = synthetic_control(f"{tmp}/d/f", "watch")
    actors = actor_lines([("rwxa", control.path)], list(Actor), access32)
    for rule, meet in ((spared.rule, spared.meet), *([(spared.twin, "")] if spared.twin else [])):
        load(kernel, [rule, WATCH_F.replace("{T}", tmp)])
        verdict = assessment_of(control).control_verdict(control, "live")
        if rule == spared.rule and not spared.model_takes:
            assert verdict.status == "pass", verdict.summary
        else:
            named = "recorded with another key" in verdict.summary or "not recorded" in verdict.summary
            assert verdict.status == "fail" and named, verdict.summary
        script = render_script(
            [Accesses(control.path, "rwxa")], KEY, timeout=5, extra=actors + meet.replace("{T}", tmp) + "\n"
        )
        seen = recorded(subprocess.run(["sh", "-c", script], capture_output=True, text=True, cwd=tmp).stdout)
        missed = sorted(t.label for t, events in seen.items() if not events)
        if rule == spared.twin:  # the actors meet the twin's condition: their accesses are lost
            assert missed and all("/admin" in m or "/user" in m for m in missed), (spared.why, missed)
        else:  # no comparison access meets the rule's condition; the meeting access is lost
            expected = [meet.rsplit(" spawned ", 1)[1].split()[0]] if meet else []
            assert missed == expected, (spared.why, missed)
        sh("auditctl -D")
