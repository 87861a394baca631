"""The command line checked before any host is touched (cisaudit.plugin.options, pure; and
cisaudit.plugin.preflight, the files): each problem is one line that says what to do."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cisaudit.plugin import options, preflight
from cisaudit.plugin.options import Numbers, OptionError

KNOWN = ["1.1.3", "1.1.4", "1.1.10"]
GOOD = Numbers(connect_timeout=10, command_timeout=300, max_output_mb=32, aggregate_above=200)


def refused(call: object, *args: object) -> str:
    with pytest.raises(OptionError) as info:
        call(*args)  # type: ignore[operator]
    message = str(info.value)
    assert message and "\n" not in message
    return message


@pytest.mark.parametrize("hosts", ["", " ", ",", "web1,", ",web1", "web1,,web2", "web1, ,web2"])
def test_empty_hosts_or_entries_are_refused_not_this_machine(hosts: str) -> None:
    assert "empty (an unset variable?)" in refused(options.host_list, hosts, None)


@pytest.mark.parametrize(
    ("hosts", "connection", "specs"),
    [
        (None, None, ["local://"]),
        (None, "local", ["local://"]),
        ("web1", None, ["web1"]),  # hostspec.parse_spec makes it paramiko://web1, as testinfra does
        ("web1,ssh://web2", "ssh", ["ssh://web1", "ssh://web2"]),
        ("root@web1 , paramiko://web2", "ssh", ["ssh://root@web1", "paramiko://web2"]),
        ("i-0123456789abcdef0", "ssm", ["ssm://i-0123456789abcdef0"]),
    ],
)
def test_connection_is_the_scheme_of_bare_hosts(hosts: str | None, connection: str | None, specs: list[str]) -> None:
    assert options.host_list(hosts, connection) == specs


@pytest.mark.parametrize("connection", ["ansible", "podman", "safe-ssh", "winrm"])
def test_connections_the_suite_does_not_make_are_refused(connection: str) -> None:
    message = refused(options.host_list, "web1", connection)
    assert f"--connection={connection}" in message and "--hosts=ssh://" in message


def test_a_remote_connection_without_hosts_is_refused() -> None:
    assert "needs --hosts" in refused(options.host_list, None, "ssh")


@pytest.mark.parametrize(
    ("given", "instead"),
    [
        ({"ansible_inventory": "inventory.ini"}, "--hosts="),
        ({"force_ansible": True}, "--hosts"),
        ({"ssh_extra_args": "-o StrictHostKeyChecking=no"}, "--ssh-config FILE"),
    ],
)
def test_testinfra_options_the_suite_does_not_honour_name_what_to_use(given: dict[str, object], instead: str) -> None:
    assert instead in refused(options.refused_testinfra, given)


def test_testinfra_options_left_at_their_defaults_pass() -> None:
    options.refused_testinfra({"ansible_inventory": None, "force_ansible": False, "ssh_extra_args": None})


def test_controls() -> None:
    assert options.control_ids(None, KNOWN) == []  # absent: all
    assert options.control_ids(" 1.1.4,1.1.3 ", KNOWN) == ["1.1.4", "1.1.3"]
    assert "empty" in refused(options.control_ids, "", KNOWN)
    assert "entry 2 is empty" in refused(options.control_ids, "1.1.3,,1.1.4", KNOWN)
    message = refused(options.control_ids, "1.1.3,1.1.99,9", KNOWN)
    assert "unknown control id 1.1.99, 9" in message and "valid ids: 1.1.3, 1.1.4, 1.1.10" in message


def test_ssm_targets() -> None:
    assert options.ssm_targets(None) == []
    assert options.ssm_targets("i-0123456789abcdef0, tag:Role=docker,mi-01234567") == [
        "i-0123456789abcdef0",
        "tag:Role=docker",
        "mi-01234567",
    ]
    for bad in ("", "i-1,", "web1", "i-XYZ", "tag:Role", "tag:=x", "tag:Role="):
        refused(options.ssm_targets, bad)


@pytest.mark.parametrize(
    ("change", "option"),
    [
        ({"connect_timeout": -5}, "--connect-timeout"),  # testinfra would wait forever
        ({"connect_timeout": 0}, "--connect-timeout"),
        ({"connect_timeout": 0.5}, "--connect-timeout"),  # whole seconds: int(0.5) is no timeout
        ({"command_timeout": 0}, "--command-timeout"),
        ({"command_timeout": float("inf")}, "--command-timeout"),
        ({"command_timeout": float("nan")}, "--command-timeout"),
        ({"max_output_mb": 0}, "--max-output-mb"),
        ({"max_output_mb": -1}, "--max-output-mb"),
        ({"aggregate_above": -1}, "--aggregate-above"),
    ],
)
def test_numbers_out_of_range(change: dict[str, float], option: str) -> None:
    numbers = Numbers(**{**GOOD.__dict__, **change})
    assert refused(options.check_numbers, numbers).startswith(option)


def test_numbers_in_range() -> None:
    options.check_numbers(GOOD)
    options.check_numbers(Numbers(connect_timeout=1, command_timeout=0.5, max_output_mb=0.1, aggregate_above=0))


def test_dry_run_needs_a_change_and_the_audit_key_a_value() -> None:
    assert "add --remediate or --backout" in refused(options.check_modes, False, False, True)
    options.check_modes(True, False, True)
    options.check_modes(False, True, True)
    assert "--audit-key is empty" in refused(options.audit_keys, [" "])
    assert options.audit_keys(["docker"]).names == ("docker",) and options.audit_keys(None).names == ("docker",)


def test_input_files(tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    preflight.check_input("--known-hosts", str(known_hosts))
    preflight.check_input("--known-hosts", None)
    assert "No such file" in refused(preflight.check_input, "--known-hosts", str(tmp_path / "missing"))
    assert "is a directory" in refused(preflight.check_input, "--known-hosts", str(tmp_path))
    assert "is empty" in refused(preflight.check_input, "--known-hosts", "")


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("{tmp}", "is a directory"),
        ("/dev/full", "not a regular file"),  # opens, then every write fails (ENOSPC)
        ("/proc/cisaudit/results.json", "cannot write there"),
        ("/proc/results.json", "cannot write there"),
        ("{tmp}/file/results.json", "cannot write there"),  # a parent is a file
    ],
)
def test_unwritable_outputs(tmp_path: Path, path: str, why: str) -> None:
    (tmp_path / "file").write_text("")
    message = refused(preflight.check_outputs, {"results_json": path.format(tmp=tmp_path)})
    assert message.startswith("--results-json ") and why in message and "an empty value to write none" in message


def test_writable_outputs_are_checked_without_a_trace(tmp_path: Path) -> None:
    existing = tmp_path / "old.xml"
    existing.write_text("kept")
    before = existing.stat().st_mtime_ns
    preflight.check_outputs(
        {
            "xccdf": str(existing),
            "results_json": str(tmp_path / "new" / "dir" / "r.json"),
            "htmlpath": "",
            "xmlpath": None,
        }
    )
    assert existing.read_text() == "kept" and existing.stat().st_mtime_ns == before
    assert sorted(os.listdir(tmp_path)) == ["old.xml"]  # no probe file left, no directory made


def test_two_outputs_in_one_file_are_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "out")
    message = refused(preflight.check_outputs, {"results_json": path, "xmlpath": str(tmp_path / "." / "out")})
    assert "--junitxml and --results-json both write" in message


def test_ssm_targets_alone_are_the_hosts() -> None:
    assert options.host_list(None, None, ssm_targets=True) == []
    assert options.host_list(None, "ssm", ssm_targets=True) == []
    assert options.host_list("web1", None, ssm_targets=True) == ["web1"]
