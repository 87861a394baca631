"""The checks of the command line that read the file system, before any host is touched: the
files a connection trusts or reads exist, and every output can be written (so a run never audits
a fleet and then fails to write its report). Each problem is an OptionError (cisaudit.plugin.options)
with one line that says what to do."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cisaudit.outputs import registry
from cisaudit.plugin.options import OptionError

INPUTS = {
    "known_hosts": "--known-hosts",
    "ssh_config": "--ssh-config",
    "ssh_identity_file": "--ssh-identity-file",
}


def outputs() -> dict[str, str]:
    """option dest -> flag of every file a run may write (outputs/registry.py), --junitxml and --html too."""
    return registry.path_flags()


def check_input(flag: str, path: str | None) -> None:
    """A file the connections read must be there: a missing --known-hosts would silently trust
    less than asked, and every host would then fail with advice to pass it."""
    if path is None:
        return
    if not path.strip():
        raise OptionError(f"{flag} is empty (an unset variable?): give a FILE, or leave {flag} out")
    try:
        with open(path, "rb"):
            pass
    except IsADirectoryError:
        raise OptionError(f"{flag} {path}: is a directory; give a FILE") from None
    except OSError as exc:
        raise OptionError(f"{flag} {path}: cannot read it ({exc.strerror}); give an existing FILE") from None


def check_output(flag: str, path: str) -> None:
    """path can be written: a regular file, or none yet where the writer can make its missing
    directories (a file can be made in the nearest one that exists). Nothing is left behind: an
    existing file is opened without a byte written, a probe file is removed, no directory is made."""
    target = Path(path)
    try:
        if target.is_dir():
            raise OptionError(f"{flag} {path}: is a directory; give a file PATH, or an empty value to write none")
        if target.exists() and not target.is_file():
            raise OptionError(f"{flag} {path}: not a regular file; give a file PATH, or an empty value to write none")
        if target.exists():
            with target.open("ab"):  # the open proves the right to write
                pass
            return
        ancestor = next(p for p in target.absolute().parents if p.exists())
        if not ancestor.is_dir():
            raise NotADirectoryError(20, os.strerror(20))
        with tempfile.NamedTemporaryFile(dir=ancestor, prefix=f".{target.name}.", suffix=".check"):
            pass
    except OSError as exc:
        raise OptionError(
            f"{flag} {path}: cannot write there ({exc.strerror or exc}); give a writable PATH, "
            "or an empty value to write none"
        ) from None


def check_outputs(paths: dict[str, str | None]) -> None:
    """Every output given (dest -> path; empty writes none) is writable, and no two share a file."""
    seen: dict[str, str] = {}
    for dest, path in paths.items():
        if not path:
            continue
        flag = outputs()[dest]
        real = os.path.realpath(path)
        if real in seen:
            raise OptionError(f"{flag} and {seen[real]} both write {path}; give each its own PATH")
        seen[real] = flag
        check_output(flag, path)
