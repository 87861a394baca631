"""cisaudit.host.events: the --verify-events script (run for real, harmlessly) and its parser."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from cisaudit.host.events import MARK, recorded, render_script
from cisaudit.host.shell import PREAMBLE, piece
from cisaudit.model.decisions import Accesses, Trigger
from cisaudit.model.kernel import AuditKeys


def test_script_is_dash_and_quotes_paths_and_key() -> None:
    script = render_script(
        [Accesses("/etc/do cker", "rwxa", subtree=True), Accesses("/run/containerd", "rwa")], "dock'er"
    )
    head = script[: script.index(piece(PREAMBLE))]  # the values, as the shell reads them
    shown = subprocess.run(
        ["dash", "-c", head + 'eval "set -- $CHECKS"; printf "%s|" "$@" "$KEY"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown == "rwxa|1|/etc/do cker|rwa|0|/run/containerd|dock'er|"
    assert script.endswith(piece("events.sh"))
    subprocess.run(["dash", "-n"], input=script, text=True, check=True)
    with pytest.raises(ValueError):
        render_script([Accesses("/x", "rw;reboot")], "docker")


def _snapshot(path: Path) -> tuple[bytes, int, int]:
    st = path.stat()
    return (path.read_bytes() if path.is_file() else b"", st.st_mtime_ns, st.st_mode)


@pytest.mark.parametrize("exec_mode", ["e2big", "nomem"])
def test_accesses_change_nothing_and_never_run_the_program(locked_tmp: Path, exec_mode: str) -> None:
    """Each class's access on a file, a directory, a socket and through a symlink, under dash:
    contents, mtimes and modes stay, the program is never run (by either way of exec'ing it),
    and every access is announced with its own process."""
    program = locked_tmp / "d" / "prog"
    program.parent.mkdir()
    program.write_text(f"#!/bin/sh\n: > {locked_tmp}/ran\n")
    program.chmod(0o4755)  # a special bit must survive the chmod to the current mode
    (locked_tmp / "link").symlink_to("d/prog")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(locked_tmp / "sock"))
    objects = [program, program.parent, locked_tmp / "sock"]
    before = {p: _snapshot(p) for p in objects}
    checks = [
        Accesses(str(locked_tmp / "d"), "rwxa", subtree=True),
        Accesses(str(locked_tmp / "sock"), "rwxa"),
        Accesses(str(locked_tmp / "link"), "rwxa"),
    ]
    out = subprocess.run(
        ["dash", "-c", render_script(checks, "docker", timeout=0)],
        capture_output=True,
        text=True,
        env={**os.environ, "CISAUDIT_X": exec_mode},
    ).stdout  # exits as ausearch does: 1, no events (no rules here)
    sock.close()
    assert {p: _snapshot(p) for p in objects} == before
    assert not (locked_tmp / "ran").exists()
    triggers = list(recorded(out))
    paths = [str(locked_tmp / n) for n in ("d", "d/prog", "sock", "link")]
    assert [(t.path, t.label) for t in triggers] == [(p, c) for p in paths for c in "rwxa"]
    assert len({t.pid for t in triggers}) == len(triggers) and os.getpid() not in {t.pid for t in triggers}


# Records as this machine's auditd wrote them (ausearch prints them without the enriched part).
EVENTS = """----
time->Tue Dec  1 23:52:13 2026
type=PATH msg=audit(1796169133.855:13): item=0 name="/tmp/kt/d/f" inode=2146542 dev=fe:00 mode=0100755
type=CWD msg=audit(1796169133.855:13): cwd="/work"
type=SYSCALL msg=audit(1796169133.855:13): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=7fff a2=0 \
a3=0 items=1 ppid=20 pid=101 auid=4294967295 uid=0 comm="dd" exe="/usr/bin/dd" key="docker"
----
type=PATH msg=audit(1796169133.859:15): item=0 name=2F746D702F6B742F64206F2F66 inode=2146542 dev=fe:00
type=SYSCALL msg=audit(1796169133.859:15): arch=40000003 syscall=11 success=no exit=-7 items=1 ppid=101 pid=103 \
auid=4294967295 uid=0 comm="access32" key="docker"
----
type=PATH msg=audit(1796169133.863:16): item=0 name="/tmp/kt/d/f" inode=2146542 dev=fe:00
type=SYSCALL msg=audit(1796169133.863:16): arch=c000003e syscall=268 success=yes exit=0 items=1 ppid=104 pid=999 \
key="docker"
----
type=PATH msg=audit(1796169133.870:17): item=0 name="/tmp/kt/d/other" inode=7 dev=fe:00
type=SYSCALL msg=audit(1796169133.870:17): arch=c000003e syscall=268 success=yes exit=0 items=1 ppid=1 pid=104 \
key="docker"
----
type=CONFIG_CHANGE msg=audit(1796169133.700:9): auid=4294967295 ses=4294967295 op=add_rule key="docker" list=4 res=1
""".replace("\\\n", "")


def test_recorded_matches_each_access_by_its_process_and_path() -> None:
    output = (
        f"{MARK} trigger r 101 /tmp/kt/d/f\n{MARK} trigger x/b32 103 /tmp/kt/d o/f\n"
        f"{MARK} trigger a 104 /tmp/kt/d/f\n{MARK} trigger w 105 /tmp/kt/d/f\n{MARK} events\n" + EVENTS
    )
    assert recorded(output) == {
        Trigger("r", 101, "/tmp/kt/d/f"): ["arch=c000003e syscall=257 exit=3"],
        Trigger("x/b32", 103, "/tmp/kt/d o/f"): ["arch=40000003 syscall=11 exit=-7"],  # hex name
        # pid 999 chmod'ed the path but is not the trigger; the trigger's own event names another path
        Trigger("a", 104, "/tmp/kt/d/f"): [],
        Trigger("w", 105, "/tmp/kt/d/f"): [],  # no event at all
    }


def test_triggers_announced_after_the_mark_are_not_triggers() -> None:
    assert recorded(f"{MARK} events\n{MARK} trigger r 101 /tmp/kt/d/f\n" + EVENTS) == {}


def test_a_path_another_user_could_change_is_refused(locked_tmp: Path, tmp_path: Path) -> None:
    """Issue 21.4: under world-writable /tmp, or through a symlink into it, nothing is accessed."""
    (tmp_path / "f").write_text("")
    (locked_tmp / "f").write_text("")
    (locked_tmp / "link").symlink_to(tmp_path / "f")
    (locked_tmp / "open").mkdir(mode=0o777)
    (locked_tmp / "open").chmod(0o777)
    (locked_tmp / "open" / "g").write_text("")
    (locked_tmp / "shared").write_text("")  # a file its group may write (docker.sock is root:docker 0660)
    (locked_tmp / "shared").chmod(0o666)
    paths = [
        tmp_path / "f",
        locked_tmp / "link",
        locked_tmp / "open" / "g",
        locked_tmp / "missing",
        locked_tmp / "f",
        locked_tmp / "shared",
    ]
    out = subprocess.run(
        ["dash", "-c", render_script([Accesses(str(p), "a") for p in paths], "docker", timeout=0)],
        capture_output=True,
        text=True,
    ).stdout
    assert [(t.label, t.path) for t in recorded(out)] == [("refused", str(p)) for p in paths[:4]] + [
        ("a", str(p)) for p in paths[4:]
    ]


@pytest.mark.parametrize(
    ("keys", "shown"),
    [(AuditKeys(("docker", "perm_mod")), "docker perm_mod"), (AuditKeys((), True), ""), ("docker", "docker")],
)
def test_events_are_read_for_each_accepted_key(keys: AuditKeys | str, shown: str) -> None:
    """--audit-key with several keys reads each key's events; `any` reads events with any key."""
    script = render_script([Accesses("/etc/docker", "r")], keys)
    head = script[: script.index(piece(PREAMBLE))]
    out = subprocess.run(["dash", "-c", head + 'printf "%s" "$KEY"'], capture_output=True, text=True, check=True)
    assert out.stdout == shown
    assert "for k in ${KEY:-@any}; do" in script
