"""One model for audit rules, from rules files and from `auditctl -l` alike.

Pure code, no I/O. Tokens are split on whitespace exactly as auditctl does (it has no
quoting), so a line auditctl would reject is rejected here too, with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

ALL_PERMS = frozenset("rwxa")
# Fields holding a uid or gid, where auditctl reads `unset` and -1 as (u32)-1 (lib/fieldtab.h).
ID_FIELDS = frozenset(
    {"uid", "euid", "suid", "fsuid", "auid", "loginuid", "obj_uid", "gid", "egid", "sgid", "fsgid", "obj_gid"}
)
UNSET_IDS = frozenset({"unset", "-1", "4294967295"})
FILTER_LISTS = {"task", "exit", "user", "exclude", "filesystem", "io_uring"}
ACTIONS = {"always", "never"}
_COMPARED = re.compile(r"([^!=]+)(!=|=)([^!=]+)")
_NUMBER = re.compile(r"-?(0x[0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")  # auditctl's strtoul base 0
FIELD_RE = re.compile(r"^([A-Za-z0-9_]+)(!=|<=|>=|&=|=|<|>|&)(.*)$")
# `-F arch=` spellings auditctl accepts, per machine (`uname -m`), and the ABI each means there:
# a name is only valid on its own machine (x86_64 is no ABI of an aarch64 host), docs/kernel-behaviour.md.
_B32_X86 = {"i386", "i486", "i586", "i686"}
MACHINE_ARCHES: dict[str, dict[str, str]] = {
    "x86_64": {"b64": "b64", "x86_64": "b64", "b32": "b32", **{n: "b32" for n in _B32_X86}},
    "aarch64": {"b64": "b64", "aarch64": "b64", "b32": "b32", "arm": "b32", "armeb": "b32", "armv7l": "b32"},
    "ppc64le": {"b64": "b64", "ppc64le": "b64", "ppc64": "b64", "b32": "b32", "ppc": "b32"},
    "ppc64": {"b64": "b64", "ppc64": "b64", "b32": "b32", "ppc": "b32"},
    "s390x": {"b64": "b64", "s390x": "b64", "b32": "b32", "s390": "b32"},
    "riscv64": {"b64": "b64", "riscv64": "b64"},
    **{m: {"b32": "b32", **{n: "b32" for n in _B32_X86}} for m in _B32_X86},
    "armv7l": {"b32": "b32", "arm": "b32", "armv7l": "b32"},
}
# Machine-independent family of each name: what the kernel compares for "Rule exists".
ARCH_FAMILY = {name: abi for table in MACHINE_ARCHES.values() for name, abi in table.items()}


def machine_abis(machine: str) -> tuple[str, ...]:
    """The ABIs a machine's kernel runs syscalls in: 64-bit kernels also run 32-bit ones."""
    table = MACHINE_ARCHES.get(machine)
    if table is None:
        return ("b64", "b32")  # unknown machine: demand both, never fewer
    return tuple(abi for abi in ("b64", "b32") if abi in table.values())


def abi_of(arch: str, machine: str) -> str:
    """The ABI `-F arch=NAME` selects on this machine; a name it does not run is a syntax error."""
    table = MACHINE_ARCHES.get(machine, ARCH_FAMILY)
    if arch not in table:
        raise RuleSyntaxError(f"arch {arch!r} is not valid on a {machine or 'unknown'} machine")
    return table[arch]


# Control options: they configure the audit system and never define a rule.
DIRECTIVES_WITH_VALUE = {"-b", "-f", "-e", "-r", "--backlog_wait_time", "-t"}
DIRECTIVES_FLAG = {
    "-D",
    "-c",
    "-i",
    "--loginuid-immutable",
    "--reset-lost",
    "--reset_backlog_wait_time_actual",
    "-s",
    "-l",
    "-v",
    "-m",
}


class RuleSyntaxError(ValueError):
    """A line auditctl would refuse; the message says why."""


@dataclass(frozen=True)
class Condition:
    """A `-F` field that narrows which events a rule matches (anything but path/dir/perm/key/arch)."""

    name: str
    op: str
    value: str

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"

    @cached_property  # a host with thousands of rules asks often (frozen: computed once)
    def canonical(self) -> str:
        """The condition as the kernel holds it, so a rules file's spelling and `auditctl -l`'s compare
        equal: `-C euid!=uid` lists as `uid!=euid` (one comparison, either order), `auid!=unset` as
        `auid!=-1` (unset is (u32)-1), `a0=0` as `a0=0x0` and `a2&0100` as `a2&0x40` (auditctl reads
        numbers with strtoul base 0)."""
        compared = _COMPARED.fullmatch(self.value) if self.name == "compare" else None
        if compared:
            return f"compare:{compared[2]}:" + ",".join(sorted((compared[1], compared[3])))
        value = self.value
        if self.name in ID_FIELDS and value in UNSET_IDS:
            value = "unset"
        elif _NUMBER.fullmatch(value):
            sign, digits = ("-", value[1:]) if value.startswith("-") else ("", value)
            base = 16 if digits[:2].lower() == "0x" else 8 if digits.startswith("0") else 10
            value = sign + str(int(digits, base))
        return f"{self.name}{self.op}{value}"


@dataclass(frozen=True)
class AuditRule:
    """A normalized rule: `-w X -p rwa -k k` and `-a exit,always -F path=X -F perm=war -k k` are equal."""

    filter: str
    action: str
    path: str | None = None  # path= / dir= / -w target; the listing cannot tell path from dir
    path_field: str = field(default="path", compare=False)  # "path", "dir" or "watch": how it was written
    perms: frozenset[str] = ALL_PERMS  # no perm field means every access
    arch: str | None = None  # the `-F arch=` name as written (abi_of() maps it per machine); None: every ABI
    syscalls: frozenset[str] | None = None  # None = all syscalls
    keys: tuple[str, ...] = ()
    conditions: tuple[Condition, ...] = ()
    prepend: bool = False  # -A: inserted at the head of the list
    text: str = field(default="", compare=False)

    @cached_property  # a host with thousands of rules asks often (frozen: computed once)
    def identity(self) -> tuple[object, ...]:
        """What the kernel compares for "Rule exists" and for `-d`/`-W` deletion."""
        arch = ARCH_FAMILY.get(self.arch, self.arch) if self.arch else None
        return (
            self.filter,
            self.action,
            self.path,
            self.perms,
            arch,
            self.syscalls,
            tuple(sorted(self.keys)),
            tuple(sorted(c.canonical for c in self.conditions)),
        )

    def held(self, tree: bool) -> tuple[object, ...]:
        """The identity the kernel compares once the rule is added (`tree`: added as a tree watch).
        `identity` is what `auditctl -l` shows, and there `path=` and `dir=` look alike; in the kernel
        they are different fields. auditctl sends `-w DIR` on an existing directory as `dir=DIR`, and
        `-w` on anything else as `path=`. Measured (auditctl 3.0.9): `-w DIR -p rwa` beside
        `-a exit,always -F path=DIR -F perm=rwa` loads (two rules); beside `-F dir=DIR -F perm=rwa` it
        is "Rule exists"; `-w FILE -p rwa` beside `-F path=FILE -F perm=rwa` is "Rule exists"."""
        return self._held_tree if tree else self._held_inode

    @cached_property  # held(): a host with thousands of rules compares each several times
    def _held_inode(self) -> tuple[object, ...]:
        return (*self.identity, "path" if self.path else None)

    @cached_property
    def _held_tree(self) -> tuple[object, ...]:
        return (*self.identity, "dir" if self.path else None)


@dataclass(frozen=True)
class Directive:
    """A control line (-D, -b 8192, -e 2, -c, ...); `-D -k KEY` is option -D with value KEY."""

    option: str
    value: str | None = None


@dataclass(frozen=True)
class Deletion:
    """`-d ...` or `-W ...`: removes the identical rule if present."""

    rule: AuditRule


Item = AuditRule | Directive | Deletion


@dataclass(frozen=True)
class RuleLine:
    """One meaningful line of a rules file or listing, where it came from, and what it means."""

    source: str
    lineno: int
    text: str
    item: Item | None
    error: str | None = None

    @property
    def where(self) -> str:
        return f"{self.source}:{self.lineno}"


@lru_cache(maxsize=1024)
def condition(name: str, op: str, value: str) -> Condition:
    """One Condition per distinct field: a host with thousands of rules repeats a few (`auid>=1000`,
    `auid!=unset`), so each is made, and its `canonical` computed, once."""
    return Condition(name, op, value)


def _field(value: str) -> tuple[str, str, str]:
    """A `-F` value's name, operator and value (FIELD_RE); `path=`/`dir=`, one per rule, without it."""
    for name in ("path", "dir"):
        if value.startswith(name) and value[len(name) : len(name) + 1] == "=":
            return name, "=", value[len(name) + 1 :]
    m = FIELD_RE.match(value)
    if not m:
        raise RuleSyntaxError(f"-F needs name, operator and value: {value!r}")
    name, op, val = m.groups()
    return name, op, val


def _normalize_path(path: str) -> str:
    if not path.startswith("/"):
        raise RuleSyntaxError(f"path must be absolute: {path!r}")
    return path.rstrip("/") or "/"


@lru_cache(maxsize=64)
def _perms(value: str) -> frozenset[str]:
    perms = frozenset(value)
    if not perms or not perms <= ALL_PERMS:
        raise RuleSyntaxError(f"permissions must be letters of rwxa: {value!r}")
    return perms


def _list_action(value: str) -> tuple[str, str]:
    parts = value.split(",")
    if len(parts) != 2:
        raise RuleSyntaxError(f"-a needs list,action: {value!r}")
    first, second = parts
    if first in FILTER_LISTS and second in ACTIONS:
        return first, second
    if first in ACTIONS and second in FILTER_LISTS:
        return second, first
    raise RuleSyntaxError(f"unknown list or action: {value!r}")


_TAKES_VALUE = frozenset({"-w", "-W", "-p", "-k", "-a", "-A", "-d", "-F", "-S", "-C"} | DIRECTIVES_WITH_VALUE)


def _split_options(tokens: list[str]) -> list[tuple[str, str | None]]:
    """Pair options with their values; accept `-Fpath=x` as getopt does."""
    pairs: list[tuple[str, str | None]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in _TAKES_VALUE:
            if i + 1 >= len(tokens):
                raise RuleSyntaxError(f"option {tok} needs a value")
            pairs.append((tok, tokens[i + 1]))
            i += 2
        elif tok[:2] in _TAKES_VALUE and len(tok) > 2 and not tok.startswith("--"):
            pairs.append((tok[:2], tok[2:]))
            i += 1
        elif tok in DIRECTIVES_FLAG:
            pairs.append((tok, None))
            i += 1
        elif tok.startswith("#"):
            raise RuleSyntaxError(
                "auditctl rejects a comment after a rule ('parameter passed without an option given')"
            )
        else:
            raise RuleSyntaxError(f"unexpected token {tok!r}")
    return pairs


RULE_STARTS = {"-w", "-W", "-a", "-A", "-d"}


def lines_of(text: str) -> list[str]:
    """Lines as auditctl reads them: split on newline only (a CR stays, e.g. in a key)."""
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def tokens_of(text: str) -> list[str]:
    """auditctl -R's split of a line: on spaces, where `\\ ` is a space inside a token and `\\\\` a
    backslash (src/auditctl.c preprocess()/postprocess(), every version this suite knows)."""
    if "\\" not in text:  # no escapes: a plain split (thousands of rules per host)
        return [token for token in text.split(" ") if token]
    tokens: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and text[i + 1 : i + 2] in (" ", "\\"):
            current.append(text[i + 1])
            i += 2
            continue
        if char == " ":
            if current:
                tokens.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    return tokens + (["".join(current)] if current else [])


@dataclass
class _Parts:
    """What the options of one rule line say, gathered in order."""

    watch: bool
    keys: list[str] = field(default_factory=list)
    perms: frozenset[str] | None = None
    path: str | None = None
    path_field: str = "path"
    arch: str | None = None
    syscalls: set[str] = field(default_factory=set)
    conditions: list[Condition] = field(default_factory=list)

    def add_perms(self, value: str) -> None:
        # Each -p/perm= is a field of its own and the kernel needs every field to match:
        # `-w X -F perm=r` lists as `-w X -p rwxa -p r` (measured, 3.0.9).
        self.perms = _perms(value) if self.perms is None else self.perms & _perms(value)

    def add_field(self, value: str) -> None:
        name, op, val = _field(value)
        if name in ("path", "dir", "perm", "key", "arch") and op != "=":
            self.conditions.append(condition(name, op, val))
        elif name in ("path", "dir"):
            if self.watch:
                raise RuleSyntaxError(f"-w with -F {name}=: the kernel rejects a second path (Invalid argument)")
            if name == "path" and len(val) > 1 and val.endswith("/"):
                raise RuleSyntaxError(f"the kernel rejects path= ending in / (Invalid argument): {val}")
            self.path, self.path_field = _normalize_path(val), name
        elif name == "perm":
            self.add_perms(val)
        elif name == "key":
            self.keys.append(val)
        elif name == "arch":
            if val not in ARCH_FAMILY:
                raise RuleSyntaxError(f"unknown arch {val!r}")
            self.arch = val
        else:
            self.conditions.append(condition(name, op, val))

    def add(self, opt: str, value: str | None) -> None:
        if value is None:
            raise RuleSyntaxError(f"{opt} cannot be combined with a rule")
        if opt == "-k":
            self.keys.append(value)
        elif opt == "-p":
            self.add_perms(value)
        elif opt == "-S":
            self.syscalls.update(s for s in value.split(",") if s)
        elif opt == "-C":
            self.conditions.append(condition("compare", "", value))
        elif opt == "-F":
            self.add_field(value)


def _directive(pairs: list[tuple[str, str | None]]) -> Directive | None:
    """The line as a directive (`-D`, `-b 8192`, `-e 2`, ...), None when it is a rule."""
    opts = [o for o, _ in pairs]
    if opts[0] in {"-k", "-p", "-F", "-S", "-C"}:
        raise RuleSyntaxError(f"{opts[0]} needs a watch or syscall rule given before it")
    if opts == ["-D", "-k"] and pairs[1][1]:  # auditctl: delete every rule carrying that key
        return Directive("-D", pairs[1][1])
    if opts[0] in DIRECTIVES_WITH_VALUE | DIRECTIVES_FLAG:
        if len(pairs) != 1:
            raise RuleSyntaxError(f"{opts[0]} must stand alone on its line")
        return Directive(*pairs[0])
    return None


def _watch_rule(path: str, parts: _Parts, deletes: bool, text: str) -> Item:
    """`-w PATH` (or `-W PATH`, a deletion). auditctl (3.0.9 to 4.2) takes -F and -C after -w into
    the watch rule; -S is dropped (`-w X -S open` lists as `-w X -p rwxa`). Measured on 3.0.9,
    docs/kernel-behaviour.md."""
    perms = ALL_PERMS if parts.perms is None else parts.perms
    keys, conditions = tuple(parts.keys), tuple(parts.conditions)
    rule = AuditRule(
        "exit", "always", _normalize_path(path), "watch", perms, parts.arch, None, keys, conditions, text=text
    )
    return Deletion(rule) if deletes else rule


def _list_rule(opt: str, value: str, parts: _Parts, text: str) -> Item:
    """`-a LIST,ACTION` (`-A`: prepended; `-d`: a deletion) with its fields."""
    filter_list, action = _list_action(value)
    all_syscalls = not parts.syscalls or "all" in parts.syscalls
    rule = AuditRule(
        filter_list,
        action,
        parts.path,
        parts.path_field,
        ALL_PERMS if parts.perms is None else parts.perms,
        parts.arch,
        None if all_syscalls else frozenset(parts.syscalls),
        tuple(parts.keys),
        tuple(parts.conditions),
        prepend=opt == "-A",
        text=text,
    )
    return Deletion(rule) if opt == "-d" else rule


@lru_cache(maxsize=1 << 15)  # items are immutable; a rules file and the listing (and a fleet's hosts) repeat lines
def parse_rule(text: str) -> Item:
    """Parse one non-comment line into a rule, deletion or directive: split it as auditctl does,
    take a directive as one, else gather the options of its one watch or list rule. A line that
    differs from one already parsed only by its one plain path is that line's rule on this path."""
    shaped = _on_shape(text)
    return shaped if shaped is not None else _parsed(text)


_SHAPE_PATH = "/\x00"  # the path a line's shape holds instead of its own (no rules line holds a NUL)


# The one path token of a line: `-w X`/`-W X`, or `-F path=X`/`-F dir=X` (tokens split on single spaces).
_PATH_TOKEN = re.compile(r"(?:^| )(?:-[wW] |-F (?:path|dir)=)([^ ]*)")


def _on_shape(text: str) -> Item | None:
    """`text`'s rule from its shape's (the line with its path replaced), when the line names one
    plain path (absolute, no trailing slash, not `/`) in its one `-w`/`-W` or `-F path=`/`dir=`
    token and nothing else could name one; None otherwise (parsed in full). At 10,000 rules a
    host has thousands of lines of a few shapes (STIG's watches, per-binary rules)."""
    named = text.count("path=") + text.count("dir=") + text.count("-w") + text.count("-W")
    if named != 1 or "\\" in text or "\0" in text:
        return None
    token = _PATH_TOKEN.search(text)
    if token is None:
        return None
    path = token.group(1)
    if len(path) < 2 or not path.startswith("/") or path.endswith("/"):
        return None
    shape = _shape(text[: token.start(1)] + _SHAPE_PATH + text[token.end(1) :])
    return None if shape is None else _on_path(shape, path, text.strip())


def _on_path(shape: AuditRule | Deletion, path: str, text: str) -> Item:
    rule = shape.rule if isinstance(shape, Deletion) else shape
    made = AuditRule(
        rule.filter,
        rule.action,
        path,
        rule.path_field,
        rule.perms,
        rule.arch,
        rule.syscalls,
        rule.keys,
        rule.conditions,
        rule.prepend,
        text,
    )
    return Deletion(made) if isinstance(shape, Deletion) else made


@lru_cache(maxsize=1024)
def _shape(text: str) -> AuditRule | Deletion | None:
    """A shape's rule (on _SHAPE_PATH), None when the shape is no rule with that path."""
    try:
        item = _parsed(text)
    except RuleSyntaxError:
        return None
    if isinstance(item, Directive):
        return None
    rule = item.rule if isinstance(item, Deletion) else item
    return item if rule.path == _SHAPE_PATH else None


def _parsed(text: str) -> Item:
    pairs = _split_options(tokens_of(text))
    if not pairs:
        raise RuleSyntaxError("empty rule")
    directive = _directive(pairs)
    if directive is not None:
        return directive
    watch = [v for o, v in pairs if o in ("-w", "-W") and v is not None]  # -w/-W always take a value
    lists = [(o, v) for o, v in pairs if o in ("-a", "-A", "-d")]
    if len(watch) + len(lists) != 1:
        raise RuleSyntaxError("a rule needs exactly one of -w, -W, -a, -A, -d")
    parts = _Parts(bool(watch))
    for opt, value in pairs:
        parts.add(opt, value)
    if watch:
        return _watch_rule(watch[0], parts, "-W" in (o for o, _ in pairs), text.strip())
    opt, value = lists[0]
    assert value is not None
    return _list_rule(opt, value, parts, text.strip())


def parse_rules(text: str, source: str) -> list[RuleLine]:
    """Parse a rules file or an `auditctl -l` listing. Bad lines carry an error, never raise."""
    lines = (parse_line(raw, source, lineno) for lineno, raw in enumerate(lines_of(text), 1))
    return [line for line in lines if line is not None]


def parse_line(raw: str, source: str, lineno: int) -> RuleLine | None:
    """One line of a rules file or listing; None for a blank line, a comment or `No rules`."""
    stripped = raw.strip(" ")
    if "\t" in raw:
        return RuleLine(source, lineno, raw.strip(), None, "auditctl splits on spaces only: a tab makes the line fail")
    if not stripped or stripped.startswith("#") or stripped == "No rules":
        return None
    try:
        return RuleLine(source, lineno, stripped, parse_rule(stripped))
    except RuleSyntaxError as exc:
        return RuleLine(source, lineno, stripped, None, str(exc))
