"""The listing rendered from the reader's lines (cisaudit/model/kernel_list.py), case by case, where
no kernel is needed; selftests/integration/test_kernel_list.py compares it with this machine's
`auditctl -l` for the collected real rule sets."""

from __future__ import annotations

import pytest

from cisaudit.model.kernel_list import parse_kernel_list

TABLES = {"x86_64": "59 execve\n257 openat", "i386": "11 execve\n295 openat"}


def _listed(*lines: str) -> str:
    rules = parse_kernel_list("\n".join([*lines, "done"]))
    assert rules is not None
    return rules.listing(TABLES, "x86_64")


@pytest.mark.parametrize(
    ("line", "listed"),
    [
        ("4 2 59,257 210:64:k", "-a always,exit -S execve,openat -F key=k"),  # no arch: the machine's table
        ("4 2 11 11:64:1073741827 210:64:k", "-a always,exit -F arch=b32 -S execve -F key=k"),
        ("4 2 999 11:64:3221225534", "-a always,exit -F arch=b64 -S 999"),  # a number no table names
        (
            "4 2 all 11:64:3221225534 9:96:1000 9:48:4294967295",
            "-a always,exit -F arch=b64 -S all -F auid>=1000 -F auid!=-1",
        ),
        ("4 2 all 106:64:10 105:64:/x", " -p wa-w /x"),  # perm before path: as auditctl prints it
        ("4 0 all 107:64:/d 106:64:15 210:64:a%01b", "-w /d -p rwxa -k a -k b"),  # never and dir alike
        ("4 2 all 105:48:/x 106:64:2", "-a always,exit -S all -F path!=/x -F perm=w"),  # not `-w /x` (auditctl's)
        ("5 2 all 12:64:1307", "-a always,exclude -F msgtype=CWD"),
        ("5 2 all 12:48:9999", "-a always,exclude -F msgtype!=9999"),
        ("4 2 59 103:64:4294967283 103:64:4294966296", "-a always,exit -S execve -F exit=-EACCES -F exit=-1000"),
        ("4 2 59 200:72:64 111:48:11", "-a always,exit -S execve -F a0&=0x40 -C uid!=euid"),
        ("4 2 59 24:64:1", "-a always,exit -S execve f24=1"),  # a field libaudit 3.0.9 has no name for
        ("6 0 - 26:64:1953653091", "-a never,filesystem -F fstype=tracefs"),
        ("1 0 - 0:64:4242", "-a never,task -F pid=4242"),
    ],
)
def test_a_rule_is_listed_as_auditctl_lists_it(line: str, listed: str) -> None:
    assert _listed(line) == listed + "\n"


def test_no_rules_list_as_auditctl_says_so() -> None:
    assert _listed() == "No rules\n"


def test_rules_that_differ_by_their_path_share_a_shape_and_keep_their_paths() -> None:
    rules = parse_kernel_list("4 2 all 105:64:/a 106:64:2\n4 2 all 105:64:/b%20c 106:64:2\n4 2 59 210:64:k\ndone")
    assert rules is not None and len(rules.rules) == 2
    assert rules.watches() == [
        ("exit", "always", "path", "/a"),
        ("exit", "always", "path", "/b c"),
        ("exit", "always", "none", ""),
    ]
    assert rules.listing(TABLES, "x86_64") == "-w /a -p w\n-w /b c -p w\n-a always,exit -S execve -F key=k\n"
