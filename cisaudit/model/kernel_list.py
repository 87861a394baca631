"""The kernel's own rule list, as the probe's reader prints it (cisaudit/host/kernel_rules.py), and
the listing rendered from it line for line as `auditctl -l` prints it. Pure code, no I/O.

Where the reader reads the list whole the probe runs no `auditctl -l`: each read of the list makes
the kernel build a message per rule, and auditctl spends three syscalls on each, every one dear on
a host with thousands of rules (docs/kernel-behaviour.md, the syscall tax). The rendering follows
audit-userspace's src/auditctl-listing.c (print_rule) with interpret off, as `auditctl -l` runs,
in three points closer to the kernel than auditctl 3.0: `path`, `dir` and `exe` print their own
operator (as auditctl 3.1 and 4 do, where 3.0 prints `=`), a rule whose path, dir or perm is not
`=` never prints as `-w`, and a rule without an arch field names its syscalls by the machine's own
table (auditctl carries the previous rule's arch over).
selftests/integration/test_kernel_list.py loads the collected real rule sets and compares the two.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from cisaudit.model.auditctl_names import COMPARISONS, ERRNOS, FIELDS, FSTYPES, MESSAGE_TYPES, OPERATORS
from cisaudit.model.kernel import SYSCALL_TABLE_NAMES, parse_table

# linux/audit.h field numbers
ARCH, MSGTYPE, SUBJ_USER, PPID, OBJ_LEV_HIGH, FSTYPE = 11, 12, 13, 18, 23, 26
INODE, EXIT, WATCH, PERM, DIR, COMPARE, EXE, ARG0, ARG3, KEY = 102, 103, 105, 106, 107, 111, 112, 200, 203, 210
STRING_FIELDS = frozenset({*range(SUBJ_USER, OBJ_LEV_HIGH + 1)} - {PPID} | {WATCH, DIR, EXE, KEY})
WATCH_FIELDS = frozenset({PERM, KEY, DIR, WATCH})
FILTERS = {0: "user", 1: "task", 2: "entry", 3: "watch", 4: "exit", 5: "exclude", 6: "filesystem", 7: "io_uring"}
NO_SYSCALLS = frozenset({"user", "task", "exclude", "filesystem"})  # print_syscall prints none
ACTIONS = {0: "never", 1: "possible", 2: "always"}
# AUDIT_ARCH_* (linux/audit.h): the ausyscall table of each ABI the probe fetches (host/scripts/probe.sh)
ARCH_TABLES = {
    0xC000003E: "x86_64",
    0x40000003: "i386",
    0xC00000B7: "aarch64",
    0x40000028: "arm",
    0x80000015: "ppc64",
    0xC0000015: "ppc64",
    0x00000014: "ppc",
    0x80000016: "s390x",
    0x00000016: "s390",
    0xC00000F3: "riscv64",
}
ARCH_64BIT = 0x80000000
IO_URING_OPS = 37  # IORING_OP_LAST as auditctl 4 is built without liburing: the words it tests for `all`
PERM_LETTERS = ((4, "r"), (2, "w"), (1, "x"), (8, "a"))  # AUDIT_PERM_READ, _WRITE, _EXEC, _ATTR
KEY_SEPARATOR = "\x01"
KERNEL_LIST = "kernel list"  # what a rendered listing's lines cite (`kernel list:3`), not `auditctl -l:3`


class KernelListError(ValueError):
    """A reader's line that is not what kernel_rules.py prints."""


@dataclass(frozen=True)
class RuleField:
    number: int
    operator: str
    value: int | str  # u32 as the kernel holds it, or a string field's text


@dataclass(frozen=True)
class ListedRule:
    """One rule of the kernel's list (struct audit_rule_data)."""

    filter: str
    action: str
    syscalls: tuple[int, ...] | None  # None: words 0-62 all set (`-S all`)
    fields: tuple[RuleField, ...]

    @property
    def watch_kind(self) -> str:
        """`dir`, `path` or `none`: the kind of its last path or dir field."""
        found = [f.number for f in self.fields if f.number in (WATCH, DIR)]
        return "none" if not found else "dir" if found[-1] == DIR else "path"


def _unquote(text: str) -> str:
    if "%" not in text:
        return text
    raw, rest = bytearray(), text
    while "%" in rest:
        head, _, rest = rest.partition("%")
        raw += head.encode() + bytes.fromhex(rest[:2])
        rest = rest[2:]
    return (raw + rest.encode()).decode(errors="replace")


def _field(word: str) -> RuleField:
    number, operator, value = word.split(":", 2)
    field, op = int(number), OPERATORS.get(int(operator))
    if op is None:
        raise KernelListError(f"unknown operator {operator} in {word!r}")
    return RuleField(field, op, _unquote(value) if field in STRING_FIELDS else int(value))


def _rule(line: str) -> ListedRule:
    flags, action, mask, *fields = line.split(" ")
    number = int(flags) & 0x07
    return ListedRule(
        FILTERS.get(number, str(number)),
        ACTIONS.get(int(action), action),
        None if mask == "all" else () if mask == "-" else tuple(int(n) for n in mask.split(",")),
        tuple(_field(word) for word in fields),
    )


# A path or dir field's value: rules that differ only by it share a shape, read and rendered once
# (a host with thousands of rules has a few shapes: watches, per-binary rules).
_PATH_VALUE = re.compile(r"( 10[57]:\d+:)([^ \n]*)")
PLACEHOLDER = "\0"  # where a path goes in a shape: no reader's line holds a NUL (%00)


@dataclass(frozen=True)
class KernelList:
    """The reader's rules, by shape: each line with its path and dir values taken out (`shapes`,
    in the kernel's order) and those values in order (`paths`, decoded)."""

    shapes: list[str]
    paths: list[str]
    rules: dict[str, ListedRule]  # each distinct shape, read

    def _each(self) -> Iterator[tuple[ListedRule, list[str]]]:
        at = 0
        for shape in self.shapes:
            count = shape.count(PLACEHOLDER)
            yield self.rules[shape], self.paths[at : at + count]
            at += count

    def watches(self) -> list[tuple[str, str, str, str]]:
        """(list, action, kind, path) per rule, in order: kind and path of its last path or dir field."""
        return [(rule.filter, rule.action, rule.watch_kind, paths[-1] if paths else "") for rule, paths in self._each()]

    def listing(self, tables: dict[str, str], machine: str) -> str:
        """The whole listing, as `auditctl -l` prints it (`No rules` for none), with the syscall
        names of the probe's tables (`ausyscall TABLE --dump` lines) for a `machine` (`uname -m`)."""
        names = {table: {n: name for name, n in parse_table(text).items()} for table, text in tables.items()}
        own = next(iter(SYSCALL_TABLE_NAMES.get(machine, {}).values()), "")  # a rule without an arch field's
        templates = {shape: render(rule, names, own).split(PLACEHOLDER) for shape, rule in self.rules.items()}
        lines = []
        for shape, (_, paths) in zip(self.shapes, self._each(), strict=True):
            parts = templates[shape]
            lines.append(parts[0] + "".join(p + part for p, part in zip(paths, parts[1:], strict=True)))
        return "\n".join(lines) + "\n" if lines else "No rules\n"


def parse_kernel_list(body: str) -> KernelList | None:
    """The reader's section, or None when it was not read whole (no `done`) or a line is not the
    reader's (believe nothing of it)."""
    lines = body.split("\n")
    if "done" not in lines or PLACEHOLDER in body:
        return None
    text = "\n".join(lines[: lines.index("done")])
    paths = [_unquote(value) for _, value in _PATH_VALUE.findall(text)]
    shapes = _PATH_VALUE.sub(lambda m: m[1] + PLACEHOLDER, text).split("\n") if text else []
    try:
        return KernelList(shapes, paths, {shape: _rule(shape) for shape in set(shapes)})
    except (ValueError, IndexError):
        return None


def _is_watch(rule: ListedRule) -> bool:
    """auditctl's is_watch: only path/dir/perm/key fields, a perm, and every syscall; and here each
    of them `=` (auditctl prints `-F path!=/x -F perm=w` as `-w /x -p w`, a watch of the one path
    the rule leaves out)."""
    fields = rule.fields
    if any(f.number not in WATCH_FIELDS or f.operator != "=" for f in fields) or all(f.number != PERM for f in fields):
        return False
    return rule.filter in NO_SYSCALLS or rule.syscalls is None


def _syscall_names(rule: ListedRule, tables: dict[str, dict[int, str]], own: str) -> str:
    if rule.filter in NO_SYSCALLS:
        return ""
    if rule.syscalls is None:
        return " -S all"
    if rule.filter == "io_uring":
        if set(range(IO_URING_OPS * 32)) <= set(rule.syscalls):
            return " -S all"
        return " -S " + ",".join(str(n) for n in rule.syscalls) if rule.syscalls else ""
    arches = [f.value for f in rule.fields if f.number == ARCH]
    table = ARCH_TABLES.get(int(arches[-1])) if arches else own
    names = tables.get(table or "", {})
    return " -S " + ",".join(names.get(n, str(n)) for n in rule.syscalls) if rule.syscalls else ""


def _signed(value: int | str) -> int:
    number = int(value)
    return number - (1 << 32) if number >= 1 << 31 else number


def _arch(f: RuleField) -> str:
    value = int(f.value)
    if value not in ARCH_TABLES:
        return f" -F arch{f.operator}0x{value:X}"
    return f" -F arch{f.operator}{'b64' if value & ARCH_64BIT else 'b32'}"


def _perms(value: int) -> str:
    return "".join(letter for bit, letter in PERM_LETTERS if value & bit)


def _string_field(f: RuleField, name: str, watch: bool) -> str:
    if f.number in (WATCH, DIR):
        return f"-w {f.value}" if watch else f" -F {name}{f.operator}{f.value}"
    if f.number == KEY:
        return "".join(f" -k {k}" if watch else f" -F key={k}" for k in str(f.value).split(KEY_SEPARATOR) if k)
    return f" -F {name}{f.operator}{f.value}"


def _numeric_field(f: RuleField, name: str) -> str:
    value, op = int(f.value), f.operator
    if f.number == MSGTYPE:
        return f" -F {name}{op}{MESSAGE_TYPES.get(value, _signed(value))}"
    if f.number == INODE:
        return f" -F {name}{op}{value}"
    if f.number == COMPARE:
        left, right = COMPARISONS.get(value, ("", ""))
        return f" -C {left}{op}{right}" if left else ""
    if ARG0 <= f.number <= ARG3:
        return f" -F {name}{op}0x{value:X}"
    if f.number == EXIT:
        number = _signed(value)
        return f" -F {name}{op}-{ERRNOS[-number]}" if number < 0 and -number in ERRNOS else f" -F {name}{op}{number}"
    if f.number == FSTYPE:
        return f" -F {name}{op}{FSTYPES.get(value, _signed(value))}"
    return f" -F {name}{op}{_signed(value)}"


def render(rule: ListedRule, tables: dict[str, dict[int, str]], own: str) -> str:
    """The rule as `auditctl -l` prints it (print_rule, field by field and in the kernel's order:
    a watch whose perm comes before its path prints as auditctl prints it, ` -p wa-w /x`)."""
    watch = _is_watch(rule)
    text = ""
    if not watch:
        text = f"-a {rule.action},{rule.filter}"
        text += "".join(_arch(f) for f in rule.fields if f.number == ARCH)
        text += _syscall_names(rule, tables, own)
    for f in rule.fields:
        name = FIELDS.get(f.number)
        if f.number == ARCH:
            continue
        if name is None:
            text += f" f{f.number}{f.operator}{_signed(f.value) if isinstance(f.value, int) else f.value}"
        elif f.number == PERM:
            text += f" -p {_perms(int(f.value))}" if watch else f" -F perm={_perms(int(f.value))}"
        elif isinstance(f.value, str):
            text += _string_field(f, name, watch)
        else:
            text += _numeric_field(f, name)
    return text
