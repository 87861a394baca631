"""probe-lib.sh stat_paths: one `stat` per path where GNU stat exists (hosts with thousands of
rules name thousands of paths), the same PathInfo as the one-test-per-kind form busybox gets."""

import os
import socket
import subprocess

from cisaudit.host.probe import parse_stat_output, render_stat_script

# Makes `stat --printf ''` (the probe's GNU test) fail, so stat_paths takes the busybox form.
NO_GNU_STAT = 'stat() { if [ "$2" = \'\' ]; then return 1; fi; command stat "$@"; }\n'


def _tree(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").write_text("")
    (tmp_path / "link").symlink_to("dir")
    (tmp_path / "dangling").symlink_to("nowhere/x")
    os.mkfifo(tmp_path / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    sock.close()
    (tmp_path / "dir" / "mode").write_text("")
    (tmp_path / "dir" / "mode").chmod(0o4750)
    names = ["dir", "file", "empty", "link", "dangling", "fifo", "sock", "dir/mode", "absent", "link/x", "new\nline"]
    return [str(tmp_path / n) for n in names] + ["/"]


def _stat(paths, prefix=""):
    script, nonce = render_stat_script(paths)
    script = script.replace("\neval ", f"\n{prefix}eval ", 1) if prefix else script
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout.decode()
    return parse_stat_output(out, nonce), out


def test_one_stat_per_path_gives_what_the_test_builtins_give(tmp_path):
    paths = _tree(tmp_path)
    fast, out = _stat(paths)
    slow, slow_out = _stat(paths, NO_GNU_STAT)
    assert " lstat" in out and " paths" not in out  # the GNU form ran
    assert " paths" in slow_out and " lstat" not in slow_out
    assert fast == slow
    kinds = {p.rpartition("/")[2]: fast[p].kind for p in paths}
    assert kinds == {
        "dir": "dir",
        "file": "file",
        "empty": "file",
        "link": "symlink",
        "dangling": "symlink",
        "fifo": "file",
        "sock": "socket",
        "mode": "file",
        "absent": "absent",
        "x": "absent",
        "new\nline": "absent",
        "": "dir",
    }
    assert fast[str(tmp_path / "dir/mode")].owner == "4750 0 0"
    assert fast[str(tmp_path / "link/x")].target == str(tmp_path / "dir/x")
