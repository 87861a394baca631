"""probe-lib.sh's framing: every section collected in one file and framed by one `sed` when the
probe exits, byte for byte what a `sed` per section gave (a host without a secret still gets that)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from cisaudit.host.shell import compose

# Bodies that test the frame's edges: empty, with and without a last newline, blank lines,
# NUL bytes, a marker argument holding a newline, a would-be sentinel.
SECTIONS = r"""
sec empty; end
sec one-line; printf 'a'; end
sec lines; printf 'a\nb\n'; end
sec blanks; printf '\n\nx\n\n'; end
sec nul; printf 'p\000q\000'; end
sec 'two
lines' arg; echo body; end
sec lookalike; printf '<\n>\n|\n'; end
sec 'done'; end
"""
EXPECTED = (
    "{m} empty\n\n"
    "{m} one-line\n|a\n"
    "{m} lines\n|a\n|b\n\n"
    "{m} blanks\n|\n|\n|x\n|\n\n"
    "{m} nul\n|p\0q\0\n"
    "{m} two\nlines arg\n|body\n\n"
    "{m} lookalike\n|<\n|>\n||\n\n"
    "{m} done\n\n"
)


def _run(tmp_path: Path, od: str) -> tuple[str, int]:
    """The framed output with a fixed secret (`od` made to print it) or none (`od` failing), and
    how many times `sed` ran."""
    bin_dir = tmp_path / od
    bin_dir.mkdir()
    log = tmp_path / f"{od}.sed"
    (bin_dir / "od").write_text("#!/bin/sh\n" + ("echo ' 00 11 22 33'\n" if od == "secret" else "exit 1\n"))
    (bin_dir / "sed").write_text(f'#!/bin/sh\necho x >>{log}\nexec /bin/sed "$@"\n')
    for tool in ("od", "sed"):
        (bin_dir / tool).chmod(0o755)
    script = compose({"M": "@@test"}, "probe-lib.sh") + SECTIONS
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True, env=env).stdout.decode()
    return out, len(log.read_text().splitlines()) if log.exists() else 0


def test_one_sed_frames_every_section_as_a_sed_per_section_did(tmp_path: Path) -> None:
    """Regression: a `sed` ran per section (about 70 per probe), each with 4 failed path lookups,
    0.2-0.5 ms each on a host with thousands of rules."""
    framed, seds = _run(tmp_path, "secret")
    assert framed == EXPECTED.format(m="@@test.00112233")
    assert seds == 1
    unsecret, seds = _run(tmp_path, "none")  # no od: the marker has no secret half
    assert unsecret == EXPECTED.format(m="@@test.")
    assert seds == 6  # the sections with a body, each framed as it ends


def _dumped(tmp_path: Path, od: str, call: str) -> tuple[dict[str, list[str]], int]:
    """`call` (dump or dump_each of the files below) framed, each section's lines by its
    argument, and how many times `awk` ran."""
    files = tmp_path / "files"
    files.mkdir(exist_ok=True)
    (files / "a.conf").write_text("d /run/a 0755 root root -\n# comment\n")
    (files / "b.conf").write_text("f /run/b\nL /run/c - - - - /x")  # no last newline
    (files / "empty.conf").write_text("")
    (files / "blank.conf").write_text("\n\n")
    (files / "dir.conf").mkdir(exist_ok=True)
    bin_dir = tmp_path / f"{od}-awk"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / f"{od}.awk"
    (bin_dir / "od").write_text("#!/bin/sh\n" + ("echo ' 00 11 22 33'\n" if od == "secret" else "exit 1\n"))
    awk = subprocess.run(["sh", "-c", "command -v awk"], capture_output=True, text=True).stdout.strip()
    (bin_dir / "awk").write_text(f'#!/bin/sh\necho x >>{log}\nexec {awk} "$@"\n')
    for tool in ("od", "awk"):
        (bin_dir / tool).chmod(0o755)
    names = " ".join(str(files / n) for n in ("a.conf", "b.conf", "empty.conf", "blank.conf", "dir.conf", "gone.conf"))
    script = compose({"M": "@@test"}, "probe-lib.sh") + f"set -- {names}\n{call}\nsec 'done'; end\n"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True, env=env).stdout.decode()
    marker = out.split(" ", 1)[0] + " "
    sections: dict[str, list[str]] = {}
    for line in out.split("\n"):
        if line.startswith(marker):
            body = sections.setdefault(line[len(marker) :], [])
        elif line.startswith("|"):
            body.append(line[1:])
    return sections, len(log.read_text().splitlines()) if log.exists() else 0


EACH_AS_TMP = 'for f; do shift; set -- "$@" tmp "$f"; done; dump_each "$@"'  # every file as section `tmp`


def test_files_dumped_as_lines_by_one_awk_read_as_each_dumped(tmp_path: Path) -> None:
    """Regression: a `cat` ran per tmpfiles.d file (about 40 per probe), each an exec whose failed
    lookups walk every rule on an absent object on a host with thousands of them."""
    each, _ = _dumped(tmp_path, "secret", 'for f; do dump tmp "$f"; done')
    together, awks = _dumped(tmp_path, "secret", EACH_AS_TMP)
    assert together == each
    assert awks == 1
    assert together[f"tmp {tmp_path}/files/b.conf"] == ["f /run/b", "L /run/c - - - - /x"]
    assert together[f"tmp {tmp_path}/files/empty.conf"] == []
    assert f"tmp-error {tmp_path}/files/dir.conf" in together
    without, awks = _dumped(tmp_path, "none", EACH_AS_TMP)
    assert without == each
    assert awks == 0


def test_each_file_under_its_own_name_by_the_same_one_awk(tmp_path: Path) -> None:
    """dump_each: the unit files, tmpfiles.d files and /etc/subuid, /etc/subgid of the probe go out
    by one awk, each under its own section name, as `dump` of each under that name would."""
    pairs = 'one "$1" two "$2" three "$3" four "$4" five "$5" six "$6"'
    each, _ = _dumped(tmp_path, "secret", f'set -- {pairs}; while [ $# -gt 0 ]; do dump "$1" "$2"; shift 2; done')
    together, awks = _dumped(tmp_path, "secret", f"dump_each {pairs}")
    assert together == each and awks == 1
    assert together[f"two {tmp_path}/files/b.conf"] == ["f /run/b", "L /run/c - - - - /x"]
    assert f"five-error {tmp_path}/files/dir.conf" in together
    without, awks = _dumped(tmp_path, "none", f"dump_each {pairs}")
    assert without == each and awks == 0


def test_a_one_line_file_is_read_by_the_shell_and_any_other_dumped(tmp_path: Path) -> None:
    """dump_line: /proc/cmdline and the boot id (stat says 0 bytes, so not dump_each's) without a
    `cat`; a file that is not one whole line is `dump`ed, byte for byte."""
    files = {"one": "BOOT_IMAGE=/vmlinuz root=/dev/vda ro\n", "two": "a\nb\n", "no-newline": "abc", "empty": ""}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    log = tmp_path / "cats"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "cat").write_text(f'#!/bin/sh\necho "$@" >>{log}\nexec /bin/cat "$@"\n')
    (bin_dir / "cat").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    outputs = {}
    for call in ("dump", "dump_line"):
        body = "".join(f"{call} x {tmp_path / name}\n" for name in [*files, "gone"])
        script = compose({"M": "@@test"}, "probe-lib.sh") + body + "sec 'done'; end\n"
        out = subprocess.run(["sh", "-c", script], capture_output=True, check=True, env=env).stdout
        outputs[call] = out.replace(out.split(b" ", 1)[0], b"M")  # the marker's secret differs per run
    assert outputs["dump_line"] == outputs["dump"]
    catted = log.read_text().splitlines()
    assert f"{tmp_path}/one" not in catted[len(files) :]  # dump_line's cats come after dump's four
    assert catted[len(files) :] == [str(tmp_path / n) for n in ("two", "no-newline", "empty")]
