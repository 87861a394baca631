"""The zipapp the SSM remediate document downloads (aws:downloadContent from S3) and runs with
python3 on the instance: this package's own files, not a second copy. It holds what
host/ssm/onhost.py imports (the pure model, the probe parser, the script composer) and every
host-side script; its bytes depend only on those files (fixed times and order), so the sha256
the document checks is the same wherever it is built from one commit.

Build it: `python -m cisaudit.host.ssm.document --bundle cisaudit.pyz` (prints the sha256).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3]  # the directory holding cisaudit/
# The modules onhost.py needs, and the data they read (selftests/unit/test_ssm_remediate.py runs
# the bundle with `python -I -S`: a module missing here, or a third-party import, fails it).
MEMBERS = (
    "cisaudit/__init__.py",
    "cisaudit/host/__init__.py",
    "cisaudit/host/shell.py",
    "cisaudit/host/probe.py",
    "cisaudit/host/kernel_rules.py",  # not imported: the probe sends its text (probe.KERNEL_RULES)
    "cisaudit/host/kernel_rules.pl",  # the same, for hosts without python3
    "cisaudit/host/remediation_io.py",
    "cisaudit/host/ssm/__init__.py",
    "cisaudit/host/ssm/onhost.py",
    "cisaudit/host/scripts/*.sh",
    "cisaudit/model/*.py",
    "cisaudit/model/benchmarks/*.toml",
)
MIN_PYTHON = (3, 11)
# Runs on any python3: an older one says, in one line, what to do. It unpacks the bundle into a
# private temp dir (the modules read their scripts and benchmark files as files) and runs onhost.
MAIN = """\
import os, shutil, sys, tempfile, zipfile
if sys.version_info < {min!r}:
    sys.stderr.write("cisaudit document: action=remediate needs Python {want} or later, and %s is %d.%d: "
                     "install one (Amazon Linux 2023: dnf install -y python3.11) and give its path as the "
                     "document's pythonPath parameter\\n" % (sys.executable, sys.version_info[0], sys.version_info[1]))
    sys.exit(2)
d = tempfile.mkdtemp(prefix="cisaudit-pyz.")
try:
    zipfile.ZipFile(os.path.dirname(__file__)).extractall(d)
    sys.path.insert(0, d)
    from cisaudit.host.ssm.onhost import main
    code = main(sys.argv[1:])
finally:
    shutil.rmtree(d, ignore_errors=True)
sys.exit(code)
"""
_EPOCH = (1980, 1, 1, 0, 0, 0)


def main_text(minimum: tuple[int, int]) -> str:
    """The zipapp's __main__.py, refusing pythons older than `minimum`."""
    return MAIN.format(min=minimum, want=".".join(map(str, minimum)))


def member_paths() -> list[Path]:
    found: set[Path] = set()
    for pattern in MEMBERS:
        matched = sorted(PACKAGE.glob(pattern))
        if not matched:
            raise FileNotFoundError(f"bundle member {pattern} matches nothing under {PACKAGE}")
        found.update(matched)
    return sorted(found)


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, _EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data, compresslevel=9)


def build_bundle() -> bytes:
    """The zipapp's bytes: `#!/usr/bin/env python3`, __main__.py, then the members in path order."""
    buffer = io.BytesIO()
    buffer.write(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(buffer, "w") as archive:
        _add(archive, "__main__.py", main_text(MIN_PYTHON).encode())
        for path in member_paths():
            _add(archive, path.relative_to(PACKAGE).as_posix(), path.read_bytes())
    return buffer.getvalue()


def write_bundle(path: Path) -> str:
    """Write the zipapp to `path`; its sha256 (the document's bundleSha256 parameter)."""
    data = build_bundle()
    path.write_bytes(data)
    path.chmod(0o644)
    return hashlib.sha256(data).hexdigest()
