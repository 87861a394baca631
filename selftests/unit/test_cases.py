"""The test-id grammar (cisaudit.plugin.cases) and its one parser."""

from __future__ import annotations

import pytest

from cisaudit.model.catalogue import controls
from cisaudit.plugin.cases import Case, host_of_nodeid

NODE = "tests/test_cis_docker_audit.py::test_control"


@pytest.mark.parametrize(
    "spec",
    [
        "local://",
        "ssh://root@[::1]:2222",
        "paramiko://[fe80::1%25eth0]",
        "ssm://i-0123456789abcdef0",
        "paramiko://ops@h?ssh_config=/etc/a|b[1]",
    ],
)
def test_spec_round_trips_through_the_id(spec: str) -> None:
    for case in (Case(spec, "live", controls()[0]), Case(spec, "load-health")):
        assert host_of_nodeid(f"{NODE}[{case.id}]") == spec


def test_a_path_with_brackets_does_not_confuse_the_parser() -> None:
    assert host_of_nodeid("odd[dir]/t.py::test_control[ssh://[::1]|1.1.3|live]") == "ssh://[::1]"


def test_other_tests_are_their_own_scope() -> None:
    assert host_of_nodeid("tests/test_mine.py::test_x[a-b]") == "tests/test_mine.py::test_x[a-b]"
    assert host_of_nodeid("tests/test_mine.py::test_y") == "tests/test_mine.py::test_y"
