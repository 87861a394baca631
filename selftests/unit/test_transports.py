"""The transports (cisaudit/host/hostspec.py TRANSPORTS): one entry per scheme holds its grammar, its
?options, its backend and its capabilities; `docker://` is the proof that a new transport is one
entry. Inside a container the kernel's rules are the host's but the files are the container's: the
checks that read files are refused with one line, the kernel's are judged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cisaudit.host.hostspec import TRANSPORTS, Capability, SpecError, parse_spec, transport_of
from cisaudit.host.session import HostSession
from cisaudit.host.transport import ConnectOptions, TimedDockerBackend, open_host
from cisaudit.model.catalogue import controls
from cisaudit.model.evaluate import READS_HOST_FILES, Assessment
from cisaudit.model.verdict import CONTROL_CHECKS, HOST_CHECKS, Check, Status
from cisaudit.plugin import options
from selftests.snapshots import audited_host

BLIND = TRANSPORTS["docker"].blind


@pytest.mark.parametrize("text", ["docker://web", "docker://root@web-1.a_b", "docker://0123abcdef"])
def test_docker_specs_are_accepted(text: str) -> None:
    assert parse_spec(text).spec == text and transport_of(text).scheme == "docker"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("docker://--privileged", "container must be"),  # would reach the docker client as an option
        ("docker://-u@web", "user must be"),
        ("docker://<img src=x onerror=alert(1)>", "container must be"),  # the test id, in HTML
        ("docker://web?sudo=true", "container must be"),  # docker takes no ?options
        ("docker://", "container must be"),
        ("docker://a b", "container must be"),
    ],
)
def test_docker_specs_outside_the_grammar_are_refused(text: str, why: str) -> None:
    with pytest.raises(SpecError, match=why):
        parse_spec(text)


def test_each_scheme_takes_its_own_options() -> None:
    parse_spec("ssh://h?ssh_config=/etc/ssh/fleet")
    with pytest.raises(SpecError, match="unknown option 'ssh_config' \\(known: sudo, sudo_user\\)"):
        parse_spec("local://?ssh_config=/etc/ssh/fleet")


def test_capabilities_are_stated_per_transport() -> None:
    assert [s for s, t in TRANSPORTS.items() if t.can(Capability.FLEET_API)] == ["ssm"]
    for transport in TRANSPORTS.values():
        # a transport that cannot see the host's files says why, in the line every refused check shows
        assert bool(transport.blind) != transport.can(Capability.HOST_FILES), transport.scheme
    assert not TRANSPORTS["docker"].capabilities


def test_open_host_builds_each_backend_from_its_entry_alone() -> None:
    host = open_host("docker://root@web", ConnectOptions(command_timeout=7, max_output_bytes=99))
    backend = host.backend
    assert type(backend) is TimedDockerBackend
    assert (backend.name, backend.user, backend.command_timeout, backend.max_output_bytes) == ("web", "root", 7, 99)


def test_remediation_over_docker_is_a_usage_error() -> None:
    options.check_changes(["docker://web"], remediate=False, backout=False)
    options.check_changes(["ssh://web", "local://"], remediate=True, backout=True)
    for remediate, backout, flag in ((True, False, "--remediate"), (False, True, "--backout")):
        with pytest.raises(options.OptionError) as info:
            options.check_changes(["ssh://a", "docker://web"], remediate, backout)
        assert str(info.value).startswith(f"{flag}: docker://web cannot be changed") and "\n" not in str(info.value)


def test_a_blind_assessment_refuses_every_check_that_reads_files_and_judges_the_kernel_s() -> None:
    snap = audited_host()
    seeing, blind = Assessment(snap, "docker"), Assessment(snap, "docker", blind=BLIND)
    control = controls()[0]
    for check in CONTROL_CHECKS:
        shown = blind.control_verdict(control, check)
        if check in READS_HOST_FILES:
            assert (shown.status, shown.summary) == (Status.ERROR, f"not checked: {BLIND}")
        else:
            assert shown == seeing.control_verdict(control, check)
    for check in HOST_CHECKS:
        shown = blind.host_verdict(check)
        assert shown.summary.startswith("not checked") == (check in READS_HOST_FILES)
    assert {Check.LIVE, Check.AUDIT_ENABLED, Check.AUDITD_RUNNING}.isdisjoint(READS_HOST_FILES)
    assert {Check.PERSISTED, Check.EVENTS, Check.REMEDIATION, Check.BACKOUT} <= READS_HOST_FILES


def test_a_docker_host_s_session_refuses_persisted_and_judges_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through a stand-in `docker` client (no Docker needed) that runs `docker exec NAME CMD...`
    here: the real probe, then the verdicts of the session's assessment."""
    fake = tmp_path / "docker"
    fake.write_text('#!/bin/sh\n[ "$1 $2" = "exec web" ] || exit 99\nshift 2\nexec "$@"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    session = HostSession("docker://web", ConnectOptions(command_timeout=120), "docker", version="1.7.0")
    assessment = session.assessment()
    control = controls()[0]
    assert assessment.control_verdict(control, Check.PERSISTED).summary == f"not checked: {BLIND}"
    assert not assessment.control_verdict(control, Check.LIVE).summary.startswith("not checked")
    assert session.commands >= 1
