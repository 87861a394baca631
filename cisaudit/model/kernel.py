"""The kernel's audit filter as a pure model: which rule, and so which key, an access gets.

Pure code, no I/O. Each fact is in docs/kernel-behaviour.md with how it was measured:
- the exit list is searched in order and the FIRST rule that matches an access decides it,
  whatever its kind (path, tree watch on an ancestor, syscall rule with no path);
- a rule's path is bound when the rule is added: its parent components are followed through
  symlinks, its last component is not (a rule on a symlink watches the link's own inode);
- `-F path=` (and `-w` on a non-directory) watches one inode, `-F dir=` (and `-w` on a
  directory) the whole subtree;
- a permission class is a set of syscalls (the kernel's audit_*_class tables, open by its flags);
- the task list can stop auditing of whole processes, the exclude list drops records, the
  filesystem list drops a filesystem's inodes, and `-e 0` records nothing.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from functools import cache

from cisaudit.model.rules import AuditRule, Condition, RuleLine, RuleSyntaxError, abi_of, machine_abis
from cisaudit.model.syscall_tables import TABLES

PERM_NAMES = {"r": "read", "w": "write", "x": "execute", "a": "attribute change"}

# The kernel's permission classes (kernel/auditsc.c audit_match_perm). A syscall's class is decided
# per ABI: audit_classify_syscall (lib/audit.c, arch/x86/kernel/audit_64.c; the 32-bit compat ABI:
# arch/x86/ia32/audit.c, lib/compat_audit.c for arm64) sends open/openat/openat2 to their access
# mode (ACC_MODE: O_RDONLY reads, O_WRONLY writes, O_RDWR both; O_CREAT/O_TRUNC do not count),
# execve/execveat to x and socketcall to w (its SYS_BIND); every other syscall is r, w or a only if
# it is in that ABI's class table, the same generic headers compiled against each ABI's numbers:
# include/asm-generic/audit_read.h, audit_write.h (which includes audit_dir_write.h) and
# audit_change_attr.h (mainline, read for v6.18). A name counts in an ABI only where that ABI has
# the syscall (truncate64 and chown32 exist in i386, not in x86_64).
_OPENS = frozenset({"open", "openat", "openat2"})
_DIR_WRITE = frozenset(
    {"rename", "mkdir", "rmdir", "creat", "link", "unlink", "symlink", "mknod", "mkdirat", "mknodat"}
    | {"unlinkat", "renameat", "linkat", "symlinkat", "renameat2"}
)
KERNEL_CLASSES: dict[str, frozenset[str]] = {
    "r": frozenset(
        {"readlink", "readlinkat", "quotactl", "listxattr", "listxattrat", "llistxattr", "flistxattr"}
        | {"getxattr", "getxattrat", "lgetxattr", "fgetxattr"}
    ),
    "w": _DIR_WRITE
    | {"acct", "swapon", "quotactl", "quotactl_fd", "truncate", "truncate64", "ftruncate", "ftruncate64"}
    | {"bind", "fallocate"},
    "a": frozenset(
        {"chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat"}
        | {"chown32", "fchown32", "lchown32", "link", "linkat"}
        | {"setxattr", "setxattrat", "lsetxattr", "fsetxattr"}
        | {"removexattr", "removexattrat", "lremovexattr", "fremovexattr"}
    ),
    "x": frozenset(),
}
# audit_classify_syscall's special cases, by name (each exists only in some ABIs).
CLASSIFIED: dict[str, frozenset[str]] = {
    "r": _OPENS,
    "w": _OPENS | {"socketcall"},
    "x": frozenset({"execve", "execveat"}),
    "a": frozenset(),
}
# Every syscall name that makes an access of some class: what the probe asks the host's table for.
CLASS_SYSCALLS = frozenset().union(*KERNEL_CLASSES.values(), *CLASSIFIED.values())
# -F fields that only an LSM can match (kernel/auditfilter.c hands them to security_audit_rule_init;
# with no LSM implementing the field the rule loads with no LSM rule and the field never matches,
# kernel/auditsc.c audit_filter_rules). Which LSM implements which field: security/selinux/ss/
# services.c selinux_audit_rule_init (all of them), security/smack/smack_lsm.c
# smack_audit_rule_init (subj_user, obj_user), security/apparmor/audit.c aa_audit_rule_init
# (subj_role, the profile).
_SUBJ = ("subj_user", "subj_role", "subj_type", "subj_sen", "subj_clr")
_OBJ = ("obj_user", "obj_role", "obj_type", "obj_lev_low", "obj_lev_high")
LSM_FIELDS: dict[str, frozenset[str]] = {
    "selinux": frozenset(_SUBJ + _OBJ),
    "smack": frozenset({"subj_user", "obj_user"}),
    "apparmor": frozenset({"subj_role"}),
}
_LSM_ANY = frozenset().union(*LSM_FIELDS.values())
# `ausyscall` table names per (machine, ABI): the table auditctl numbers a rule's -S names with.
SYSCALL_TABLE_NAMES: dict[str, dict[str, str]] = {
    "x86_64": {"b64": "x86_64", "b32": "i386"},
    "aarch64": {"b64": "aarch64", "b32": "arm"},
    "ppc64le": {"b64": "ppc64", "b32": "ppc"},
    "ppc64": {"b64": "ppc64", "b32": "ppc"},
    "s390x": {"b64": "s390x", "b32": "s390"},
    **{m: {"b32": "i386"} for m in ("i386", "i486", "i586", "i686")},
    "armv7l": {"b32": "arm"},
}
# Record types that carry the key (SYSCALL) or the path (PATH): excluding either loses the event.
_KEY_RECORDS = {"SYSCALL", "1300", "PATH", "1302"}
_FSTYPE_MAGIC = {
    "tmpfs": "0x01021994",
    "ext4": "0xef53",
    "xfs": "0x58465342",
    "btrfs": "0x9123683e",
    "overlay": "0x794c7630",
    "ramfs": "0x858458f6",
}


class WatchKind(Enum):
    INODE = "inode"  # -F path=, or -w on something that was not a directory when added
    TREE = "tree"  # -F dir=, or -w on a directory: the whole subtree


@dataclass(frozen=True)
class KernelRule:
    """A rule as the kernel holds it: where it is bound, and what it may be where the listing is ambiguous."""

    rule: AuditRule
    line: RuleLine
    location: str | None  # the bound path (parents resolved); None: the rule has no path
    kinds: frozenset[WatchKind] = frozenset({WatchKind.INODE})
    actions: frozenset[str] = frozenset({"always"})
    note: str = ""  # how an ambiguity of the listing was settled
    origin: str = ""  # a listed rule's twin in the persisted files (file:line): where it comes from
    unsettled: bool = False  # its watch kind is unknown and nothing on the host can say (note: how to settle)

    def cite(self) -> str:
        origin = f", persisted at {self.origin}" if self.origin else ""
        return f"`{self.line.text}` ({self.line.where}{origin})"

    @property
    def keys(self) -> tuple[str, ...]:
        return self.rule.keys


@dataclass(frozen=True)
class AuditObject:
    """The control's real object: fully resolved, with the filesystem it lives on."""

    path: str
    subtree: bool  # a directory whose whole subtree the control audits
    fstype: str = ""
    mount_point: bool = False  # a filesystem is mounted on it (a data-root on its own mount, CIS 1.1.1)


@dataclass(frozen=True)
class KernelFacts:
    """What decides a rule's reach besides its text: how its -S names were numbered, which LSMs run."""

    machine: str
    numbers: Mapping[str, Mapping[str, int]]  # ABI -> syscall name -> number, as auditctl maps names
    numbers_from: str  # where the numbers come from (the host's ausyscall, or the model's tables)
    lsms: frozenset[str] | None = None  # active LSMs that match audit fields; None: unknown
    lsms_from: str = "not probed"

    def number(self, abi: str, name: str) -> int | None:
        return self.numbers.get(abi, {}).get(name)


def parse_table(text: str) -> dict[str, int]:
    """`NUMBER NAME` pairs, separated by blanks (ausyscall --dump, or the model's own tables)."""
    words = text.split()
    return {name: int(num) for num, name in zip(words[::2], words[1::2], strict=False) if num.isdigit()}


def kernel_facts(
    machine: str,
    host_tables: Mapping[str, str] | None = None,
    lsm_list: str | None = None,
    labelled: bool | None = None,
    selinux: bool | None = None,
) -> KernelFacts:
    """The facts from one probe: `host_tables` is the host's ausyscall output per table name
    (SYSCALL_TABLE_NAMES), `lsm_list` /sys/kernel/security/lsm, `labelled` whether the probe's own
    process has an LSM label (/proc/self/attr/current readable), `selinux` whether selinuxfs is
    mounted. Missing host tables fall back to the model's (cisaudit/model/syscall_tables.py)."""
    names = SYSCALL_TABLE_NAMES.get(machine, {})
    host = {abi: parse_table((host_tables or {}).get(t, "")) for abi, t in names.items()}
    if names and all(host.values()):
        numbers, source = host, "the host's syscall tables (ausyscall, as auditctl numbers -S names)"
    elif names and all(t in TABLES for t in names.values()):
        numbers = {abi: parse_table(TABLES[t]) for abi, t in names.items()}
        source = "the model's tables (audit-userspace 3.0.9): the host's ausyscall gave none"
    else:
        numbers, source = {}, f"none for a {machine or 'unknown'} machine: syscall names compared within an ABI"
    lsms: frozenset[str] | None
    if lsm_list is not None and lsm_list.strip():
        lsms, lsm_source = frozenset(lsm_list.strip().split(",")) & set(LSM_FIELDS), "/sys/kernel/security/lsm"
    elif selinux:
        lsms, lsm_source = frozenset({"selinux"}), "selinuxfs is mounted"
    elif labelled is False and selinux is False:
        lsms, lsm_source = frozenset(), "no LSM labels processes (/proc/self/attr/current) and SELinux is off"
    else:
        lsms, lsm_source = None, "unknown (no /sys/kernel/security/lsm)"
    return KernelFacts(machine, numbers, source, lsms, lsm_source)


@dataclass
class FilterState:
    """The kernel's rule lists and whether anything reaches a log at all."""

    exit: list[KernelRule] = field(default_factory=list)
    task: list[KernelRule] = field(default_factory=list)
    exclude: list[KernelRule] = field(default_factory=list)
    filesystem: list[KernelRule] = field(default_factory=list)
    silenced: list[str] = field(default_factory=list)  # why nothing at all is recorded (-e 0, no auditd)
    unaudited: list[str] = field(default_factory=list)  # processes never audited (cisaudit/model/unaudited.py)
    facts: KernelFacts | None = None  # syscall numbering and LSMs; None: the model's own for the machine
    _index: _LocationIndex | None = field(default=None, init=False, repr=False, compare=False)

    def exit_near(self, path: str) -> list[KernelRule]:
        """The exit rules that can match an access to `path` or below it, in list order: those with
        no path, on `path`, an ancestor (`_under(path, location)`) or a descendant
        (`_under(location, path)`). By an index of the locations, not a scan: a host with thousands
        of rules would be scanned once per control and cell (issue 26.1)."""
        index = self._index
        if index is None or index.rules is not self.exit or index.count != len(self.exit):
            index = self._index = _location_index(self.exit)
        at = set(index.anywhere)
        roots = [path] + [path[:i] for i, c in enumerate(path) if c == "/"] + ["/"]
        for root in roots:
            at.update(index.on.get(root, ()))
        below = index.locations if path == "/" else _prefixed(index.locations, path + "/")
        for location in below:
            at.update(index.on[location])
        return [self.exit[i] for i in sorted(at)]

    def near(self, path: str) -> FilterState:
        """This state with only the exit rules near `path` (exit_near): what judging an object on
        `path` walks."""
        return replace(self, exit=self.exit_near(path))


@dataclass(frozen=True)
class _LocationIndex:
    rules: list[KernelRule]  # the list indexed, as it was (count): a list changed since is indexed again
    count: int
    anywhere: tuple[int, ...]  # positions of the rules with no path
    on: dict[str, list[int]]  # location -> positions of its rules
    locations: list[str]  # sorted: a prefix's locations are contiguous


def _location_index(rules: list[KernelRule]) -> _LocationIndex:
    on: dict[str, list[int]] = {}
    anywhere = []
    for i, kr in enumerate(rules):
        if kr.location is None:
            anywhere.append(i)
        else:
            on.setdefault(kr.location, []).append(i)
    return _LocationIndex(rules, len(rules), tuple(anywhere), on, sorted(on))


def _prefixed(locations: list[str], prefix: str) -> list[str]:
    start = bisect_left(locations, prefix)
    end = start
    while end < len(locations) and locations[end].startswith(prefix):
        end += 1
    return locations[start:end]


@dataclass(frozen=True)
class AuditKeys:
    """The keys that count as recorded (--audit-key): some named keys, or any key at all."""

    names: tuple[str, ...] = ("docker",)
    any: bool = False

    @classmethod
    def of(cls, key: str | AuditKeys) -> AuditKeys:
        return key if isinstance(key, AuditKeys) else cls((key,))

    @classmethod
    def parse(cls, values: Iterable[str]) -> AuditKeys:
        """Comma-separated or repeated values; `any` alone accepts every key. Raises ValueError."""
        names = tuple(dict.fromkeys(n.strip() for v in values for n in v.split(",")))
        if "" in names or not names:
            raise ValueError("--audit-key needs a key, several keys separated by commas, or `any`")
        if "any" in names:
            if len(names) > 1:
                raise ValueError("--audit-key any accepts every key: give it alone")
            return cls((), True)
        return cls(names)

    def accepts(self, keys: Iterable[str]) -> bool:
        return self.any or any(k in self.names for k in keys)

    @property
    def mode(self) -> str:
        """What every output says was required: `any` or the keys, comma-separated."""
        return "any" if self.any else ",".join(self.names)

    def __str__(self) -> str:
        return "any key" if self.any else " or ".join(repr(n) for n in self.names)


class Fate(Enum):
    """What happens to the accesses a rule takes (it is the first to match them)."""

    OTHER_KEY = "recorded with another key"
    DROPPED = "not recorded"
    AMBIGUOUS = "maybe not recorded"


@dataclass(frozen=True)
class Take:
    """A rule that is the first to match some (or every) access of a cell, and what it does with them."""

    rule: KernelRule
    fate: Fate
    whom: str = ""  # which accesses of the cell ("" every one): its syscalls of the class and its fields
    why: str = ""  # the key it gives, or why it is not recorded

    def text(self) -> str:
        return f"{self.fate.value} ({self.why}) by {self.rule.cite()}"


@dataclass(frozen=True)
class Cell:
    """One (permission, ABI) of a control: the rule that records it, and where accesses are lost."""

    perm: str
    abi: str
    recorded_by: KernelRule | None
    lost: tuple[Take, ...] = ()  # accesses taken first by a rule without an accepted key, or dropped
    partial: tuple[KernelRule, ...] = ()  # rules with the key that record only some accesses

    @property
    def ok(self) -> bool:
        return self.recorded_by is not None and not self.lost


@dataclass(frozen=True)
class Reach:
    """Which accesses of a cell one rule matches."""

    every: bool
    some: bool
    whom: str = ""  # when not every: which ones


NO_REACH = Reach(False, False)


def _under(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root + "/")


def _path_reach(kr: KernelRule, obj: AuditObject) -> tuple[bool, bool]:
    """(matches every access to the object, matches some access to it) by the rule's path alone."""
    if kr.location is None:
        return True, True
    sure, may = True, False
    for kind in kr.kinds:
        if kind is WatchKind.TREE:
            every = _under(obj.path, kr.location)
            some = every or (obj.subtree and _under(kr.location, obj.path))
        elif binds_hidden(kr, obj):  # never fires (docs/kernel-behaviour.md, "Mount points")
            every, some = False, False
        else:
            every = kr.location == obj.path and not obj.subtree
            some = kr.location == obj.path or (obj.subtree and _under(kr.location, obj.path))
        sure, may = sure and every, may or some
    return sure, may


def binds_hidden(kr: KernelRule, obj: AuditObject) -> bool:
    """An inode rule (`-F path=`) on a mount point binds the directory the mount hides (the lookup
    of its last component stops there), so no access to the mounted directory matches it: measured,
    loaded before and after the mount (selftests/e2e/test_mount_point_rules.py)."""
    return obj.mount_point and kr.location == obj.path and WatchKind.INODE in kr.kinds


def mount_point_note(obj: AuditObject) -> str:
    return (
        f"{obj.path} is a mount point ({obj.fstype or 'its own filesystem'}): a -F path= rule on it binds the "
        "directory the mount hides and records nothing; a tree watch (-w DIR, -F dir=DIR) loaded after the "
        "mount records (docs/kernel-behaviour.md)"
    )


@cache
def default_facts(machine: str) -> KernelFacts:
    """The model's own facts for a machine (no probe): its syscall tables, LSMs unknown."""
    return kernel_facts(machine)


def class_syscalls(perm: str, abi: str, facts: KernelFacts) -> frozenset[str]:
    """The syscalls whose accesses the kernel puts in the class in that ABI (KERNEL_CLASSES)."""
    names = KERNEL_CLASSES[perm] | CLASSIFIED[perm]
    table = facts.numbers.get(abi)
    return frozenset(n for n in names if n in table) if table else names


def _numbers(names: Iterable[str], abi: str, facts: KernelFacts) -> tuple[set[int], bool]:
    """(the numbers auditctl gave the names in that ABI, whether some name has none)."""
    numbers, unknown = set(), False
    for name in names:
        number = int(name) if name.isdigit() else facts.number(abi, name)
        if number is None:
            unknown = True
        else:
            numbers.add(number)
    return numbers, unknown


def _syscall_reach(rule: AuditRule, perm: str, abi: str, facts: KernelFacts) -> tuple[bool, bool, frozenset[str]]:
    """(every syscall of the class, some of it, the class's syscalls it names) by the rule's -S list.
    The kernel compares the syscall's number with the rule's bitmap; auditctl numbered the names in
    the rule's arch, or the machine's own ABI when it has none (then, in the other ABI, the same
    numbers are other syscalls)."""
    wanted = class_syscalls(perm, abi, facts)
    if rule.syscalls is None:
        return True, True, wanted
    rule_abi = abi_of(rule.arch, facts.machine) if rule.arch else machine_abis(facts.machine)[0]
    if facts.numbers.get(rule_abi) and facts.numbers.get(abi):
        numbers, unknown = _numbers(rule.syscalls, rule_abi, facts)
        hit = frozenset(n for n in wanted if facts.number(abi, n) in numbers)
        return hit == wanted and not unknown, bool(hit) or unknown, hit
    if rule_abi != abi:
        return False, True, frozenset()  # no numbers: in another ABI the rule's numbers may be anything
    hit = wanted & rule.syscalls
    return hit == wanted, bool(hit), hit


def _lsm_dead(rule: AuditRule, facts: KernelFacts) -> bool:
    """A subj_*/obj_* field no active LSM implements never matches, and so neither does the rule."""
    if facts.lsms is None:
        return False
    usable = frozenset().union(*(LSM_FIELDS[lsm] for lsm in facts.lsms))
    return any(c.name in _LSM_ANY and c.name not in usable for c in rule.conditions)


def _whom(rule: AuditRule, hit: frozenset[str], wanted: frozenset[str]) -> str:
    via = f"{', '.join(sorted(hit))}" if hit != wanted and hit else ""
    fields = ", ".join(str(c) for c in rule.conditions)
    return " ".join(p for p in (via, f"by processes with {fields}" if fields else "") if p)


def reach(kr: KernelRule, obj: AuditObject, perm: str, abi: str, facts: KernelFacts) -> Reach:
    """Which accesses of the cell one exit-list rule matches."""
    rule = kr.rule
    if rule.filter != "exit" or perm not in rule.perms:
        return NO_REACH
    if rule.arch is not None:
        try:
            if abi_of(rule.arch, facts.machine) != abi:
                return NO_REACH
        except RuleSyntaxError:
            return NO_REACH  # the kernel never holds such a rule
    if _lsm_dead(rule, facts):
        return NO_REACH
    sure_path, may_path = _path_reach(kr, obj)
    sure_sys, may_sys, hit = _syscall_reach(rule, perm, abi, facts)
    if not (may_path and may_sys):
        return NO_REACH
    # Any other field (uid, euid, auid, success, exe, ...) narrows the rule to some accesses.
    every = sure_path and sure_sys and not rule.conditions
    return Reach(every, True, "" if every else _whom(rule, hit, class_syscalls(perm, abi, facts)))


def exit_reach(
    kr: KernelRule, obj: AuditObject, perm: str, abi: str, machine: str, facts: KernelFacts | None = None
) -> tuple[bool, bool]:
    """(surely matches every access of the cell, may match some) for one exit-list rule."""
    r = reach(kr, obj, perm, abi, facts or default_facts(machine))
    return r.every, r.some


def _take(kr: KernelRule, r: Reach, keys: AuditKeys) -> Take:
    if kr.actions != {"always"} and keys.accepts(kr.keys) and "always" in kr.actions:
        why = "the listing prints `always` and `never` watches alike and no persisted rule says which"
        return Take(kr, Fate.AMBIGUOUS, r.whom, why)
    if "never" in kr.actions:
        return Take(kr, Fate.DROPPED, r.whom, "a `never` rule")
    got = f"key {', '.join(kr.keys)}" if kr.keys else "no key"
    return Take(kr, Fate.OTHER_KEY, r.whom, f"{got}, not {keys}")


def judge_cell(state: FilterState, obj: AuditObject, perm: str, abi: str, key: str | AuditKeys, machine: str) -> Cell:
    """Walk the exit list as the kernel does: the first rule matching an access takes it."""
    keys, facts = AuditKeys.of(key), state.facts or default_facts(machine)
    lost: list[Take] = []
    partial: list[KernelRule] = []
    for kr in state.exit:
        r = reach(kr, obj, perm, abi, facts)
        if not r.some:
            continue
        if kr.actions == {"always"} and keys.accepts(kr.keys):
            if r.every:
                return Cell(perm, abi, kr, tuple(lost), tuple(partial))
            partial.append(kr)
            continue
        lost.append(_take(kr, r, keys))
        if r.every:
            break
    return Cell(perm, abi, None, tuple(lost), tuple(partial))


def exclusion_cells(
    state: FilterState, obj: AuditObject, abis: tuple[str, ...], key: str | AuditKeys, machine: str
) -> list[tuple[KernelRule | None, tuple[KernelRule, ...]]]:
    """exclusion_cell for every permission and ABI, over the rules near the object (as judge)."""
    near = state.near(obj.path)
    return [exclusion_cell(near, obj, perm, abi, key, machine) for perm in "rwxa" for abi in abis]


def exclusion_cell(
    state: FilterState, obj: AuditObject, perm: str, abi: str, key: str | AuditKeys, machine: str
) -> tuple[KernelRule | None, tuple[KernelRule, ...]]:
    """(the `never` rule that takes every access of the cell, rules with the key that match before
    it): the first matching exit rule decides (docs/kernel-behaviour.md), so an exclusion placed
    after a rule that records the subtree with the key does nothing for it."""
    keys, facts = AuditKeys.of(key), state.facts or default_facts(machine)
    keyed: list[KernelRule] = []
    for kr in state.exit:
        r = reach(kr, obj, perm, abi, facts)
        if not r.some:
            continue
        if kr.actions == {"never"} and r.every:
            return kr, tuple(keyed)
        if keys.accepts(kr.keys) and "always" in kr.actions:  # records some or all with the key
            keyed.append(kr)
        elif r.every:
            break  # taken by a rule of another key: not recorded with ours
    return None, tuple(keyed)


def _exclude_takes(rule: AuditRule) -> bool:
    types = [c for c in rule.conditions if c.name == "msgtype"]
    if not types:
        return True  # no record-type field: every record of the matching events
    return any(c.op != "=" or c.value.upper() in _KEY_RECORDS for c in types)


def _fstype_matches(condition: Condition, fstype: str) -> bool:
    if condition.op != "=":
        return True
    value = condition.value.lower()
    return value in (fstype, _FSTYPE_MAGIC.get(fstype, "?"), str(int(_FSTYPE_MAGIC.get(fstype, "0x0"), 16)))


def _describe(conditions: Iterable[Condition]) -> str:
    text = " ".join(f"-F {c}" for c in conditions)
    return f"those matching {text}" if text else "all"


def host_losses(state: FilterState, obj: AuditObject) -> list[str]:
    """Reasons that make accesses to the object unrecorded whatever the exit list says."""
    reasons = list(state.silenced) + state.unaudited
    for kr in state.task:
        if kr.actions == {"always"} and not kr.rule.conditions:
            break  # the task list's first match: every later process is audited
        if "never" in kr.actions:
            reasons.append(
                f"{kr.cite()} stops auditing of {_describe(kr.rule.conditions)} processes started after it (task list)"
            )
    for kr in state.exclude:
        if _exclude_takes(kr.rule):
            reasons.append(
                f"{kr.cite()} drops the records that carry the key or the path "
                f"({_describe(kr.rule.conditions)}; exclude list)"
            )
    for kr in state.filesystem:
        fstypes = [c for c in kr.rule.conditions if c.name == "fstype"]
        if "never" in kr.actions and (not fstypes or any(_fstype_matches(c, obj.fstype) for c in fstypes)):
            reasons.append(
                f"{kr.cite()} drops every inode on {obj.fstype or 'its'} filesystem, "
                f"where {obj.path} lives (filesystem list)"
            )
    return reasons


def judge(
    state: FilterState, obj: AuditObject, perms: str, abis: tuple[str, ...], key: str | AuditKeys, machine: str
) -> list[Cell]:
    # Only rules with no path, or on the object, an ancestor or (for a subtree) a descendant can
    # match: walking just those keeps a host with thousands of rules cheap (issue 10.10).
    near = state.near(obj.path)
    return [judge_cell(near, obj, perm, abi, key, machine) for perm in perms for abi in abis]
