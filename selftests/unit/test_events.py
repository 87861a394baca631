"""cisaudit.events: the --verify-events script and how its output is read."""

import subprocess

from cisaudit.events import MARK, recorded_names, render_script

PATHS = ["/usr/bin/runc", "/etc/do cker", "/run/containerd"]


def test_script_reads_and_readlinks_every_path_quoted():
    script = render_script(PATHS, "dock'er")
    for quoted in ("/usr/bin/runc", "'/etc/do cker'", "/run/containerd"):
        assert f"dd if={quoted} of=/dev/null" in script
        assert f"readlink {quoted} >/dev/null" in script  # a watch on a symlink needs readlink(2)
    assert "-k 'dock'\"'\"'er'" in script
    assert "--input-logs" in script
    subprocess.run(["dash", "-n"], input=script, text=True, check=True)


def test_script_waits_for_the_exact_name_not_a_longer_neighbour():
    script = render_script(["/etc/docker"], "docker")
    assert "grep -qF 'name=\"/etc/docker\"'" in script


def test_recorded_names_reads_quoted_and_hex_names_after_the_mark():
    hexed = b"/etc/do cker".hex().upper()
    output = ('type=PATH msg=audit(1.0:1): item=0 name="/ignored/before/mark"\n' + MARK + "\n"
              'type=PATH msg=audit(1.0:2): item=0 name="/usr/bin/runc" inode=5\n'
              f"type=PATH msg=audit(1.0:3): item=0 name={hexed} inode=6\n"
              "type=PATH msg=audit(1.0:4): item=1 name=(null) inode=7\n")
    assert recorded_names(output) == {"/usr/bin/runc", "/etc/do cker"}
