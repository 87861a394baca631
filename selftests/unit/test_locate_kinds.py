"""The `locate` kinds (cisaudit/model/locate.py KINDS): a catalogue value outside them fails when the
catalogue loads, in one line naming the file, the control and the valid kinds; the probe asks the
host for exactly the names the model then reads."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from cisaudit.host import probe
from cisaudit.host.shell import piece
from cisaudit.model import catalogue
from cisaudit.model.catalogue import CatalogueError, Control
from cisaudit.model.locate import KINDS, ProbeList, parse_locate, resolve
from selftests import probe_frames

NONCE = "@@cisaudit-0123456789abcdef"


@pytest.fixture
def catalogue_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for version in catalogue.VERSIONS:
        shutil.copy(catalogue.BENCHMARKS / f"{version}.toml", tmp_path)
    monkeypatch.setattr(catalogue, "BENCHMARKS", tmp_path)
    catalogue._data.cache_clear()
    catalogue.controls.cache_clear()
    yield tmp_path
    catalogue._data.cache_clear()
    catalogue.controls.cache_clear()


@pytest.mark.parametrize("bad", ["binry:dockerd", "binary", "file:/etc/docker", "unit:a b", "unit:-x", ""])
def test_a_mistyped_locate_fails_when_the_catalogue_loads(catalogue_dir: Path, bad: str) -> None:
    path = catalogue_dir / "1.7.0.toml"
    path.write_text(path.read_text().replace('locate = "binary:dockerd"', f"locate = {bad!r}", 1))
    with pytest.raises(CatalogueError) as info:
        catalogue.controls("1.7.0")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: control 1.1.3: unknown locate {bad!r}")
    assert "binary:NAME, unit:NAME, socket:NAME, data-root, containerd-socket, file" in message


def test_the_shipped_catalogues_use_only_registered_kinds() -> None:
    for version in catalogue.VERSIONS:
        for control in catalogue.controls(version):
            assert parse_locate(control.locate)[0] is KINDS[control.locate.partition(":")[0]]


# What probe.sh prints for NAME in each of its lists ((section, arg, body), NAME in arg), the path
# the model must then find, and the NAME a control of that kind uses.
FOUND = {
    ProbeList.BINARIES: ([("binary", "x", "/opt/bin/x\n")], "/opt/bin/x", "x"),
    ProbeList.UNITS: (
        [
            ("systemd", "", "running\n"),
            (
                "unit-show",
                "",
                "Names=auditd.service\n\nNames=audit-rules.service\n\nNames=x.service\nFragmentPath=/etc/x.service\n",
            ),
        ],
        "/etc/x.service",
        "x.service",
    ),
    ProbeList.SOCKETS: (
        [("socket-unit", "x.socket", "[Socket]\nListenStream=/run/x.sock\n")],
        "/run/x.sock",
        "x.socket",
    ),
}


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_s_probe_names_and_model_agree(kind: str) -> None:
    """The probe lists the control's NAME in its kind's list (a shell variable probe.sh reads),
    stats the benchmark's path, and the model finds the path in what the probe prints for NAME."""
    listed = KINDS[kind].probe_list
    arg = FOUND[listed][2] if listed else ""
    control = Control("9.9", "t", 1, "/cis/path", "watch", f"{kind}:{arg}" if listed else kind)
    script, _ = probe.render_probe((control,))
    for name in ProbeList:
        assert f"{name}={arg}\n" in script if name == listed else f"{name}=''\n" in script
    assert "/cis/path" in script.split("PATHS=", 1)[1].split("\n", 1)[0]
    if listed is None:
        return
    sections, path, _ = FOUND[listed]
    snap = probe.parse_probe(probe_frames.framed(NONCE, *sections), NONCE, (control,))
    assert resolve(control, snap).path == path


def test_every_probe_list_is_read_by_probe_sh() -> None:
    text = piece("probe.sh")
    assert all(f"${name}" in text for name in ProbeList)
    assert set(FOUND) == set(ProbeList)  # a new list needs its case here
