"""probe-lib.sh stat_paths: one `stat` per path where GNU stat exists (hosts with thousands of
rules name thousands of paths), the same PathInfo as the one-test-per-kind form busybox gets."""

import os
import socket
import subprocess

from cisaudit.host.probe import parse_lstat_sections, parse_stat_output, render_stat_script

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


def _ancestry(paths):
    """The probe's list: every path and each one's parents (probe.sh's awk)."""
    seen = []
    for path in paths:
        while path and path not in seen:
            seen.append(path)
            path = path.rpartition("/")[0]
    return seen


def _stat_lines(paths, prefix=""):
    script, nonce = render_stat_script(paths)
    script = script.replace('\nstat_paths "$@"\nsec', f'\n{prefix}stat_lines "$@"\nsec')
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout.decode()
    return parse_stat_output(out, nonce), out


def _readlink_m(paths):
    out = subprocess.run(["readlink", "-z", "-m", "--", *paths], capture_output=True, check=True).stdout.decode()
    return dict(zip(paths, out.split("\0")[:-1], strict=True))


def test_stat_lines_resolves_only_what_lies_below_a_symlink_and_agrees_with_readlink(tmp_path):
    """Issue 26.1: readlink -m ran on every path (2 system calls per component, 0.8 s at 5,000
    rules); now only on paths with a symlink in them, the rest spelt as readlink -m spells them."""
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "real" / "f").write_text("")
    (tmp_path / "dirlink").symlink_to("real")
    (tmp_path / "real" / "up").symlink_to("../other/x")
    (tmp_path / "loop").symlink_to("loop")
    names = [
        "real/f",
        "real/sub/",
        "real//sub/./g",
        "real/sub/../f",
        "real/../../x",
        "dirlink/sub/new",
        "dirlink/../real/f",
        "real/up",
        "real/up/y",
        "absent/a/..",
        "real/f/x/..",
        "loop/x",
    ]
    paths = _ancestry([str(tmp_path / n) for n in names] + ["/", "//x", "/.."])
    infos, out = _stat_lines(paths)
    assert {p: i.target for p, i in infos.items()} == _readlink_m(paths)
    linked = out.split(" links\n", 1)[1].split("\n", 1)[0].lstrip("|").split("\0")[:-1]
    assert sorted(linked) == sorted(p for p in paths if any(n in p for n in ("dirlink", "/up", "/loop")))
    assert infos == _stat(paths)[0]  # kinds and modes as stat_paths gives them
    assert _stat_lines(paths, NO_GNU_STAT)[0] == infos  # busybox: stat_paths' form


def test_stat_lines_a_failed_readlink_leaves_only_the_paths_below_a_symlink_unknown():
    infos = parse_lstat_sections("/l\0/l/x\0/d/../e\0", "symbolic link 777 0 0\0/l\0", "1", "/l\0/l/x\0")
    assert [(i.kind, i.target) for i in infos.values()] == [("symlink", ""), ("absent", ""), ("absent", "/e")]
