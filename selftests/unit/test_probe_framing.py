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
