"""The probe's shell guesses (cisaudit/host/scripts/probe-guess.sh) against the model that decides
(cisaudit/model/locate.py): where the guess reads a config as the model does, both name the same
path; where it cannot (JSON escapes, TOML it does not follow), the model's path is one the probe
did not stat, so the session stats it in its follow-up command. Concepts both sides use are
written once, in Python, and reach the shell as values."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cisaudit.host.probe import render_probe
from cisaudit.host.shell import SCRIPTS, piece
from cisaudit.model.boot import TMPFILES_DIRS
from cisaudit.model.catalogue import controls
from cisaudit.model.loader import AUDIT_RULES
from cisaudit.model.locate import DEFAULT_DATA_ROOT, resolve, unknown_paths
from cisaudit.model.snapshot import PathInfo, Snapshot

PACKAGE = Path(__file__).resolve().parents[2] / "cisaudit"
C = {c.id: c for c in controls()}

# daemon.json text -> does the guess read it as the model does
DAEMON_JSON = {
    "one-line": ('{"data-root": "/srv/docker"}', True),
    "pretty": ('{\n  "debug": true,\n  "data-root" : "/mnt/d"\n}\n', True),
    "unset": ('{"debug": true}', True),
    "relative": ('{"data-root": "srv/docker"}', True),  # the model ignores it; the probe stats only /paths
    "escaped-quote": ('{"data-root": "/srv/do\\"cker"}', False),
    "split-line": ('{"data-root":\n  "/srv/split"}', False),
    "trailing-slash": ('{"data-root": "/srv/docker/"}', False),
    "unicode-escape": ('{"data-root": "/srv/\\u0064ocker"}', False),
}
CONTAINERD = {
    "grpc": ('version = 2\n[grpc]\n  address = "/run/k3s/containerd.sock"\n', True),
    "grpc-then-ttrpc": ('[grpc]\naddress="/x.sock"\n[ttrpc]\n  address = "/y.sock"\n', True),
    "no-address": ("[grpc]\n  uid = 0\n", True),
    "no-grpc": ('[ttrpc]\n  address = "/y.sock"\n', True),
    "literal-string": ("[grpc]\n  address = '/run/literal.sock'\n", False),
    "dotted-key": ('grpc.address = "/run/dotted.sock"\n', False),
}


def _guess(function: str, text: str, tmp_path: Path) -> str:
    config = tmp_path / "config"
    config.write_text(text)
    script = piece("probe-guess.sh") + f'{function} "$1"\n'
    out = subprocess.run(["sh", "-c", script, "sh", str(config)], capture_output=True, text=True, check=True)
    guess = out.stdout.strip()
    return guess if guess.startswith("/") else ""  # probe.sh stats only absolute paths


def _agree(control_id: str, guess: str, snap: Snapshot, agrees: bool) -> None:
    control = C[control_id]
    stated = {p for p in (guess, control.path) if p}  # what the one probe command stats
    snap.paths = {p: PathInfo(p, "dir", p) for p in stated}
    target = resolve(control, snap)
    if agrees:
        assert target.path == (guess or control.path)
    else:  # the guess missed: the model's path was not stat'ed, the session's follow-up stats it
        assert target.path not in stated and unknown_paths([target]) == [target.path]


@pytest.mark.parametrize(("text", "agrees"), DAEMON_JSON.values(), ids=DAEMON_JSON.keys())
def test_the_data_root_guess_and_the_model_agree(text: str, agrees: bool, tmp_path: Path) -> None:
    _agree("1.1.5", _guess("guess_data_root", text, tmp_path), Snapshot(daemon_json=text), agrees)


@pytest.mark.parametrize(("text", "agrees"), CONTAINERD.values(), ids=CONTAINERD.keys())
def test_the_containerd_socket_guess_and_the_model_agree(text: str, agrees: bool, tmp_path: Path) -> None:
    control = next(c for c in controls() if c.locate == "containerd-socket")
    guess = _guess("guess_containerd_socket", text, tmp_path)
    _agree(control.id, guess, Snapshot(containerd_config=text), agrees)


def test_the_guesses_are_made_in_one_place() -> None:
    shells = {p.name: p.read_text() for p in SCRIPTS.glob("*.sh")}
    assert [n for n, t in shells.items() if '"data-root"' in t or "grpc" in t] == ["probe-guess.sh"]


@pytest.mark.parametrize(
    ("value", "spelled", "home"),
    [
        (" ".join(TMPFILES_DIRS), "/usr/local/lib/tmpfiles.d", "boot.py"),
        (DEFAULT_DATA_ROOT, DEFAULT_DATA_ROOT, "locate.py"),
        (AUDIT_RULES, AUDIT_RULES, "loader.py"),
    ],
)
def test_shared_concepts_are_python_values_the_probe_is_given(value: str, spelled: str, home: str) -> None:
    """The tmpfiles.d search order, the default data-root and the boot-time rules file: written in
    the model once, passed to the shell as values, spelled in no host-side script."""
    assert not [p.name for p in SCRIPTS.glob("*.sh") if spelled in p.read_text()]
    assert [p.name for p in PACKAGE.rglob("*.py") if f'"{spelled}"' in p.read_text()] == [home]
    script, _ = render_probe(controls("1.7.0"))
    assert f"={value}\n" in script or f"='{value}'\n" in script
