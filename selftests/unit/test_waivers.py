"""Waiver files (InSpec's format plus `hosts`): parsing, line numbers in errors, expiry, host patterns."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cisaudit.model.waivers import WaiverError, host_address, load_waivers, parse_waivers

IDS = {"1.1.4", "1.1.13"}
INSPEC = """\
# as an InSpec user writes it
1.1.4:
  expiration_date: 2027-06-30
  justification: "containerd is not used on these hosts"
  run: false
1.1.13:
  justification: RHEL only
  hosts:
    - "10.0.0.*"
    - ssh://root@web1
"""


def test_inspec_file_is_read_as_is() -> None:
    waivers = parse_waivers(INSPEC, "w.yaml", IDS)
    first = waivers["1.1.4"]
    assert (first.justification, first.expiration_date, first.run, first.line) == (
        "containerd is not used on these hosts",
        dt.date(2027, 6, 30),
        False,
        2,
    )
    assert waivers["1.1.13"].run and waivers["1.1.13"].hosts == ("10.0.0.*", "ssh://root@web1")


def test_expires_on_its_date() -> None:
    waiver = parse_waivers(INSPEC, "w.yaml", IDS)["1.1.4"]
    assert not waiver.expired(dt.date(2027, 6, 29))
    assert waiver.expired(dt.date(2027, 6, 30))
    assert not parse_waivers(INSPEC, "w.yaml", IDS)["1.1.13"].expired(dt.date(2999, 1, 1))


@pytest.mark.parametrize(
    ("spec", "covered"),
    [
        ("paramiko://root@10.0.0.7:2222?sudo=true", True),
        ("10.0.0.12", True),
        ("ssh://root@web1", True),
        ("paramiko://10.0.1.7", False),
        ("ssh://root@web10", False),
        ("local://", False),
    ],
)
def test_hosts_patterns_match_spec_or_address(spec: str, covered: bool) -> None:
    assert parse_waivers(INSPEC, "w.yaml", IDS)["1.1.13"].covers(spec) is covered


def test_no_hosts_means_every_host() -> None:
    assert parse_waivers(INSPEC, "w.yaml", IDS)["1.1.4"].covers("local://")


def test_host_address() -> None:
    assert host_address("paramiko://ops@10.0.0.2:22?sudo=true") == "10.0.0.2"
    assert host_address("web1") == "web1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.1.4:\n  run: false\n", "w.yaml:1: waiver 1.1.4: justification is required"),
        (
            "1.1.4:\n  justification: x\n  expiration_date: 2027-6-30\n",
            "w.yaml:3: waiver 1.1.4: expiration_date must be YYYY-MM-DD",
        ),
        *(  # issue 21.15: what fromisoformat takes but YYYY-MM-DD is not
            (f"1.1.4:\n  justification: x\n  expiration_date: '{d}'\n", "w.yaml:3: waiver 1.1.4: expiration_date must")
            for d in ("20270630", "2027-W26-3", "2027W263", "2027-06-30T00:00")
        ),
        ("1.1.4: " + "[" * 100_000, "w.yaml: nested too deeply"),  # issue 21.15: was a RecursionError
        ("1.1.4:\n  justification: x\n  run: 'no'\n", "w.yaml:3: waiver 1.1.4: run must be true or false"),
        ("1.1.4:\n  justification: x\n  host: [a]\n", "w.yaml:3: waiver 1.1.4: unknown key 'host'"),
        ("1.1.4:\n  justification: x\n  hosts: web1\n", "w.yaml:3: waiver 1.1.4: hosts must be a non-empty list"),
        ("\n\n1.1.99:\n  justification: x\n", "w.yaml:3: unknown control id '1.1.99'"),
        (
            "1.1.4:\n  justification: x\n1.1.4:\n  justification: y\n",
            "w.yaml:3: control 1.1.4 is waived twice (first at line 1)",
        ),
        ("1.1.4:\n  justification: [x\n", "w.yaml:3: not valid YAML"),
        ("- 1.1.4\n", "w.yaml:1: expected a mapping"),
    ],
)
def test_malformed_file_names_the_line(text: str, message: str) -> None:
    with pytest.raises(WaiverError) as caught:
        parse_waivers(text, "w.yaml", IDS)
    assert str(caught.value).startswith(message), str(caught.value)


def test_empty_file_waives_nothing() -> None:
    assert parse_waivers("# nothing yet\n", "w.yaml", IDS) == {}


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ("1.1.4:\n  justification: é\n".encode("utf-16"), "saved as UTF-16"),  # with BOM, as Windows editors save it
        ("1.1.4:\n  justification: ok\n".encode("utf-16-le"), "saved as UTF-16"),  # no BOM: NUL bytes
        ("1.1.4:\n  justification: café\n".encode("latin-1"), "w.yaml:2: not UTF-8 (byte 0xe9"),
    ],
    ids=["utf-16-bom", "utf-16-le", "latin-1"],
)
def test_a_file_not_in_utf8_is_one_line_saying_how_to_save_it(tmp_path: Path, data: bytes, why: str) -> None:
    path = tmp_path / "w.yaml"
    path.write_bytes(data)
    with pytest.raises(WaiverError) as info:
        load_waivers(str(path), IDS)
    message = str(info.value)
    assert why.replace("w.yaml", str(path)) in message and "save it as UTF-8" in message and "\n" not in message


def test_utf8_with_a_bom_is_read(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_bytes("1.1.4:\n  justification: café\n".encode("utf-8-sig"))
    assert load_waivers(str(path), IDS)["1.1.4"].justification == "café"


def test_control_characters_are_one_line() -> None:
    with pytest.raises(WaiverError) as info:
        parse_waivers("1.1.4:\n  justification: \x07\n", "w.yaml", IDS)
    assert "not valid YAML" in str(info.value) and "\n" not in str(info.value)
