"""cisaudit.model.loader: loader mode from the auditd unit, augenrules' merge, `auditctl -R` replay."""

import pytest

from cisaudit.model.boot import BootModel
from cisaudit.model.catalogue import controls
from cisaudit.model.kernel import WatchKind
from cisaudit.model.loader import (
    augenrules_awk,
    augenrules_files,
    boot_adder,
    listing_shortfall,
    live_state,
    loader_mode,
    persisted_lines,
    replay,
)
from cisaudit.model.plan import with_rules
from cisaudit.model.rules import AuditRule, parse_rules
from cisaudit.model.snapshot import PathInfo, Snapshot
from cisaudit.model.userspace import Behaviour, userspace
from selftests.unit.test_evaluate import ABSENT, expected, good_listing, good_rules, host, verdicts

DEBIAN_UNIT = """# /lib/systemd/system/auditd.service
[Service]
Type=forking
ExecStart=/sbin/auditd
ExecStartPost=-/sbin/augenrules --load
#ExecStartPost=-/sbin/auditctl -R /etc/audit/audit.rules
"""
DROPIN_AUDITCTL = (
    "\n# /etc/systemd/system/auditd.service.d/override.conf\n[Service]\nExecStartPost=\n"
    "ExecStartPost=-/sbin/auditctl -R /etc/audit/audit.rules\n"
)

MODES = {
    "debian-augenrules": (DEBIAN_UNIT, [], "augenrules"),
    "dropin-resets-to-auditctl": (DEBIAN_UNIT + DROPIN_AUDITCTL, [], "auditctl"),
    "dropin-resets-to-nothing": (DEBIAN_UNIT + "[Service]\nExecStartPost=\n", [("a.rules", "")], "none"),
    "dropin-adds-second-command": (DEBIAN_UNIT + "[Service]\nExecStartPost=/bin/true\n", [], "augenrules"),
    "spaces-around-equals": ("[Service]\nExecStartPost = -/usr/sbin/augenrules --load\n", [], "augenrules"),
    "commented-only": ("[Service]\n#ExecStartPost=-/sbin/augenrules --load\nExecStart=/sbin/auditd\n", [], "none"),
    "augenrules-without-load": ("[Service]\nExecStartPost=-/sbin/augenrules\n", [], "none"),
    "no-unit-with-rules-d": ("", [("/etc/audit/rules.d/a.rules", "-w /x")], "augenrules"),
    "no-unit-no-rules-d": ("  \n", [], "auditctl"),
}


@pytest.mark.parametrize(("unit", "rules_d", "mode"), MODES.values(), ids=MODES.keys())
def test_loader_mode(unit, rules_d, mode):
    assert loader_mode(Snapshot(auditd_unit=unit, rules_d=rules_d)).loader == mode


def merged(*files):
    return [line for _, _, line in augenrules_awk(files).lines]


def test_augenrules_moves_control_lines():
    files = [  # in `ls -1v` order: 2 < 10 < 99
        ("/etc/audit/rules.d/2-x.rules", "-D\n-b 320\n-w /a -k k\n"),
        ("/etc/audit/rules.d/10-base.rules", "## base\n\n-f 2\n-e 2\n-w /b -k k\n-b 8192\n"),
        ("/etc/audit/rules.d/99-finalize.rules", "-w /c -k k\n  -D\n-f 1\n"),
    ]
    assert merged(*files) == ["  -D", "-b 8192", "-f 1", "-w /a -k k", "-w /b -k k", "-w /c -k k", "-e 2"]


def test_e2_in_a_middle_file_goes_last_and_only_the_last_e_survives():
    files = [("1.rules", "-e 1\n-w /a\n"), ("5.rules", "-e 2\n-w /b\n"), ("9.rules", "-w /c\n")]
    assert merged(*files) == ["-w /a", "-w /b", "-w /c", "-e 2"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", ["-w /a"]),
        ("# c", ["-w /a"]),
        ("   # indented", ["-w /a"]),
        ("-D  ", ["-D  ", "-w /a"]),
        ("\t-D", ["\t-D", "-w /a"]),
        ("-D -k docker", ["-w /a", "-D -k docker"]),
        ("   ", ["-w /a", "   "]),
        ("--backlog_wait_time 60000", ["-w /a", "--backlog_wait_time 60000"]),
        ("--loginuid-immutable", ["-w /a", "--loginuid-immutable"]),
        ("  -b 64", ["  -b 64", "-w /a"]),
    ],
    ids=[
        "empty",
        "comment",
        "indented-comment",
        "D-trailing-space",
        "D-tab-indented",
        "D-with-key-stays",
        "spaces-only-kept",
        "backlog-wait-stays",
        "loginuid-stays",
        "indented-b",
    ],
)
def test_augenrules_line_classes(line, expected):
    assert merged(("a.rules", f"-w /a\n{line}\n")) == expected


@pytest.mark.parametrize(
    ("line", "hoisted"),
    [
        ("-D", True),
        ("-D  ", False),
        ("  -D", False),
        ("-b 64", True),
        ("  -b 64", False),
        ("-e 2", True),
        ("  # c", False),
    ],
)
def test_mawk_reads_blank_as_the_letter_s(line, hoisted):
    """Debian's mawk has no `\\s`: augenrules' `^\\s*-D\\s*$` matches only `-D` itself."""
    got = [text for _, _, text in augenrules_awk([("a.rules", f"-w /a\n{line}\n")], mawk=True).lines]
    assert (got[0] != "-w /a" or line.startswith("-e") and got[-1] == line) == hoisted or line == "  # c"


def test_file_without_final_newline_joins_the_next_files_first_line():
    """augenrules runs `cat` over the files: the two rules become one line, which fails to load."""
    merged_lines = augenrules_awk([("/r/10-a.rules", "-w /a -k k"), ("/r/20-b.rules", "-w /b -k k\n")]).lines
    assert merged_lines == [("/r/10-a.rules", 1, "-w /a -k k-w /b -k k")]
    result = replay(parse_rules(merged_lines[0][2], "x"), adder())
    assert result.rules == [] and result.stopped_at is not None


def test_replay_of_thousands_of_rules_is_linear():
    text = "\n".join(f"-w /etc/f{i} -p wa -k k" for i in range(20000))
    assert len(run(text).rules) == 20000


def test_persisted_lines_keep_their_own_file_and_line():
    snap = Snapshot(
        auditd_unit=DEBIAN_UNIT,
        rules_d=[
            ("/etc/audit/rules.d/10-docker.rules", "# docker\n\n-w /etc/docker -k docker\n-e 2\n"),
            ("/etc/audit/rules.d/20-x.rules", "-D\nbogus\n"),
        ],
    )
    lines = persisted_lines(snap, loader_mode(snap))
    assert [(l.where, l.text, l.error is None) for l in lines] == [
        ("/etc/audit/rules.d/20-x.rules:1", "-D", True),
        ("/etc/audit/rules.d/10-docker.rules:3", "-w /etc/docker -k docker", True),
        ("/etc/audit/rules.d/20-x.rules:2", "bogus", False),
        ("/etc/audit/rules.d/10-docker.rules:4", "-e 2", True),
    ]


def test_persisted_lines_auditctl_mode_reads_audit_rules():
    snap = Snapshot(
        auditd_unit=DEBIAN_UNIT + DROPIN_AUDITCTL,
        rules_d=[("a.rules", "-w /ignored")],
        audit_rules="-D\n-w /etc/docker -k docker\n",
    )
    assert [l.where for l in persisted_lines(snap, loader_mode(snap))] == [
        "/etc/audit/audit.rules:1",
        "/etc/audit/audit.rules:2",
    ]


EXISTS = {"/", "/etc", "/etc/docker", "/tmp", "/run", "/run/containerd", "/nonexist-parent-ok"}


def stat(path):
    parent_missing = path.startswith("/nonexist/")
    return PathInfo(path, "dir" if path in EXISTS else "absent", "" if parent_missing else path)


class _Stat(dict):
    """Snapshot.paths that answers every path through a function."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def get(self, path, default=None):
        return self.fn(path)


def adder(fn=stat):
    snap = Snapshot(arch="x86_64")
    snap.paths = _Stat(fn)
    return boot_adder(snap, BootModel(snap, ""))


def run(text):
    return replay(parse_rules(text, "t.rules"), adder())


def texts(result):
    return [l.line.text for l in result.rules]


LOADS = {
    "plain": ("-w /etc/docker -k docker\n-w /tmp/x -k docker", ["-w /etc/docker -k docker", "-w /tmp/x -k docker"]),
    "missing-file-existing-parent": ("-w /etc/nope -k docker", ["-w /etc/nope -k docker"]),
    "prepend-goes-first": (
        "-w /a -k k\n-A always,exit -F path=/etc/group -k k4",
        ["-A always,exit -F path=/etc/group -k k4", "-w /a -k k"],
    ),
    "D-clears": ("-w /a -k k\n-D\n-w /b -k k", ["-w /b -k k"]),
    "W-deletes": ("-w /a -k k\n-w /b -k k\n-W /a -k k", ["-w /b -k k"]),
    "d-deletes-watch-twin": ("-w /a -p wa -k k\n-d exit,always -F path=/a -F perm=wa -k k", []),
    "same-path-other-key-is-new": ("-w /a -k k\n-w /a -k docker", ["-w /a -k k", "-w /a -k docker"]),
    "same-path-other-perms-is-new": (
        "-w /run/containerd -k docker\n-a exit,always -F path=/run/containerd -F perm=war -k docker",
        ["-w /run/containerd -k docker", "-a exit,always -F path=/run/containerd -F perm=war -k docker"],
    ),
    # Issue 21.6: on a directory, `-w DIR` is a dir= rule and `-F path=DIR` another rule: both load
    # (measured, auditctl 3.0.9), and `-W DIR` deletes the dir= one only.
    "tree-watch-beside-path-rule": (
        "-a exit,always -F path=/run/containerd -F perm=war -k docker\n-w /run/containerd -p rwa -k docker",
        ["-a exit,always -F path=/run/containerd -F perm=war -k docker", "-w /run/containerd -p rwa -k docker"],
    ),
    "W-deletes-the-tree-watch-only": (
        "-a exit,always -F path=/run/containerd -F perm=war -k docker\n-w /run/containerd -p rwa -k docker\n"
        "-W /run/containerd -p rwa -k docker",
        ["-a exit,always -F path=/run/containerd -F perm=war -k docker"],
    ),
    "directives-load": ("-b 8192\n-f 1\n-r 100\n--backlog_wait_time 60000\n--loginuid-immutable\n-w /a", ["-w /a"]),
    "e2-last": ("-w /a\n-e 2", ["-w /a"]),
}


@pytest.mark.parametrize(("text", "rules"), LOADS.values(), ids=LOADS.keys())
def test_replay_loads(text, rules):
    result = run(text)
    assert (texts(result), result.failures, result.stopped_at) == (rules, [], None)


STOPS = {
    "duplicate": ("-w /a -k k\n-w /a/ -p rwxa -k k\n-w /b -k k", 2, "Rule exists"),
    "benchmark-twin-duplicate": (  # /a is no directory: `-w /a` is a path= rule (measured, auditctl 3.0.9)
        "-w /a -p rwa -k docker\n-a exit,always -F path=/a -F perm=war -k docker\n-w /b",
        2,
        "Rule exists",
    ),
    "dir-twin-duplicate": (  # `-w DIR` on a directory is a dir= rule
        "-w /run/containerd -p rwa -k docker\n-a exit,always -F dir=/run/containerd -F perm=war -k docker\n-w /b",
        2,
        "Rule exists",
    ),
    "dir-missing": (
        "-w /a\n-a always,exit -F arch=b64 -S all -F dir=/var/lib/nope -F perm=wa -k k\n-w /b",
        2,
        "No such file",
    ),
    "parent-missing": ("-w /a\n-w /nonexist/dir/file -k k\n-w /b", 2, "parent /nonexist/dir does not exist"),
    "path-parent-missing": ("-a always,exit -F path=/nonexist/dir/f -F perm=wa\n-w /b", 1, "does not exist"),
    "trailing-comment": ("-w /a\n-w /etc/docker -k docker # 1.1.6\n-w /b", 2, "comment"),
    "garbage": ("-w /a\n\x00\x01 junk\n-w /b", 2, "unexpected token"),
    "delete-missing": ("-W /zzz\n-w /b", 1, "no such rule"),
    "immutable-midway": ("-w /a\n-e 2\n-w /b\n-w /c", 3, "immutable"),
}


@pytest.mark.parametrize(("text", "stop_line", "error"), STOPS.values(), ids=STOPS.keys())
def test_replay_stops_at_first_error(text, stop_line, error):
    result = run(text)
    line, err = result.stopped_at
    assert line.lineno == stop_line and error in err
    assert result.failures == [result.stopped_at]
    assert [l.text for l in result.never_loaded] == text.split("\n")[-1:]
    assert text.split("\n")[-1] not in texts(result)


@pytest.mark.parametrize("flag", ["-c", "-i"])
def test_continue_flag_keeps_loading(flag):
    result = run(f"{flag}\n-w /a\n-w /a\n-a always,exit -F dir=/var/lib/nope\nbogus\n-w /b")
    assert texts(result) == ["-w /a", "-w /b"] and result.stopped_at is None
    assert [l.lineno for l, _ in result.failures] == [3, 4, 5]


def test_continue_only_after_its_line():
    result = run("-w /a\n-w /a\n-c\n-w /b")
    assert result.stopped_at[0].lineno == 2 and [l.text for l in result.never_loaded] == ["-w /b"]


def test_never_loaded_lists_only_rules():
    result = run("bad line\n-b 8192\n-w /a\n-D\n-W /a\n-w /b")
    assert [l.text for l in result.never_loaded] == ["-w /a", "-w /b"]


def test_unstatted_dir_is_not_assumed_missing():
    assert texts(replay(parse_rules("-a always,exit -F dir=/odd", "t"), adder(lambda p: None))) == [
        "-a always,exit -F dir=/odd"
    ]


def live(listing, persisted=""):
    state, bad = live_state(Snapshot(listing_text=listing), parse_rules(persisted, "t.rules"))
    return state.exit, bad


def test_live_rules_believe_a_persisted_never_watch():
    rules, bad = live(
        "-w /tmp/x -p rwxa\n-w /etc/docker -p rwxa -k docker",
        "-a never,exit -F path=/tmp/x -F perm=rwxa\n-w /etc/docker -k docker",
    )
    assert [r.actions for r in rules] == [{"never"}, {"always"}] and bad == []
    assert "persisted `-a never,exit -F path=/tmp/x -F perm=rwxa` says which" in rules[0].note


def test_live_rules_stay_ambiguous_when_both_twins_persisted():
    rules, _ = live("-w /tmp/x -p rwxa", "-a never,exit -F path=/tmp/x -F perm=rwxa\n-w /tmp/x -p rwxa\n")
    assert rules[0].actions == {"always", "never"}


def test_live_rules_unpersisted_watch_may_be_either_kind_and_action():
    rules, _ = live("-w /tmp/x -p rwxa")
    assert rules[0].actions == {"always", "never"} and rules[0].kinds == {WatchKind.INODE, WatchKind.TREE}
    assert "no persisted rule says which" in rules[0].note


def test_live_rules_arch_form_is_unambiguous():
    rules, _ = live("-a always,exit -F arch=b64 -S all -F dir=/tmp/x -F perm=rwa -F key=k")
    assert rules[0].actions == {"always"} and rules[0].kinds == {WatchKind.TREE}


def test_live_rules_report_unreadable_lines_with_position():
    rules, bad = live("No rules\n-a never,exit -S all -F path=/tmp/g\n-w /x -p q\n-b 8192\n")
    assert [r.actions for r in rules] == [{"never"}]
    assert [(l.where, l.text) for l in bad] == [("auditctl -l:3", "-w /x -p q")]


def test_the_kernels_own_list_settles_what_the_listing_cannot():
    snap = Snapshot(
        listing_text="-w /tmp/x -p rwxa -k docker\n-w /tmp/d -p rwxa -k docker",
        kernel_rules=[("exit", "never", "path", "/tmp/x"), ("exit", "always", "dir", "/tmp/d")],
    )
    state, _ = live_state(snap, [])
    assert [(r.actions, r.kinds) for r in state.exit] == [
        ({"never"}, {WatchKind.INODE}),
        ({"always"}, {WatchKind.TREE}),
    ]
    assert "netlink" in state.exit[0].note


@pytest.mark.parametrize(
    "kernel",
    [
        None,
        [("exit", "always", "dir", "/tmp/x")],
        [("exit", "always", "dir", "/tmp/other"), ("exit", "always", "dir", "/tmp/d")],
    ],
    ids=["unread", "count-differs", "path-differs"],
)
def test_a_kernel_list_that_does_not_pair_up_is_not_believed(kernel):
    snap = Snapshot(listing_text="-w /tmp/x -p rwxa -k docker\n-w /tmp/d -p rwxa -k docker", kernel_rules=kernel)
    state, _ = live_state(snap, [])
    assert all(r.actions == {"always", "never"} for r in state.exit)


# -- loader versions (cisaudit/model/userspace.py) -------------------------------------------
D = "/etc/audit/rules.d"
DOCKER = "-w /etc/docker -k docker\n"


def versioned(version, rules_d, **over):
    snap = Snapshot(auditd_unit=DEBIAN_UNIT, audit_version=f"auditctl version {version}", rules_d=rules_d, **over)
    return [line for line in persisted_lines(snap, loader_mode(snap)) if line.item is not None or line.error]


@pytest.mark.parametrize(("version", "loads"), [("3.0.9", False), ("4.0.2", False), ("4.1.4", False), ("4.2.1", True)])
def test_space_in_a_file_name_loads_only_from_4_2(version, loads):
    """augenrules before 4.2 word-splits `ls -1v`: `50 docker.rules` cats rules.d/50 and rules.d/docker.rules."""
    lines = versioned(version, [(f"{D}/50 docker.rules", DOCKER)])
    assert [l.text for l in lines] == (["-w /etc/docker -k docker"] if loads else [])


def test_a_word_of_a_split_name_that_is_a_file_is_loaded_instead():
    snap_words = {f"{D}/docker.rules": "-w /etc/other -k docker\n"}
    lines = versioned(
        "3.0.9", [(f"{D}/50 docker.rules", DOCKER), (f"{D}/docker.rules", snap_words[f"{D}/docker.rules"])]
    )
    assert [l.text for l in lines] == ["-w /etc/other -k docker", "-w /etc/other -k docker"]


def test_directory_named_rules_is_skipped_and_noted():
    snap = Snapshot(
        auditd_unit=DEBIAN_UNIT,
        audit_version="auditctl version 3.0.9",
        rules_d=[(f"{D}/60.rules", DOCKER)],
        rules_d_special=[f"{D}/50.rules"],
    )
    files, notes = augenrules_files(snap, userspace(snap.audit_version))
    assert files == [(f"{D}/60.rules", DOCKER)]
    assert notes == [f"{D}/50.rules is not a regular file: augenrules' cat fails on it and the merge goes on"]


@pytest.mark.parametrize(("version", "key"), [("3.0.9", "docker\r"), ("3.1.2", "docker"), ("4.0.2", "docker")])
def test_carriage_return_stays_in_the_key_before_3_1_1(version, key):
    (line,) = versioned(version, [(f"{D}/60.rules", "-w /etc/docker -k docker\r\n")])
    assert line.item.keys == (key,)


@pytest.mark.parametrize(
    ("version", "stat", "refused"),
    [
        ("3.0.9", "666 0", "is world writable"),
        ("3.0.9", "640 1000", "isn't owned by root"),
        ("3.1.2", "666 1000", None),
        ("4.1.3", "666 0", None),
        ("4.1.4", "666 0", "is world writable"),
        ("4.1.4", "640 1000", None),
    ],
)
def test_auditctl_R_file_checks_follow_the_version(version, stat, refused):
    snap = Snapshot(
        auditd_unit=DEBIAN_UNIT + DROPIN_AUDITCTL,
        audit_version=f"auditctl version {version}",
        audit_rules=DOCKER,
        audit_rules_stat=stat,
    )
    result = replay(persisted_lines(snap, loader_mode(snap)), adder())
    if refused is None:
        assert result.stopped_at is None and len(result.rules) == 1
    else:
        assert result.stopped_at and refused in result.stopped_at[1] and not result.rules
        assert [l.text for l in result.never_loaded] == ["-w /etc/docker -k docker"]


def test_augenrules_rewrites_a_changed_audit_rules_0640():
    """A world-writable audit.rules is rewritten (chmod 0640) when the merge differs; loaded as is when not."""
    files = [(f"{D}/60.rules", DOCKER)]
    same = augenrules_awk(files).output
    for audit_rules, refused in ((same, True), ("old\n", False)):
        snap = Snapshot(
            auditd_unit=DEBIAN_UNIT,
            audit_version="auditctl version 4.1.4",
            rules_d=files,
            audit_rules=audit_rules,
            audit_rules_stat="666 0",
        )
        assert (persisted_lines(snap, loader_mode(snap))[0].item is None) is refused


@pytest.mark.parametrize(
    ("text", "judged", "note"),
    [
        ("auditctl version 3.0.9", (3, 0, 9), ""),
        ("auditctl version 4.2.1", (4, 2, 1), ""),
        ("auditctl version 2.8.5", (3, 0, 9), "older than any version this suite knows; judged as 3.0.9"),
        ("auditctl version 5.0", (4, 2, 2), "newer than any version this suite knows; judged as 4.2.2"),
        ("sh: auditctl: not found", (3, 0, 9), "auditctl -v printed no version; judged as 3.0.9"),
    ],
)
def test_unknown_versions_are_judged_by_the_nearest_known_and_say_so(text, judged, note):
    us = userspace(text)
    assert us.judged_as == judged and us.note.startswith(note)
    assert note in us.evidence()[0]


# Lines of the upstream scripts (init.d/augenrules v3.0.9 and v4.2.1) that the model reads.
SCRIPT_309 = 'for rules in $(/bin/ls -1v ${SourceRulesDir} | grep "\\.rules$") ; do\nawk \'minus_e = "";\''
SCRIPT_421 = 'done | sort -zV | xargs -0r cat -- | awk \'\n        sub(/\\r$/, "");\n        minus_e = "";\''


@pytest.mark.parametrize(
    ("version", "script", "splits", "strips"),
    [
        ("3.0.9", SCRIPT_309, True, False),
        ("3.0.9", SCRIPT_421, False, True),  # a patched augenrules: its text wins over the row
        ("4.2.1", SCRIPT_309, True, False),
        ("4.2.1", None, False, True),
        ("4.2.1", "#!/bin/sh\n# unrecognisable\n", False, True),
    ],
)
def test_the_hosts_own_augenrules_overrides_the_version_row(version, script, splits, strips):
    us = userspace(f"auditctl version {version}", script)
    assert us.does(Behaviour.WORD_SPLITS_NAMES) is splits and us.does(Behaviour.STRIPS_CR) is strips


def test_a_file_the_remediation_plan_adds_loads_under_every_version():
    """plan.with_rules adds a rules.d file the probe never listed: word-splitting works from rules_d itself."""
    for version in ("3.0.9", "4.2.1"):
        snap = Snapshot(auditd_unit=DEBIAN_UNIT, audit_version=f"auditctl version {version}")
        snap = with_rules(snap, "augenrules", f"{D}/60-cis-docker.rules", ["-w /etc/docker -k docker"])
        assert [l.text for l in persisted_lines(snap, loader_mode(snap))] == ["-w /etc/docker -k docker"]


def test_delete_by_key_under_continue_deletes_the_rules_with_that_key() -> None:
    """Issue 21.11: `-D -k KEY` is auditctl's "delete every rule with this key", not a bad line that
    -c skips: after it, the Docker rules are gone for the boot (a false persisted PASS before)."""
    result = run(
        "-c\n-w /etc/docker -k docker\n-w /etc/site -k site\n"
        "-a always,exit -F arch=b64 -S chmod -k docker -k perm_mod\n-D -k docker\n-w /tmp/x -k docker"
    )
    assert texts(result) == ["-w /etc/site -k site", "-w /tmp/x -k docker"]
    assert not result.failures


# -- a listing auditctl cut short (issue 26.1: thousand-rule hosts) ---------------------------
ENOBUFS = "Error receiving audit netlink packet (No buffer space available)"


def _whole_kernel_list(listing):
    rules = [l.item for l in parse_rules(listing, "auditctl -l") if isinstance(l.item, AuditRule)]
    return [("exit", "always", "dir", r.path or "") for r in rules]


def test_a_listing_shorter_than_the_kernels_own_list_is_an_error_not_a_verdict():
    """auditctl -l ignores a failed receive and exits 0 with what it got (src/auditctl.c get_reply):
    measured on a test VM with 5,000 rules, it printed ENOBUFS and 4,999 rules. A `never` rule it
    dropped would make the live verdict PASS what the kernel does not record."""
    whole = "-a never,exit -F path=/usr/bin/dockerd -F perm=x\n" + good_listing()
    short = good_listing() + "\n" + ENOBUFS
    snap = host(good_rules(), short, kernel_rules=_whole_kernel_list(whole))
    assert listing_shortfall(snap) is not None and "listed 15 rules, the kernel's own list 16" in listing_shortfall(
        snap
    )
    present = {c.id for c in controls()} - ABSENT
    assert verdicts(snap, "live") == expected(error=present)
    assert verdicts(snap, "persisted") == expected()  # the files say what loads at boot


@pytest.mark.parametrize("kernel", [None, "whole"], ids=["no-kernel-list", "same-count"])
def test_a_listing_is_believed_when_nothing_says_it_is_short(kernel):
    listing = good_listing()
    snap = host("", listing, kernel_rules=_whole_kernel_list(listing) if kernel else None)
    assert listing_shortfall(snap) is None
