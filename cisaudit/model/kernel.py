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

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import Enum

from cisaudit.model.rules import AuditRule, Condition, RuleLine, RuleSyntaxError, abi_of, machine_abis

PERM_NAMES = {"r": "read", "w": "write", "x": "execute", "a": "attribute change"}

_OPEN = {"open", "openat", "openat2", "open_by_handle_at"}
_DIR_WRITE = {
    "rename",
    "renameat",
    "renameat2",
    "mkdir",
    "mkdirat",
    "rmdir",
    "creat",
    "link",
    "linkat",
    "unlink",
    "unlinkat",
    "symlink",
    "symlinkat",
    "mknod",
    "mknodat",
}
# include/asm-generic/audit_{read,write,change_attr}.h; open* by their access mode, execve by class.
PERM_CLASS_SYSCALLS: dict[str, frozenset[str]] = {
    "r": frozenset(
        _OPEN
        | {
            "readlink",
            "readlinkat",
            "quotactl",
            "listxattr",
            "llistxattr",
            "flistxattr",
            "getxattr",
            "lgetxattr",
            "fgetxattr",
            "getxattrat",
            "listxattrat",
            "file_getattr",
        }
    ),
    "w": frozenset(_OPEN | _DIR_WRITE | {"acct", "swapon", "quotactl", "truncate", "truncate64", "bind"}),
    "x": frozenset({"execve", "execveat"}),
    "a": frozenset(
        {
            "chmod",
            "fchmod",
            "fchmodat",
            "fchmodat2",
            "chown",
            "fchown",
            "lchown",
            "fchownat",
            "chown32",
            "fchown32",
            "lchown32",
            "setxattr",
            "lsetxattr",
            "fsetxattr",
            "setxattrat",
            "removexattr",
            "lremovexattr",
            "fremovexattr",
            "removexattrat",
            "file_setattr",
        }
    ),
}
_ALL_CLASS_SYSCALLS = frozenset().union(*PERM_CLASS_SYSCALLS.values())
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

    def cite(self) -> str:
        return f"`{self.line.text}` ({self.line.where})"

    @property
    def keys(self) -> tuple[str, ...]:
        return self.rule.keys


@dataclass(frozen=True)
class AuditObject:
    """The control's real object: fully resolved, with the filesystem it lives on."""

    path: str
    subtree: bool  # a directory whose whole subtree the control audits
    fstype: str = ""


@dataclass
class FilterState:
    """The kernel's rule lists and whether anything reaches a log at all."""

    exit: list[KernelRule] = field(default_factory=list)
    task: list[KernelRule] = field(default_factory=list)
    exclude: list[KernelRule] = field(default_factory=list)
    filesystem: list[KernelRule] = field(default_factory=list)
    silenced: list[str] = field(default_factory=list)  # why nothing at all is recorded (-e 0, no auditd)


@dataclass(frozen=True)
class Cell:
    """One (permission, ABI) of a control: the rule that records it, and where accesses are lost."""

    perm: str
    abi: str
    recorded_by: KernelRule | None
    lost: tuple[tuple[KernelRule, str], ...] = ()  # (rule, why) for accesses that miss the key
    partial: tuple[KernelRule, ...] = ()  # rules with the key that record only some accesses

    @property
    def ok(self) -> bool:
        return self.recorded_by is not None and not self.lost


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
        else:
            every = kr.location == obj.path and not obj.subtree
            some = kr.location == obj.path or (obj.subtree and _under(kr.location, obj.path))
        sure, may = sure and every, may or some
    return sure, may


def _syscall_reach(rule: AuditRule, perm: str, abi: str, default_abi: str) -> tuple[bool, bool]:
    if rule.syscalls is None:
        return True, True
    if rule.arch is None and abi != default_abi:
        # auditctl numbers a named syscall for the host's own ABI; in another ABI the same numbers
        # are other syscalls, so the rule may match anything there.
        return False, True
    wanted = PERM_CLASS_SYSCALLS[perm]
    unknown = bool(rule.syscalls - _ALL_CLASS_SYSCALLS - {"write", "read", "close", "fork", "clone"})
    return wanted <= rule.syscalls, bool(wanted & rule.syscalls) or unknown


def exit_reach(kr: KernelRule, obj: AuditObject, perm: str, abi: str, machine: str) -> tuple[bool, bool]:
    """(surely matches every access of the cell, may match some) for one exit-list rule."""
    rule = kr.rule
    if rule.filter != "exit" or perm not in rule.perms:
        return False, False
    default_abi = machine_abis(machine)[0]
    if rule.arch is not None:
        try:
            if abi_of(rule.arch, machine) != abi:
                return False, False
        except RuleSyntaxError:
            return False, False  # the kernel never holds such a rule
    sure_path, may_path = _path_reach(kr, obj)
    sure_sys, may_sys = _syscall_reach(rule, perm, abi, default_abi)
    if not (may_path and may_sys):
        return False, False
    # Any other field (uid, euid, auid, success, exe, ...) narrows the rule to some accesses.
    return sure_path and sure_sys and not rule.conditions, True


def judge_cell(state: FilterState, obj: AuditObject, perm: str, abi: str, key: str, machine: str) -> Cell:
    """Walk the exit list as the kernel does: the first rule matching an access takes it."""
    lost: list[tuple[KernelRule, str]] = []
    partial: list[KernelRule] = []
    for kr in state.exit:
        sure, may = exit_reach(kr, obj, perm, abi, machine)
        if not may:
            continue
        with_key = key in kr.keys
        if kr.actions == {"always"} and with_key:
            if sure:
                return Cell(perm, abi, kr, tuple(lost), tuple(partial))
            partial.append(kr)
            continue
        if kr.actions != {"always"} and with_key and "always" in kr.actions:
            why = "the listing prints `always` and `never` watches alike and no persisted rule says which"
        elif "never" in kr.actions:
            why = "a `never` rule"
        else:
            why = f"key(s) {', '.join(kr.keys) or 'none'}, not {key!r}"
        lost.append((kr, why + ("" if sure else ", for the accesses it matches")))
        if sure:
            break
    return Cell(perm, abi, None, tuple(lost), tuple(partial))


def exclusion_cell(
    state: FilterState, obj: AuditObject, perm: str, abi: str, key: str, machine: str
) -> tuple[KernelRule | None, tuple[KernelRule, ...]]:
    """(the `never` rule that takes every access of the cell, rules with the key that match before
    it): the first matching exit rule decides (docs/kernel-behaviour.md), so an exclusion placed
    after a rule that records the subtree with the key does nothing for it."""
    keyed: list[KernelRule] = []
    for kr in state.exit:
        sure, may = exit_reach(kr, obj, perm, abi, machine)
        if not may:
            continue
        if kr.actions == {"never"} and sure:
            return kr, tuple(keyed)
        if key in kr.keys:  # records some or all with the key (or may, where the listing is ambiguous)
            keyed.append(kr)
        elif sure:
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
    reasons = list(state.silenced)
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
    state: FilterState, obj: AuditObject, perms: str, abis: tuple[str, ...], key: str, machine: str
) -> list[Cell]:
    # Only rules with no path, or on the object, an ancestor or (for a subtree) a descendant can
    # match: walking just those keeps a host with thousands of rules cheap (issue 10.10).
    near = replace(
        state,
        exit=[
            kr
            for kr in state.exit
            if kr.location is None or _under(obj.path, kr.location) or _under(kr.location, obj.path)
        ],
    )
    return [judge_cell(near, obj, perm, abi, key, machine) for perm in perms for abi in abis]
