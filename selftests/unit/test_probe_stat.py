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
    lines = 'printf "%s\\n" "$@" | with_ancestors "$probe_tmp/paths-in"\n'
    script = script.replace('\nstat_paths "$@"\nsec', f'\n{prefix}{lines}stat_lines "$probe_tmp/paths-in"\nsec')
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout.decode()
    return parse_stat_output(out, nonce), out


def _readlink_m(paths):
    out = subprocess.run(["readlink", "-z", "-m", "--", *paths], capture_output=True, check=True).stdout.decode()
    return dict(zip(paths, out.split("\0")[:-1], strict=True))


def test_stat_lines_reads_only_the_symlinks_and_agrees_with_readlink(tmp_path):
    """Issue 26.1: readlink -m ran on every path (a system call per component, 0.8 s at 5,000
    rules); now only on the symlinks, the rest resolved from them as readlink -m resolves them."""
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
    assert sorted(linked) == sorted(p for p in paths if p.endswith(("/dirlink", "/up", "/loop")))
    assert infos == _stat(paths)[0]  # kinds and modes as stat_paths gives them
    assert _stat_lines(paths, NO_GNU_STAT)[0] == infos  # busybox: stat_paths' form


def test_stat_lines_a_failed_readlink_leaves_only_the_paths_below_a_symlink_unknown():
    infos = parse_lstat_sections("/l\0/l/x\0/d/../e\0", "symbolic link 777 0 0\0/l\0", "1", "/l\0")
    assert [(i.kind, i.target) for i in infos.values()] == [("symlink", ""), ("absent", ""), ("absent", "/e")]


def _crowd(tmp_path):
    """A directory holding three of the paths and lacking three, one reached through a symlink."""
    (tmp_path / "crowd").mkdir()
    (tmp_path / "via").symlink_to("crowd")
    for name in ("f0", "f1", "f2"):
        (tmp_path / "crowd" / name).write_text("")
    names = [f"crowd/{n}" for n in ("f0", "f1", "f2", "a0", "a1", "a2")] + ["via/f0", "via/a0", "via/a1", "crowd/a0/x"]
    return _ancestry([str(tmp_path / n) for n in names])


STAT_LOG = 'stdbuf() { printf "%s\\n" "$@" >"$STAT_LOG"; command stdbuf "$@"; }\n'


def test_a_listed_directory_spares_the_stat_of_what_it_lacks(tmp_path):
    """Issue 26.1: each failed lookup walks every rule on an absent path (0.3 ms at 5,000 rules):
    the paths a crowded directory's listing lacks are absent without a stat of their own."""
    paths = _crowd(tmp_path)
    log = tmp_path / "stat-args"
    infos, _ = _stat_lines(paths, f"LIST_ABOVE=2 STAT_LOG='{log}'\n{STAT_LOG}")
    stated = set(log.read_text().splitlines())
    assert {str(tmp_path / "crowd" / n) for n in ("a0", "a1", "a2")}.isdisjoint(stated)
    assert {str(tmp_path / "via" / n) for n in ("a0", "a1")}.isdisjoint(stated)
    assert {str(tmp_path / "crowd" / n) for n in ("f0", "f1", "f2")} <= stated
    assert str(tmp_path / "crowd" / "a0" / "x") in stated  # in no crowded directory
    assert infos == _stat(paths)[0]
    assert {p: i.target for p, i in infos.items()} == _readlink_m(paths)


def test_a_listing_find_reports_an_error_for_decides_nothing(tmp_path):
    paths = _crowd(tmp_path)
    log = tmp_path / "stat-args"
    failing = 'find() { command find "$@"; echo "find: cannot read" >&2; }\n'
    infos, _ = _stat_lines(paths, f"LIST_ABOVE=2 STAT_LOG='{log}'\n{STAT_LOG}{failing}")
    assert str(tmp_path / "crowd" / "a0") in log.read_text().splitlines()
    assert infos == _stat(paths)[0]
