"""cisaudit.host.probe.parse_probe: section framing is exact, and incomplete output is refused."""

import shutil
import subprocess

import pytest

from cisaudit.host.probe import (
    PathInfo,
    ProbeError,
    parse_probe,
    parse_stat_output,
    parse_stat_sections,
    render_probe,
    render_stat_script,
)
from cisaudit.host.shell import piece
from cisaudit.model.catalogue import controls
from selftests import probe_frames
from selftests.suite_runner import require

NONCE = "@@cisaudit-0123456789abcdef"
FAKE = "@@cisaudit-fedcba9876543210"
V17 = controls("1.7.0")
FILES = {
    "no-trailing-newline": "-w /etc/docker -k docker",
    "trailing-newline": "-w /etc/docker -k docker\n",
    "blank-lines": "\n\n-w /etc/docker -k docker\n\n\n",
    "fake-marker": f"-w /a\n{FAKE} done\n{FAKE} rules-file /etc/passwd\n-w /b\n",
    "marker-mid-line": f"-w /a # {NONCE} done\n",
    "empty": "",
    "only-newline": "\n",
    "crlf": "-w /etc/docker -k docker\r\n-e 2\r\n",
}


def section(name, arg="", body=""):
    return probe_frames.section(NONCE, name, arg, body)


def output(*sections, done=True):
    return "".join(sections) + (section("done") if done else "")


@pytest.mark.parametrize("content", FILES.values(), ids=FILES.keys())
def test_file_bodies_are_exact(content):
    snap = parse_probe(
        output(
            section("rules-file", "/etc/audit/rules.d/a.rules", content),
            section("audit-rules", "/etc/audit/audit.rules", content),
            section("daemon-json", "/etc/docker/daemon.json", content),
        ),
        NONCE,
        V17,
    )
    assert snap.rules_d == [("/etc/audit/rules.d/a.rules", content)]
    assert (snap.audit_rules, snap.daemon_json) == (content, content)


def shell_output(tmp_path, contents):
    """Frame real files with probe.sh's own sec/end/dump/run functions."""
    funcs = piece("probe-lib.sh")
    names = []
    for i, content in enumerate(contents):
        name = f"{i}-x.rules"
        (tmp_path / name).write_bytes(content.encode())
        names.append(name)
    script = (
        f"M={NONCE}\n{funcs}\n"
        f"sec rules-d-order; printf '%s\\n' {' '.join(names)}; end\n"
        + "".join(f"dump rules-file '{tmp_path / n}'\n" for n in names)
        + "run auditctl-l printf '%s\\n\\n' '-w /etc/docker -p rwxa -k docker'\n"
        + f"dump audit-rules '{tmp_path}/missing'\n"
        + f"stat_paths '{tmp_path / names[0]}' '{tmp_path}/nope/x' '{tmp_path}/nope' '{tmp_path}'\n"
        + "sec done; end\n"
    )
    return subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout.decode()


def test_real_shell_framing_round_trips(tmp_path):
    contents = list(FILES.values())
    snap = parse_probe(shell_output(tmp_path, contents), NONCE, V17)
    assert [text for _, text in snap.rules_d] == contents
    assert snap.listing_rc == 0 and snap.listing_text == "-w /etc/docker -p rwxa -k docker"  # $(...) drops \n
    assert snap.audit_rules is None
    first = str(tmp_path / "0-x.rules")
    assert snap.paths[first].kind == "file" and snap.paths[first].target == first
    assert len(snap.paths[first].owner.split()) == 3
    # readlink -m resolves a path whose parent is missing too; both are stat'ed
    assert snap.paths[f"{tmp_path}/nope/x"] == PathInfo(f"{tmp_path}/nope/x", "absent", f"{tmp_path}/nope/x")
    assert snap.paths[f"{tmp_path}/nope"].kind == "absent" and snap.paths[str(tmp_path)].kind == "dir"


@pytest.mark.parametrize(
    "cut",
    [0, 1, 10, -len(section("done")), -len(section("done")) + 5, -2, -1],
    ids=["empty", "one-char", "early", "before-done", "inside-done-marker", "inside-done", "last-newline"],
)
def test_truncated_output_raises(cut):
    full = output(section("uid", body="0"), section("rules-file", "/r/a.rules", FILES["fake-marker"]))
    assert parse_probe(full, NONCE, V17).uid == 0
    truncated = full[:cut]
    with pytest.raises(ProbeError):
        parse_probe(truncated, NONCE, V17)


@pytest.mark.parametrize(
    "text",
    [
        output(section("uid", body="0")).replace(NONCE, FAKE),
        output(section("uid", body="0"), done=False) + f"{FAKE} done\n",
        output(section("uid", body="0"), done=False) + f"x{NONCE} done\n",
        "garbage\x00\xff\n",
    ],
    ids=["other-nonce", "fake-done", "done-not-at-line-start", "garbage"],
)
def test_foreign_markers_are_not_sections(text):
    with pytest.raises(ProbeError):
        parse_probe(text, NONCE, V17)


def test_rules_d_follow_ls_v_order():
    names = ["2-x.rules", "10-base.rules", "99-finalize.rules"]
    files = [section("rules-file", f"/etc/audit/rules.d/{n}", f"# {n}") for n in sorted(names)]
    snap = parse_probe(
        output(
            section("rules-d-order", body="\n".join(names)),
            *files,
            section("rules-file", "/etc/audit/rules.d/zz-late.rules", ""),
        ),
        NONCE,
        V17,
    )
    assert [p.rsplit("/", 1)[1] for p, _ in snap.rules_d] == names + ["zz-late.rules"]


def test_scalar_sections():
    snap = parse_probe(
        output(
            section("uid", body="0"),
            section("arch", body="x86_64"),
            section("auditctl", body="/usr/sbin/auditctl"),
            section("auditctl-s", "0", "enabled 2\nfailure 1\npid 77\nbacklog_limit 8192"),
            section("auditctl-l", "1", "You must be root to run this program."),
            section("auditd", body=""),
            section("auditd-pid", body="77"),
            section("systemd", body="running"),
            section("unit-show", body=unit_show(("auditd.service", AUDITD), ("docker.service", DOCKER))),
            section("unit-file", AUDITD, "[Service]\nExecStartPost=-/sbin/augenrules --load"),
            section("binary", "dockerd", "/usr/sbin/dockerd"),
            section("binary", "runc", ""),
            section("rules-file-error", "/etc/audit/rules.d/dir.rules", "not a readable regular file"),
            section("containerd-config", "/etc/containerd/config.toml", "version = 2"),
            section("paths", body="dir\0/etc/docker\0symlink\0/usr/bin/runc\0"),
            section("targets", body="/etc/docker\0/usr/sbin/runc\0" + "0"),
        ),
        NONCE,
        V17,
    )
    assert (snap.uid, snap.arch, snap.auditctl, snap.auditd, snap.auditd_running, snap.systemd) == (
        0,
        "x86_64",
        "/usr/sbin/auditctl",
        None,
        True,
        True,
    )
    assert snap.status == {"enabled": "2", "failure": "1", "pid": "77", "backlog_limit": "8192"}
    assert (snap.status_rc, snap.listing_rc) == (0, 1)
    assert "augenrules --load" in snap.auditd_unit
    assert snap.units == {"docker.service": DOCKER}
    assert snap.binaries == {"dockerd": "/usr/sbin/dockerd"}
    assert snap.unreadable == ["/etc/audit/rules.d/dir.rules"] and snap.containerd_config == "version = 2"
    assert set(snap.paths) == {"/etc/docker", "/usr/bin/runc"} and snap.paths["/usr/bin/runc"].exists


AUDITD, DOCKER = "/lib/systemd/system/auditd.service", "/lib/systemd/system/docker.service"
DROP_IN = "/etc/systemd/system/auditd.service.d/my drop.conf"
MASKED = "# Unit auditd.service is masked."  # what systemctl cat prints


def unit_show(*shown: tuple[str, str], drop_ins: str = "", load: str = "loaded") -> str:
    """systemctl show's blocks for probe.sh's names (1.7.0: auditd, audit-rules, docker.service,
    docker.socket); `shown` gives a unit its FragmentPath, auditd its DropInPaths and LoadState."""
    fragments = dict(shown)
    blocks = []
    for name in ("auditd.service", "audit-rules.service", "docker.service", "docker.socket"):
        found = name in fragments
        extra = f"DropInPaths={drop_ins}\nUnitFileState=enabled\n" if name == "auditd.service" else ""
        blocks.append(
            f"Names={name}\nLoadState={load if found else 'not-found'}\nFragmentPath={fragments.get(name, '')}\n{extra}"
        )
    return "\n".join(blocks)


@pytest.mark.parametrize(
    ("sections", "unit", "unreadable"),
    [
        ([section("systemd", body="running"), section("unit-show", body=unit_show())], "", []),
        (
            [
                section("unit-show", body=unit_show(("auditd.service", AUDITD), drop_ins=f'"{DROP_IN}"')),
                section("unit-file", AUDITD, "[Service]\nExecStartPost=-/a"),
                section("unit-file", DROP_IN, "[Service]\nExecStartPost="),
            ],
            "[Service]\nExecStartPost=-/a\n[Service]\nExecStartPost=",
            [],
        ),
        ([section("unit-show", body=unit_show(("auditd.service", AUDITD)))], "", [AUDITD]),
        ([section("unit-show", body=unit_show(("auditd.service", AUDITD), load="masked"))], MASKED, []),
        ([section("unit-show", body=unit_show(drop_ins='"/etc/x.conf'))], "", ["auditd.service's DropInPaths"]),
        (
            [
                section(
                    "unit-show", body=unit_show(("auditd.service", AUDITD)).replace("Names=docker.service", "Names=x")
                )
            ],
            "",
            ["systemctl show (a block per unit)"],
        ),
        (
            [
                section("auditd-unit-file", "/lib/systemd/system/auditd.service", "[Service]\nExecStartPost=-/a"),
                section("auditd-unit-file", "/etc/systemd/system/auditd.service.d/x.conf", "[Service]\nExecStartPost="),
            ],
            "[Service]\nExecStartPost=-/a\n[Service]\nExecStartPost=",
            [],
        ),
    ],
    ids=[
        "not-found",
        "fragment-and-quoted-drop-in",
        "a-file-not-sent",
        "masked",
        "unbalanced-quote",
        "a-block-not-of-its-unit",
        "unit-files-without-systemd",
    ],
)
def test_auditd_unit(sections, unit, unreadable):
    """systemctl show names auditd's files (probe.sh unit_files sends them): what systemctl cat
    would print; what cannot be read of it is unreadable (persisted verdicts ERROR), not guessed."""
    snap = parse_probe(output(*sections), NONCE, V17)
    assert (snap.auditd_unit, snap.unreadable) == (unit, unreadable)


@pytest.mark.parametrize(("uid", "expected"), [("0", 0), ("1000\n", 1000), ("", None), ("root", None)])
def test_uid(uid, expected):
    assert parse_probe(output(section("uid", body=uid)), NONCE, V17).uid == expected


def test_stat_records_pair_by_position_and_a_failed_readlink_resolves_nothing():
    paths = "file\0/a\0absent\0/b\0"
    assert parse_stat_sections(paths, "/a\0/b\0" + "0", "644 0 0 /a\0") == {
        "/a": PathInfo("/a", "file", "/a", "644 0 0"),
        "/b": PathInfo("/b", "absent", "/b"),
    }
    assert parse_stat_sections(paths, "/a\0" + "1", "") == {
        "/a": PathInfo("/a", "file", ""),
        "/b": PathInfo("/b", "absent", ""),
    }


def test_newline_in_a_symlink_target_cannot_shift_other_paths(tmp_path):
    """Issue 10.5: a symlink whose target holds a newline (and a fake path) must resolve to itself only."""
    evil = tmp_path / "evil"
    evil.symlink_to("x\n/etc/docker")
    other = tmp_path / "other"
    other.write_text("")
    script, nonce = render_stat_script([str(evil), str(other), str(tmp_path / "new\nline")])
    infos = parse_stat_output(
        subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout.decode(), nonce
    )
    assert infos[str(evil)].target == f"{tmp_path}/x\n/etc/docker" and infos[str(evil)].kind == "symlink"
    assert infos[str(other)].target == str(other) and infos[str(other)].kind == "file"
    assert infos[str(tmp_path / "new\nline")].kind == "absent"


@pytest.mark.parametrize("body", ["x", "²", "9" * 5000, "-1"])
def test_crafted_numbers_never_raise(body):
    """Issue 10.9: a hostile host's exit codes and uid are unreadable, not a crash."""
    snap = parse_probe(output(section("uid", body=body), section("auditctl-s", body, "enabled 1")), NONCE, V17)
    assert snap.uid is None and snap.status_rc is None


def test_render_probe_frames_with_its_nonce():
    script, nonce = render_probe(V17, ["/srv/docker"])
    assert nonce.startswith("@@cisaudit-") and f"M={nonce}\n" in script and "/srv/docker" in script
    assert render_probe(V17)[1] != nonce


KERNEL_LIST_BODY = (
    "4 0 all 105:64:/tmp/x 106:64:2\n4 2 all 107:64:/etc/docker 106:64:15 210:64:docker\n"
    "4 2 59,322 11:64:3221225534 105:64:/usr/bin/sp%20ace 210:64:a%01b\ndone"
)


def test_kernel_rules_section_is_read_only_when_complete():
    assert parse_probe(output(section("kernel-rules", body=KERNEL_LIST_BODY)), NONCE, V17).kernel_rules == [
        ("exit", "never", "path", "/tmp/x"),
        ("exit", "always", "dir", "/etc/docker"),
        ("exit", "always", "path", "/usr/bin/sp ace"),
    ]
    setuid_setgid = "4 2 105,106 11:64:3221225534 210:64:k\ndone"  # syscalls 105 and 106: no path field
    assert parse_probe(output(section("kernel-rules", body=setuid_setgid)), NONCE, V17).kernel_rules == [
        ("exit", "always", "none", "")
    ]
    for body in ("4 0 all 105:64:/tmp/x", "x y\ndone", "4 2 all 105:65:/x\ndone", "4 2 all 106:64:w\ndone"):
        assert parse_probe(output(section("kernel-rules", body=body)), NONCE, V17).kernel_rules is None, body


def test_the_listing_is_rendered_from_the_kernels_list_where_no_auditctl_l_ran():
    """Issue 26.1: with the kernel's list read whole the probe runs no auditctl -l; the listing is
    rendered from the list as auditctl prints it, with the syscall names the probe fetched, and cites
    `kernel list` (selftests/integration/test_kernel_list.py compares it with auditctl's own)."""
    tables = section("syscalls", "x86_64", body="59 execve\n322 execveat")
    snap = parse_probe(output(section("kernel-rules", body=KERNEL_LIST_BODY), tables), NONCE, V17)
    assert snap.listing_source == "kernel list" and snap.listing_rc == 0
    assert snap.listing_text == (
        "-w /tmp/x -p w\n-w /etc/docker -p rwxa -k docker\n"
        "-a always,exit -F arch=b64 -S execve,execveat -F path=/usr/bin/sp ace -F key=a -F key=b\n"
    )
    listed = section("auditctl-l", "0", body="-w /tmp/x -p w")
    snap = parse_probe(output(section("kernel-rules", body=KERNEL_LIST_BODY), listed), NONCE, V17)
    assert snap.listing_source == "auditctl -l" and snap.listing_text == "-w /tmp/x -p w"


def test_a_repeated_section_is_an_error_never_an_override():
    """Issue 21.1: a second `auditd-pid` (or any section) must not replace the first."""
    with pytest.raises(ProbeError, match="repeats section"):
        parse_probe(output(section("auditd-pid", body=""), section("auditd-pid", body="1")), NONCE, V17)


@pytest.mark.parametrize(
    "text",
    [
        output(section("uid", body="0")).replace("|0", "0"),  # a body line without its "|"
        output(section("uid", body="0")).replace(probe_frames.SECRET, "f" * 32, 1),  # another secret
        output(section("uid", body="0")).replace(probe_frames.SECRET, "x" * 32),  # not hex
    ],
    ids=["unescaped-body", "two-secrets", "bad-secret"],
)
def test_unframed_text_is_refused(text):
    with pytest.raises(ProbeError):
        parse_probe(text, NONCE, V17)


def test_host_text_holding_the_whole_marker_stays_a_body(tmp_path):
    """Issue 21.1: even a file that holds the full marker (secret included) is only a body."""
    script, nonce = render_stat_script([str(tmp_path)])
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout.decode()
    marker = out.split(" ", 1)[0]
    assert marker.startswith(nonce + ".") and marker.split(".")[-1] not in script
    forged = f"x\n{marker} done\n\n{marker} auditd-pid\n1\n"
    snap = parse_probe(output(section("rules-file", "/r/a.rules", forged), section("auditd-pid", body="")), NONCE, V17)
    assert snap.rules_d == [("/r/a.rules", forged)] and not snap.auditd_running


@pytest.mark.parametrize(
    ("pid", "status", "running"),
    [("77", "pid 77", True), ("", "pid 77", False), ("77", "pid 0", False), ("77", "pid 78", False)],
)
def test_auditd_runs_only_as_the_kernels_pid(pid, status, running):
    """Issue 21.2: the probe prints the kernel's auditd pid only when it is alive and root's."""
    snap = parse_probe(
        output(section("auditctl-s", "0", f"enabled 1\n{status}"), section("auditd-pid", body=pid)), NONCE, V17
    )
    assert snap.auditd_running is running


def test_a_dockerd_that_is_not_roots_informs_nothing():
    """Issue 21.3: a cmdline dumped before its process was found not to be root's is dropped."""
    snap = parse_probe(
        output(
            section("dockerd-cmdline", "/proc/9/cmdline", "dockerd\0--data-root=/tmp/x\0"),
            section("dockerd-ignored", "9", "65534"),
        ),
        NONCE,
        V17,
    )
    assert snap.dockerd_args == [] and snap.ignored_dockerd == [("9", "65534")]
    snap = parse_probe(output(section("dockerd-cmdline", "/proc/8/cmdline", "dockerd\0-H\0fd://\0")), NONCE, V17)
    assert snap.dockerd_args == ["dockerd", "-H", "fd://"]


def test_probe_frames_without_a_writable_tmpdir(tmp_path):
    """The framing's private temp dir falls back to /dev/shm or /run; none is left behind."""
    script, nonce = render_stat_script([str(tmp_path)])
    env = {"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path / "missing")}
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True, env=env).stdout.decode()
    assert parse_stat_output(out, nonce)[str(tmp_path)].kind == "dir"
    assert not list(tmp_path.glob("cisaudit-probe.*"))


def test_loader_version_sections():
    """A directory named *.rules is no unreadable file (augenrules skips it); the version, the
    files a split name names and audit.rules' mode and owner are read."""
    snap = parse_probe(
        output(
            section("rules-d-order", body="50 docker.rules\n50.rules"),
            section("rules-d-special", "/etc/audit/rules.d/50.rules"),
            section("rules-d-word", "/etc/audit/rules.d/50", "-w /x\n"),
            section("audit-version", "0", "auditctl version 3.0.9"),
            section("audit-rules-stat", body="640 0"),
        ),
        NONCE,
        V17,
    )
    assert snap.unreadable == []
    assert snap.rules_d_special == ["/etc/audit/rules.d/50.rules"]
    assert snap.rules_d_words == {"/etc/audit/rules.d/50": "-w /x\n"}
    assert (snap.audit_version, snap.audit_rules_stat) == ("auditctl version 3.0.9", "640 0")


def test_kernel_filter_facts_are_parsed():
    """probe.sh's kernel filter model section: syscall numbers per ausyscall table, LSMs."""
    snap = parse_probe(
        output(
            section("syscalls", "x86_64", "90 chmod\n159 adjtimex"),
            section("syscalls", "i386", "15 chmod"),
            section("lsm", "", "lockdown,capability,selinux"),
            section("lsm-label", "", "yes"),
            section("selinux", "", "yes"),
        ),
        NONCE,
        V17,
    )
    assert snap.syscall_tables == {"x86_64": "90 chmod\n159 adjtimex", "i386": "15 chmod"}
    assert (snap.lsm_list, snap.lsm_labelled, snap.selinux) == ("lockdown,capability,selinux", True, True)
    unknown = parse_probe(output(section("lsm-label", "", "maybe")), NONCE, V17)
    assert (unknown.lsm_list, unknown.lsm_labelled, unknown.selinux) == (None, None, None)


def test_probe_reads_this_hosts_syscall_numbers():
    """The rendered probe asks ausyscall for the class syscalls and every -S name of the rules."""
    require(shutil.which("ausyscall") is not None, "needs ausyscall (apt-get install auditd)")
    script, nonce = render_probe(V17)
    snap = parse_probe(subprocess.run(["sh", "-c", script], capture_output=True, text=True).stdout, nonce, V17)
    assert snap.syscall_tables, "no syscall table from this host's ausyscall"
    for text in snap.syscall_tables.values():
        names = {line.split()[1] for line in text.splitlines()}
        assert "execve" in names and "openat" in names
