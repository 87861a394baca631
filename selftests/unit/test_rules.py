"""cisaudit.model.rules: one model for rules files and `auditctl -l` listings (facts from auditd 3.0.9)."""

import random

import pytest

from cisaudit.model.catalogue import controls
from cisaudit.model.rules import (
    ALL_PERMS,
    AuditRule,
    Condition,
    Deletion,
    Directive,
    RuleSyntaxError,
    parse_rule,
    parse_rules,
)

# (what was written, what `auditctl -l` printed for it on this machine's kernel)
LISTED_AS = {
    "cis-syscall-style": (
        "-a exit,always -F path=/run/containerd -F perm=war -k docker",
        "-w /run/containerd -p rwa -k docker",
    ),
    "cis-watch-trailing-slash": ("-w /etc/docker/ -k docker", "-w /etc/docker -p rwxa -k docker"),
    "arch-b64-key": (
        "-a always,exit -F arch=b64 -S all -F path=/usr/bin/runc -F perm=rwxa -k docker",
        "-a always,exit -F arch=b64 -S all -F path=/usr/bin/runc -F perm=rwxa -F key=docker",
    ),
    "arch-b64-two-keys": (
        "-a always,exit -F arch=b64 -S all -F path=/usr/bin/runc -F perm=rwxa -k docker -k cis",
        "-a always,exit -F arch=b64 -S all -F path=/usr/bin/runc -F perm=rwxa -F key=docker -F key=cis",
    ),
    "watch-two-keys": ("-w /tmp/i -p wa -k docker -k cis", "-w /tmp/i -p wa -k docker -k cis"),
    "never-reversed-order": ("-a exit,never -F path=/tmp/g", "-a never,exit -S all -F path=/tmp/g"),
    "prepend": ("-A always,exit -F path=/etc/group -k k4", "-a always,exit -S all -F path=/etc/group -F key=k4"),
    "conditional-auid": (
        "-a always,exit -F path=/tmp/d -F perm=wa -F auid>=1000 -F key=docker",
        "-a always,exit -S all -F path=/tmp/d -F perm=wa -F auid>=1000 -F key=docker",
    ),
    "syscall-order": (
        "-a always,exit -F arch=b64 -S openat,open -F path=/tmp/e -k docker",
        "-a always,exit -F arch=b64 -S open,openat -F path=/tmp/e -F key=docker",
    ),
    "dir-stays-dir": (
        "-a always,exit -F arch=b64 -S all -F dir=/tmp -F perm=wa -F key=docker",
        "-a always,exit -F arch=b64 -S all -F dir=/tmp -F perm=wa -F key=docker",
    ),
    "attached-F": ("-a always,exit -Fpath=/etc/docker -Fperm=rwxa -kdocker", "-w /etc/docker -p rwxa -k docker"),
    "key-field-vs-k": (
        "-a always,exit -F path=/etc/docker -F perm=rwxa -F key=docker",
        "-w /etc/docker -p rwxa -k docker",
    ),
    "perm-letter-order": ("-w /etc/docker -p axwr -k docker", "-w /etc/docker -p rwxa -k docker"),
    "cac-b32": (
        "-a always,exit -F arch=b32 -S all -F path=/usr/bin/dockerd -F perm=rwxa -F key=docker",
        "-a always,exit -F arch=b32 -S all -F path=/usr/bin/dockerd -F perm=rwxa -F key=docker",
    ),
    "arch-alias-x86_64": (
        "-a always,exit -F arch=x86_64 -S all -F path=/x -F key=docker",
        "-a always,exit -F arch=b64 -S all -F path=/x -F key=docker",
    ),
    "arch-alias-i386": (
        "-a always,exit -F arch=i386 -S all -F path=/x -F key=docker",
        "-a always,exit -F arch=b32 -S all -F path=/x -F key=docker",
    ),
}


@pytest.mark.parametrize(("written", "listed"), LISTED_AS.values(), ids=LISTED_AS.keys())
def test_written_and_listed_forms_are_one_rule(written, listed):
    assert parse_rule(written).identity == parse_rule(listed).identity


def test_prepend_flag_survives_but_is_not_identity():
    a, b = parse_rule("-A always,exit -F path=/etc/group -k k4"), parse_rule("-a always,exit -F path=/etc/group -k k4")
    assert a.prepend and not b.prepend and a.identity == b.identity


def test_never_lists_like_always_but_is_not_the_same_rule():
    never, listed = parse_rule("-a never,exit -F path=/tmp/x -F perm=rwxa"), parse_rule("-w /tmp/x -p rwxa")
    assert (never.action, listed.action) == ("never", "always")
    assert never.identity[2:] == listed.identity[2:] and never.identity != listed.identity


@pytest.mark.parametrize("control", controls(), ids=lambda c: c.id)
@pytest.mark.parametrize("key", ["docker", "cis_docker"])
def test_benchmark_literal_rule(control, key):
    rule = parse_rule(control.rule_text(control.path, key))
    assert isinstance(rule, AuditRule)
    assert (rule.filter, rule.action, rule.path, rule.keys) == ("exit", "always", control.path, (key,))
    assert rule.perms == frozenset(control.required_perms)
    assert (rule.syscalls, rule.conditions, rule.arch) == (None, (), None)  # every syscall, no condition


FIELDS = {
    "watch-no-p": ("-w /etc/docker -k docker", dict(path="/etc/docker", path_field="watch", perms=ALL_PERMS)),
    "watch-p-wa": ("-w /etc/docker -p wa -k docker", dict(perms=frozenset("wa"))),
    "watch-no-key": ("-w /etc/docker", dict(keys=())),
    "root-slash": ("-w / -p wa", dict(path="/")),
    "many-slashes": ("-w /etc/docker/// -k docker", dict(path="/etc/docker")),
    "dir-field": ("-a always,exit -F dir=/etc/docker -F perm=wa", dict(path_field="dir", path="/etc/docker")),
    "no-perm-means-all": ("-a always,exit -F arch=b64 -S all -F path=/x", dict(perms=ALL_PERMS, arch="b64")),
    "syscalls": (
        "-a always,exit -F arch=b64 -S open -S openat,creat -F path=/x",
        dict(syscalls=frozenset({"open", "openat", "creat"})),
    ),
    "S-all-is-none": ("-a always,exit -F arch=b64 -S all -F path=/x", dict(syscalls=None)),
    "auid-ge": ("-a always,exit -F path=/x -F auid>=1000", dict(conditions=(Condition("auid", ">=", "1000"),))),
    "auid-ne-unset": ("-a always,exit -F path=/x -F auid!=unset", dict(conditions=(Condition("auid", "!=", "unset"),))),
    "path-ne-is-condition": (
        "-a always,exit -F path!=/x",
        dict(path=None, conditions=(Condition("path", "!=", "/x"),)),
    ),
    "key-field": ("-a always,exit -F path=/x -F key=docker -k cis", dict(keys=("docker", "cis"))),
    "never": ("-a never,exit -F path=/x", dict(action="never", filter="exit")),
    "task-list": ("-a task,always", dict(filter="task", path=None)),
    "prepend": ("-A exit,always -F path=/x", dict(prepend=True)),
}


@pytest.mark.parametrize(("text", "expected"), FIELDS.values(), ids=FIELDS.keys())
def test_fields(text, expected):
    rule = parse_rule(text)
    assert {k: getattr(rule, k) for k in expected} == expected


DIRECTIVES = {
    "backlog": ("-b 8192", Directive("-b", "8192")),
    "failure": ("-f 1", Directive("-f", "1")),
    "immutable": ("-e 2", Directive("-e", "2")),
    "enable": ("-e 1", Directive("-e", "1")),
    "continue": ("-c", Directive("-c")),
    "ignore": ("-i", Directive("-i")),
    "rate": ("-r 100", Directive("-r", "100")),
    "backlog-wait": ("--backlog_wait_time 60000", Directive("--backlog_wait_time", "60000")),
    "loginuid": ("--loginuid-immutable", Directive("--loginuid-immutable")),
    "delete-all": ("-D", Directive("-D")),
    "attached": ("-b8192", Directive("-b", "8192")),
}


@pytest.mark.parametrize(("text", "expected"), DIRECTIVES.values(), ids=DIRECTIVES.keys())
def test_directives(text, expected):
    assert parse_rule(text) == expected


@pytest.mark.parametrize(
    ("text", "same_as"),
    [
        ("-W /etc/docker -k docker", "-w /etc/docker -k docker"),
        ("-W /etc/docker/ -p rwxa -k docker", "-w /etc/docker -k docker"),
        ("-d always,exit -F path=/x -F perm=wa -k docker", "-w /x -p wa -k docker"),
        ("-d exit,never -F arch=b64 -S all -F path=/x", "-a never,exit -F arch=b64 -F path=/x"),
    ],
    ids=["W", "W-slash", "d-watch-twin", "d-never"],
)
def test_deletions(text, same_as):
    item = parse_rule(text)
    assert isinstance(item, Deletion) and item.rule.identity == parse_rule(same_as).identity


GARBAGE = {
    "words": ("lorem ipsum dolor", "unexpected token"),
    "binary": ("\x00\x7f\xff\xfe\x1b[0m", "unexpected token"),
    "w-without-path": ("-w", "needs a value"),
    "k-without-value": ("-w /etc/docker -k", "needs a value"),
    "relative-watch": ("-w etc/docker -k docker", "absolute"),
    "relative-path-field": ("-a always,exit -F path=etc/docker", "absolute"),
    "bad-perms": ("-w /etc/docker -p rwz -k docker", "rwxa"),
    "empty-perm-field": ("-a always,exit -F path=/x -F perm=", "rwxa"),
    "unknown-arch": ("-a always,exit -F arch=b65 -S all -F path=/x", "unknown arch"),
    "a-without-action": ("-a exit -F path=/x", "list,action"),
    "a-three-parts": ("-a always,exit,never -F path=/x", "list,action"),
    "a-bad-action": ("-a exit,sometimes -F path=/x", "unknown list or action"),
    "a-two-actions": ("-a always,never -F path=/x", "unknown list or action"),
    "trailing-comment": ("-w /etc/docker -k docker # CIS 1.1.6", "comment"),
    "trailing-comment-glued": ("-w /etc/docker -k docker #1.1.6", "comment"),
    "watch-with-second-path": ("-w /etc/docker -F path=/etc/x -k docker", "second path"),
    "watch-with-dir": ("-w /etc/docker -F dir=/etc/x", "second path"),
    "two-watches": ("-w /a -w /b", "exactly one"),
    "watch-and-a": ("-a always,exit -w /etc/docker", "exactly one"),
    "field-only": ("-F path=/x -k docker", "needs a watch or syscall rule"),
    "key-only": ("-k docker", "needs a watch or syscall rule"),
    # measured on auditctl 3.0.9: options before -w fail, tabs fail, path= may not end in /
    "key-before-watch": ("-k docker -w /etc/docker", "needs a watch or syscall rule"),
    "perm-before-watch": ("-p wa -w /etc/docker -k docker", "needs a watch or syscall rule"),
    "path-trailing-slash": ("-a always,exit -F path=/etc/docker/ -F perm=wa -k docker", "Invalid argument"),
    "F-no-operator": ("-a always,exit -F path", "name, operator"),
    "directive-with-extra": ("-b 8192 -f 1", "stand alone"),
    "e-with-rule": ("-e 2 -w /etc/docker", "stand alone"),
    "long-option-unknown": ("--frobnicate 1", "unexpected token"),
}


@pytest.mark.parametrize(("text", "message"), GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_is_rejected_with_a_reason(text, message):
    with pytest.raises(RuleSyntaxError, match=message):
        parse_rule(text)
    (line,) = parse_rules(text, "x.rules")
    assert line.item is None and message in line.error and line.where == "x.rules:1"


def test_parse_rules_skips_comments_blanks_and_no_rules():
    text = (
        "#-w /etc/docker -k docker\n\n   # indented comment\n#\nNo rules\n   \n"
        "-w /etc/docker -k docker\n  -w /etc/default/docker -k docker  \nnonsense here\n"
    )
    lines = parse_rules(text, "/etc/audit/rules.d/docker.rules")
    assert [(l.lineno, l.text, l.error is None) for l in lines] == [
        (7, "-w /etc/docker -k docker", True),
        (8, "-w /etc/default/docker -k docker", True),
        (9, "nonsense here", False),
    ]
    assert lines[2].where == "/etc/audit/rules.d/docker.rules:9"


def test_text_keeps_what_was_written():
    assert parse_rule("  -w /etc/docker/ -k docker ").text == "-w /etc/docker/ -k docker"


@pytest.mark.parametrize("seed", range(5))
def test_parse_rules_never_raises_on_noise(seed):
    rnd = random.Random(seed)
    alphabet = [
        "-w",
        "-W",
        "-a",
        "-A",
        "-d",
        "-F",
        "-S",
        "-p",
        "-k",
        "-e",
        "-D",
        "path=",
        "/",
        "#",
        "always,exit",
        "never",
        "perm=",
        "arch=b64",
        "=",
        ">=",
        ",",
        "\x00",
        "\xff",
        " ",
        "\t",
        "-",
        "x",
    ]
    text = "\n".join("".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 12))) for _ in range(200))
    for line in parse_rules(text, "noise"):
        assert (line.item is None) != (line.error is None)


@pytest.mark.parametrize(
    "text",
    [
        "-w /etc/docker -k docker -D",
        "-w /etc/docker -k docker -c",
        "-W /x -i",
        "-a always,exit -F path=/x --loginuid-immutable",
        "-w /x -l",
    ],
    ids=["D", "c", "W-i", "loginuid", "l"],
)
def test_flag_after_rule_is_an_error_line_not_a_crash(text):
    (line,) = parse_rules(text, "x.rules")
    assert line.item is None and line.error


@pytest.mark.parametrize(
    "text",
    ["-w\t/etc/docker\t-k\tdocker", "\t-w /etc/docker -k docker", "\t# comment", "\t"],
    ids=["tab-separated", "tab-indented", "tab-comment", "tab-only"],
)
def test_tab_makes_the_line_fail(text):
    """Measured: auditctl -R fails on any line holding a tab (it splits on spaces only)."""
    (line,) = parse_rules(text + "\n", "f")
    assert line.item is None and "tab" in line.error


def test_crlf_keeps_the_cr_in_the_key():
    """Measured: a CRLF file loads `-k docker\r`, which is not the key docker."""
    (line,) = parse_rules("-w /etc/docker -k docker\r\n", "f")
    assert line.item.keys == ("docker\r",)


# What auditctl 3.0.9 loaded from a rules file (`auditctl -R`), and what `auditctl -l` then printed:
# docs/kernel-behaviour.md, "Loader versions"; selftests/integration/test_loader_versions.py.
WATCH_FORMS = {
    "F-key": ("-w /x -p wa -F key=k1", "-w /x -p wa -k k1"),
    "F-condition": ("-w /x -F uid=0 -k k2", "-a always,exit -S all -F path=/x -F perm=rwxa -F uid=0 -F key=k2"),
    "S-dropped": ("-w /x -S open -k k3", "-w /x -p rwxa -k k3"),
    "C-compare": ("-w /x -C uid!=euid -k k6", "-a always,exit -S all -F path=/x -F perm=rwxa -C uid!=euid -F key=k6"),
    "F-perm-intersects": ("-w /x -F perm=r -k k9", "-w /x -p rwxa -p r -k k9"),
}


@pytest.mark.parametrize(("written", "listed"), WATCH_FORMS.values(), ids=WATCH_FORMS.keys())
def test_watch_with_fields_is_the_rule_the_kernel_lists(written, listed):
    rule, shown = parse_rule(written), parse_rule(listed)
    assert isinstance(rule, AuditRule) and isinstance(shown, AuditRule)
    assert rule.identity == shown.identity


def test_watch_with_F_key_carries_the_key():
    rule = parse_rule("-w /etc/docker -F key=docker")
    assert isinstance(rule, AuditRule) and rule.keys == ("docker",) and rule.path_field == "watch"


def test_escaped_space_and_backslash_stay_in_the_token():
    rule = parse_rule(r"-w /tmp/a\ b -k k\\")
    assert isinstance(rule, AuditRule) and rule.path == "/tmp/a b" and rule.keys == ("k\\",)


@pytest.mark.parametrize(
    ("written", "listed"),
    [
        (
            "-a always,exit -F arch=b64 -C euid!=uid -F auid!=unset -S execve -k user_emulation",
            "-a always,exit -F arch=b64 -S execve -C uid!=euid -F auid!=-1 -F key=user_emulation",
        ),
        (
            "-a always,exit -F arch=b64 -S setuid -F a0=0 -F exe=/usr/bin/su -k su",
            "-a always,exit -F arch=b64 -S setuid -F a0=0x0 -F exe=/usr/bin/su -F key=su",
        ),
        (
            "-a always,exit -F arch=b64 -S openat -F a2&0100 -F exit=-EACCES -F auid>=1000 -k create",
            "-a always,exit -F arch=b64 -S openat -F a2&0x40 -F exit=-EACCES -F auid>=1000 -F key=create",
        ),
    ],
    ids=["compare-and-unset", "hex-zero", "octal-flag"],
)
def test_a_rule_as_written_is_the_rule_auditctl_lists(written: str, listed: str) -> None:
    """CIS Linux and upstream rules as `auditctl -l` prints them back (measured, auditctl 3.0.9): the
    same kernel rule, so load-health must not call the written one missing."""
    assert parse_rule(written).identity == parse_rule(listed).identity
    assert parse_rule(written).identity != parse_rule(listed.replace("-F arch=b64", "-F arch=b32")).identity
