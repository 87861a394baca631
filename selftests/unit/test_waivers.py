"""Waiver files (InSpec's format plus `hosts`): parsing, line numbers in errors, expiry, host patterns."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cisaudit.model.waivers import (
    WaiverError,
    host_address,
    load_waivers,
    matching,
    parse_waivers,
    tag_sets,
    unapproved,
    unmatched,
    with_tagged,
)

IDS = {"1.1.4", "1.1.13"}
ON = dt.date(2027, 1, 1)  # the run's date: expiration dates at most MAX_DAYS after it
E = "  expiration_date: 2027-06-30\n"
INSPEC = """\
# as an InSpec user writes it
1.1.4:
  expiration_date: 2027-06-30
  justification: "containerd is not used on these hosts"
  run: false
1.1.13:
  justification: RHEL only
  expiration_date: 2027-03-01
  hosts:
    - "10.0.0.*"
    - ssh://root@web1
"""


def test_inspec_file_is_read_as_is() -> None:
    waivers = parse_waivers(INSPEC, "w.yaml", IDS, ON)
    first = waivers["1.1.4"]
    assert (first.justification, first.expiration_date, first.run, first.line) == (
        "containerd is not used on these hosts",
        dt.date(2027, 6, 30),
        False,
        2,
    )
    assert waivers["1.1.13"].run and waivers["1.1.13"].hosts == ("10.0.0.*", "ssh://root@web1")


def test_expires_on_its_date() -> None:
    waiver = parse_waivers(INSPEC, "w.yaml", IDS, ON)["1.1.4"]
    assert not waiver.expired(dt.date(2027, 6, 29))
    assert waiver.expired(dt.date(2027, 6, 30))
    assert not parse_waivers(INSPEC, "w.yaml", IDS, ON)["1.1.13"].expired(dt.date(2027, 2, 28))


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
    assert parse_waivers(INSPEC, "w.yaml", IDS, ON)["1.1.13"].covers(spec) is covered


def test_no_hosts_means_every_host() -> None:
    assert parse_waivers(INSPEC, "w.yaml", IDS, ON)["1.1.4"].covers("local://")


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
        ("1.1.4:\n  justification: x\n  run: 'no'\n" + E, "w.yaml:3: waiver 1.1.4: run must be true or false"),
        ("1.1.4:\n  justification: x\n  host: [a]\n", "w.yaml:3: waiver 1.1.4: unknown key 'host'"),
        ("1.1.4:\n  justification: x\n  hosts: web1\n" + E, "w.yaml:3: waiver 1.1.4: hosts must be a non-empty list"),
        ("\n\n1.1.99:\n  justification: x\n", "w.yaml:3: unknown control id '1.1.99'"),
        (
            "1.1.4: {justification: x, expiration_date: 2027-06-30}\n1.1.4: {justification: y}\n",
            "w.yaml:2: control 1.1.4 is waived twice (first at line 1)",
        ),
        ("1.1.4:\n  justification: [x\n", "w.yaml:3: not valid YAML"),
        ("- 1.1.4\n", "w.yaml:1: expected a mapping"),
    ],
)
def test_malformed_file_names_the_line(text: str, message: str) -> None:
    with pytest.raises(WaiverError) as caught:
        parse_waivers(text, "w.yaml", IDS, ON)
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
    path.write_bytes(("1.1.4:\n  justification: café\n" + E).encode("utf-8-sig"))
    assert load_waivers(str(path), IDS)["1.1.4"].justification == "café"


def test_control_characters_are_one_line() -> None:
    with pytest.raises(WaiverError) as info:
        parse_waivers("1.1.4:\n  justification: \x07\n", "w.yaml", IDS)
    assert "not valid YAML" in str(info.value) and "\n" not in str(info.value)


GOVERNED = """\
1.1.4:
  justification: containerd audited by the host agent
  expiration_date: 2027-06-30
  approved_by: jane.doe@example.com
  ticket: SEC-12
  scope:
    hosts: ["web*"]
    instance_ids: [i-0123456789abcdef0]
1.1.13:
  justification: RHEL only
  expiration_date: 2027-06-30
"""


def test_governed_waiver_carries_approver_ticket_and_scope() -> None:
    """Issue 25 item 2: approved_by, ticket and a scope of host globs and instance ids."""
    waivers = parse_waivers(GOVERNED, "w.yaml", IDS, ON)
    first = waivers["1.1.4"]
    assert (first.approved_by, first.ticket, first.hosts, first.instance_ids) == (
        "jane.doe@example.com",
        "SEC-12",
        ("web*",),
        ("i-0123456789abcdef0",),
    )
    assert first.reference() == "approved by jane.doe@example.com (SEC-12)"
    assert first.scope() == "hosts web*; instances i-0123456789abcdef0"
    assert waivers["1.1.13"].reference() == "no approver" and waivers["1.1.13"].scope() == "every host"
    assert unapproved(waivers) == [waivers["1.1.13"]]


@pytest.mark.parametrize(
    ("spec", "covered"),
    [
        ("ssm://i-0123456789abcdef0", True),
        ("ssm://i-0123456789abcdef1", False),
        ("ssh://root@web3", True),
        ("paramiko://10.0.0.2", False),
    ],
)
def test_scope_matches_globs_and_instance_ids(spec: str, covered: bool) -> None:
    waivers = parse_waivers(GOVERNED, "w.yaml", IDS, ON)
    assert (matching(waivers, spec, "1.1.4") is not None) is covered
    assert matching(waivers, spec, "1.1.13") is not None  # no scope: every host


def test_waiver_that_matches_nothing() -> None:
    waivers = parse_waivers(GOVERNED, "w.yaml", IDS, ON)
    assert unmatched(waivers, ["paramiko://10.0.0.2"], {"1.1.4", "1.1.13"}) == [waivers["1.1.4"]]
    assert unmatched(waivers, ["ssh://web1"], {"1.1.4"}) == [waivers["1.1.13"]]  # 1.1.13 not checked
    assert unmatched(waivers, ["ssh://web1"], {"1.1.4", "1.1.13"}) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.1.4:\n  justification: x\n", "w.yaml:1: waiver 1.1.4: expiration_date is required"),
        (
            "1.1.4:\n  justification: x\n  expiration_date: 2028-01-03\n",
            "w.yaml:3: waiver 1.1.4: expiration_date 2028-01-03 is more than 366 days ahead; renew it yearly",
        ),
        ("1.1.4:\n  justification: x\n" + E + "  scope: [web1]\n", "w.yaml:4: waiver 1.1.4: scope must be a mapping"),
        ("1.1.4:\n  justification: x\n" + E + "  scope: {}\n", "w.yaml:4: waiver 1.1.4: scope must be a mapping"),
        (
            "1.1.4:\n  justification: x\n" + E + "  scope:\n    ssm_tags: [Env]\n",
            "w.yaml:5: waiver 1.1.4: scope.ssm_tags must be a mapping of Key: Value",
        ),
        (
            "1.1.4:\n  justification: x\n" + E + "  scope:\n    ssm_tags: {}\n",
            "w.yaml:5: waiver 1.1.4: scope.ssm_tags must be a mapping of Key: Value",
        ),
        (
            "1.1.4:\n  justification: x\n" + E + "  scope:\n    ssm_tags: {Env: }\n",
            "w.yaml:5: the value of SSM tag 'Env' must be a non-empty",
        ),
        (
            "1.1.4:\n  justification: x\n" + E + "  scope:\n    ssm_tags: {Env: [a]}\n",
            "w.yaml:5: the value of SSM tag 'Env' must be a non-empty",
        ),
        (
            "1.1.4:\n  justification: x\n" + E + "  scope:\n    ssm_tags:\n      Env: a\n      Env: b\n",
            "w.yaml:7: waiver 1.1.4: SSM tag 'Env' is given twice",
        ),
        (
            "1.1.4:\n  justification: x\n" + E + "  scope:\n    host: [a]\n",
            "w.yaml:5: waiver 1.1.4: unknown scope 'host'",
        ),
        (
            "1.1.4:\n  justification: x\n" + E + "  scope:\n    instance_ids: [web1]\n",
            "w.yaml:5: waiver 1.1.4: 'web1' is not an instance id",
        ),
        (
            "1.1.4:\n  justification: x\n" + E + "  scope:\n    instance_ids: []\n",
            "w.yaml:5: waiver 1.1.4: scope.instance_ids must be a non-empty list",
        ),
        ("1.1.4:\n  justification: x\n" + E + "  approved_by: ''\n", "w.yaml:4: approved_by must be a non-empty"),
        ("1.1.4:\n  justification: x\n" + E + "  ticket: [a]\n", "w.yaml:4: ticket must be a non-empty"),
    ],
)
def test_governed_grammar_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(WaiverError) as caught:
        parse_waivers(text, "w.yaml", IDS, ON)
    assert str(caught.value).startswith(message), str(caught.value)


TAGGED = """\
1.1.4:
  justification: containerd audited by the host agent
  expiration_date: 2027-06-30
  scope:
    ssm_tags: {Team: web, Env: prod}
1.1.13:
  justification: RHEL only
  expiration_date: 2027-06-30
  scope:
    hosts: ["web*"]
    ssm_tags: {Env: prod, Team: web}
"""
WEB = "i-0123456789abcdef0"  # carries Env=prod and Team=web
OTHER = "i-0123456789abcdef1"


def test_scope_by_ssm_tags_parses_to_sorted_pairs() -> None:
    """Issue 25 item 2: scope.ssm_tags, every pair to match; one tag set to resolve for both waivers."""
    waivers = parse_waivers(TAGGED, "w.yaml", IDS, ON)
    assert waivers["1.1.4"].ssm_tags == (("Env", "prod"), ("Team", "web")) == waivers["1.1.13"].ssm_tags
    assert waivers["1.1.4"].scope() == "SSM tags Env=prod, Team=web"
    assert waivers["1.1.13"].scope() == "hosts web*; SSM tags Env=prod, Team=web"
    assert tag_sets(waivers) == [(("Env", "prod"), ("Team", "web"))]


@pytest.mark.parametrize(
    ("spec", "covered"),
    [
        (f"ssm://{WEB}", True),
        (f"ssm://{OTHER}", False),
        (f"paramiko://{WEB}", False),  # not ssm://: tags are SSM's, never matched
        ("local://", False),
    ],
)
def test_tag_scope_covers_the_resolved_ssm_instances_only(spec: str, covered: bool) -> None:
    waivers = with_tagged(parse_waivers(TAGGED, "w.yaml", IDS, ON), {(("Env", "prod"), ("Team", "web")): [WEB]})
    assert (matching(waivers, spec, "1.1.4") is not None) is covered


def test_unresolved_tag_scope_covers_nothing_and_kinds_combine_by_any() -> None:
    waivers = parse_waivers(TAGGED, "w.yaml", IDS, ON)
    assert matching(waivers, f"ssm://{WEB}", "1.1.4") is None  # never resolved: waives nothing
    assert unmatched(waivers, [f"ssm://{WEB}"], {"1.1.4", "1.1.13"}) == list(waivers.values())
    resolved = with_tagged(waivers, {(("Env", "prod"), ("Team", "web")): [WEB]})
    assert unmatched(resolved, [f"ssm://{WEB}"], {"1.1.4", "1.1.13"}) == []
    assert matching(resolved, "ssh://web2", "1.1.13") is not None  # the glob, or
    assert matching(resolved, f"ssm://{WEB}", "1.1.13") is not None  # the tags
    assert matching(resolved, f"ssm://{OTHER}", "1.1.13") is None
