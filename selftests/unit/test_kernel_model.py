"""cisaudit.model.kernel on hardened hosts: which rule really takes each permission class.

Each case puts real-world rules (CIS Linux benchmark, audit-userspace's own rule sets) before
`-w /etc/docker -k docker` and asks which (class, ABI) cells they take, for whom, and what key the
accesses get. selftests/integration/test_kernel_truth.py checks the same rule states against this
machine's kernel.
"""

import pytest

from cisaudit.model.evaluate import explain
from cisaudit.model.kernel import (
    AuditKeys,
    AuditObject,
    FilterState,
    KernelFacts,
    KernelRule,
    WatchKind,
    class_syscalls,
    judge,
    kernel_facts,
)
from cisaudit.model.rules import AuditRule, parse_rules

BOTH = ("b64", "b32")
W = "-w /etc/docker -k docker"
TIME_CHANGE = (
    "-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time-change",
    "-a always,exit -F arch=b32 -S adjtimex,settimeofday,clock_settime,stime -k time-change",
)
CONTAINERS = (  # audit-userspace rules/ containers rule
    "-a always,exit -F arch=b64 -S unshare,setns -F key=container-config",
    "-a always,exit -F arch=b32 -S unshare,setns -F key=container-config",
)
MODULES = ("-a always,exit -F arch=b64 -S init_module,finit_module,delete_module -F auid!=unset -k modules",)
PERM_MOD = (
    "-a always,exit -F arch=b64 -S chmod,fchmod,fchmodat -F auid>=1000 -F auid!=unset -k perm_mod",
    "-a always,exit -F arch=b32 -S chmod,fchmod,fchmodat -F auid>=1000 -F auid!=unset -k perm_mod",
)
ACCESS = (
    "-a always,exit -F arch=b64 -S creat,open,openat,truncate,ftruncate -F exit=-EACCES -F auid>=1000 "
    "-F auid!=unset -k access",
)
CROND = "-a never,exit -F subj_type=crond_t"


def state(*lines: str, facts: KernelFacts | None = None) -> FilterState:
    out = []
    for line in parse_rules("\n".join(lines), "50-hardened.rules"):
        assert isinstance(line.item, AuditRule), line
        rule = line.item
        kind = WatchKind.TREE if rule.path == "/etc/docker" else WatchKind.INODE
        out.append(KernelRule(rule, line, rule.path, frozenset({kind}), frozenset({rule.action})))
    return FilterState(exit=out, facts=facts)


def problems(st: FilterState, keys: str | AuditKeys = "docker", perms: str = "rwxa") -> list[str]:
    return explain(judge(st, AuditObject("/etc/docker", True), perms, BOTH, keys, "x86_64"), BOTH)[1]


@pytest.mark.parametrize(
    "before",
    [TIME_CHANGE, CONTAINERS, MODULES, ("-a always,exit -F arch=b64 -S sethostname,setdomainname -k system-locale",)],
    ids=["time-change", "unshare-setns", "finit_module", "system-locale"],
)
def test_rules_whose_syscalls_are_in_no_class_take_nothing(before: tuple[str, ...]) -> None:
    assert problems(state(*before, W)) == []


def test_perm_mod_takes_attribute_changes_of_login_users_with_its_key() -> None:
    found = problems(state(*PERM_MOD, W))
    assert [f.split(" by `")[0] for f in found] == [
        f"attribute change on {abi} (chmod, fchmod, fchmodat by processes with auid>=1000, auid!=unset): "
        "recorded with another key (key perm_mod, not 'docker')"
        for abi in BOTH
    ]
    assert found[0].endswith("(50-hardened.rules:1)") and found[1].endswith("(50-hardened.rules:2)")


def test_access_rule_takes_failed_opens_not_executions_or_chmod() -> None:
    found = problems(state(*ACCESS, W))
    fields = "by processes with exit=-EACCES, auid>=1000, auid!=unset"
    taken = f"recorded with another key (key access, not 'docker') by `{ACCESS[0]}` (50-hardened.rules:1)"
    assert found == [
        f"read on b64 (open, openat {fields}): {taken}",
        f"write on b64 (creat, ftruncate, open, openat, truncate {fields}): {taken}",
    ]


def test_a_rule_without_arch_numbers_its_syscalls_in_the_hosts_abi() -> None:
    """`-S chmod` without arch is x86_64's 90: in the 32-bit ABI that is another syscall (mmap)."""
    found = problems(state("-a always,exit -S chmod -F auid>=1000 -k perm_mod", W))
    assert len(found) == 1 and found[0].startswith("attribute change on b64 (chmod by "), found


def test_the_hosts_own_numbers_decide() -> None:
    """Numbers from the host's ausyscall replace the model's: here i386's chmod shares x86_64's number."""
    tables = {"x86_64": "90 chmod 2 open 59 execve", "i386": "90 chmod 5 open 11 execve"}
    facts = kernel_facts("x86_64", tables, None, False, False)
    assert facts.numbers_from.startswith("the host's")
    found = problems(state("-a always,exit -S chmod -F auid>=1000 -k perm_mod", W, facts=facts))
    assert len(found) == 1 and found[0].startswith("attribute change (by processes with auid>=1000)"), found


def test_execveat_is_an_execution() -> None:
    found = problems(state("-a always,exit -F arch=b64 -S execveat -k exec", W))
    assert found and found[0].startswith("execute on b64 (execveat): recorded with another key (key exec"), found


def test_perm_field_against_a_syscall_of_another_class_matches_nothing() -> None:
    assert problems(state("-a never,exit -F arch=b64 -S chmod -F perm=r", W)) == []


@pytest.mark.parametrize(
    ("lsms", "lost"),
    [(frozenset(), False), (frozenset({"apparmor"}), False), (frozenset({"selinux"}), True), (None, True)],
    ids=["no-lsm", "apparmor-has-no-subj_type", "selinux", "unknown"],
)
def test_subj_type_needs_an_lsm_that_implements_it(lsms: frozenset[str] | None, lost: bool) -> None:
    facts = KernelFacts("x86_64", kernel_facts("x86_64").numbers, "model", lsms)
    found = problems(state(CROND, W, facts=facts))
    assert bool(found) == lost, found
    if lost:
        assert found == [
            "read, write, execute, attribute change (by processes with subj_type=crond_t): "
            f"not recorded (a `never` rule) by `{CROND}` (50-hardened.rules:1)"
        ]


@pytest.mark.parametrize(
    ("lsm_list", "labelled", "selinux", "lsms"),
    [
        ("lockdown,capability,landlock,yama,apparmor,bpf", True, False, {"apparmor"}),
        ("capability,selinux,bpf", True, True, {"selinux"}),
        (None, False, False, set()),
        (None, True, True, {"selinux"}),
        (None, True, False, None),
        (None, None, None, None),
    ],
)
def test_active_lsms_from_the_probe(
    lsm_list: str | None, labelled: bool | None, selinux: bool | None, lsms: set[str] | None
) -> None:
    assert kernel_facts("x86_64", None, lsm_list, labelled, selinux).lsms == lsms


def test_numbers_fall_back_to_the_models_tables_and_say_so() -> None:
    assert kernel_facts("x86_64").numbers_from.startswith("the model's tables")
    assert kernel_facts("x86_64", {"x86_64": "90 chmod"}).numbers_from.startswith("the model's tables")
    assert kernel_facts("mips").numbers_from.startswith("none")


def test_class_syscalls_exist_in_their_abi() -> None:
    facts = kernel_facts("x86_64")
    assert "chown32" in class_syscalls("a", "b32", facts) and "chown32" not in class_syscalls("a", "b64", facts)
    assert "socketcall" in class_syscalls("w", "b32", facts) and "socketcall" not in class_syscalls("w", "b64", facts)
    assert class_syscalls("x", "b64", facts) == {"execve", "execveat"}


def test_several_keys_or_any() -> None:
    st = state(*PERM_MOD, W)
    assert problems(st, AuditKeys(("docker", "perm_mod"))) == []
    assert problems(st, AuditKeys((), True)) == []
    dropped = state(CROND, W, facts=KernelFacts("x86_64", {}, "none", frozenset({"selinux"})))
    assert problems(dropped, AuditKeys((), True)), "`any` still needs the accesses recorded"


@pytest.mark.parametrize(
    ("values", "keys"),
    [
        (["docker"], AuditKeys(("docker",))),
        (["docker,perm_mod"], AuditKeys(("docker", "perm_mod"))),
        (["docker", "perm_mod", "docker"], AuditKeys(("docker", "perm_mod"))),
        (["any"], AuditKeys((), True)),
    ],
)
def test_audit_key_values(values: list[str], keys: AuditKeys) -> None:
    assert AuditKeys.parse(values) == keys


@pytest.mark.parametrize("values", [[""], ["docker,"], ["any,docker"], []])
def test_bad_audit_key_values(values: list[str]) -> None:
    with pytest.raises(ValueError, match="--audit-key"):
        AuditKeys.parse(values)


def test_a_rule_without_arch_takes_the_32bit_syscall_of_the_same_number() -> None:
    """x86_64's rt_sigreturn is 15, i386's chmod: the rule takes 32-bit chmod (measured)."""
    found = problems(state("-a always,exit -S rt_sigreturn -F auid>=1000 -F auid!=unset -k sig", W))
    assert [f.split(": ")[0] for f in found] == [
        "attribute change on b32 (chmod by processes with auid>=1000, auid!=unset)"
    ]
