"""Host specs: the strict grammar (cisaudit.host.hostspec) and what reports show of a spec."""

from __future__ import annotations

import pytest

from cisaudit.host.hostspec import SpecError, parse_spec, redact_args, scrub

ACCEPTED = {
    "local://": "local://",
    "local://?sudo=true": "local://?sudo=true",
    "web1": "paramiko://web1",
    "root@10.0.0.7:22": "paramiko://root@10.0.0.7:22",
    "ssh://ops.admin@db-1.example.com.": "ssh://ops.admin@db-1.example.com.",
    "ssh://[::1]:2222?sudo=true&sudo_user=nobody": "ssh://[::1]:2222?sudo=true&sudo_user=nobody",
    "ssm://i-0123456789abcdef0": "ssm://i-0123456789abcdef0",
    "ssm://mi-01234567": "ssm://mi-01234567",
}


@pytest.mark.parametrize("text", ACCEPTED)
def test_accepted_specs(text: str) -> None:
    assert parse_spec(text).spec == ACCEPTED[text] == parse_spec(text).display


REFUSED = {
    "ssh://-oProxyCommand=touch${IFS}/tmp/x": "host must be",  # reached OpenSSH as an option
    "ssh://-oProxyCommand=x@h": "user must be",
    "paramiko://root@h?ssh_extra_args=-oProxyCommand=x": "unknown option 'ssh_extra_args'",
    "ssh://h?timeout=1": "unknown option 'timeout'",
    "ssh://h?sudo=yes": "bad value for option sudo",
    "ssh://h?sudo_user=-u": "bad value for option sudo_user",
    "ssh://h?sudo=true&sudo=false": "bad value for option sudo",
    "ssh://<img src=x onerror=alert(1)>": "host must be",  # pytest-html writes test ids unescaped
    "ssh://h<b>:22": "host must be",
    "ssh://999.1.1.1": "host must be",
    "ssh://h:0": "port must be 1-65535",
    "ssh://h:99999": "port must be 1-65535",
    "ssh://h:": "empty port",
    "ssh://[::1": "not an [IPv6] literal",
    "ssh://[::1]2222": "not an [IPv6] literal",
    "ssh://[nothex]": "not an [IPv6] literal",
    "ssm://i-0123": "managed instance id",
    "ssm://i-0123456789abcdef0?sudo=true": "managed instance id",
    "local://h": "takes no host",
    "ftp://h": "unsupported scheme",
    "": "host must be",
}


@pytest.mark.parametrize("text", REFUSED)
def test_refused_specs_name_the_spec_in_one_line(text: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    message = str(info.value)
    assert REFUSED[text] in message and repr(text.strip()) in message and "\n" not in message


@pytest.mark.parametrize(
    "text", ["ssh://root:hunter2@h", "paramiko://root:hun@ter2@h?ssh_identity_file=/k/id", "root:hunter2@h"]
)
def test_passwords_are_refused_and_never_shown(text: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    message = str(info.value)
    assert "passwords in host specs are refused" in message and "ssh_identity_file" in message
    assert "hunter2" not in message and "ter2" not in message and "/k/id" not in message
    assert "root:***@h" in message


def test_identity_file_is_redacted_in_display_and_messages() -> None:
    checked = parse_spec("paramiko://root@h:22?ssh_identity_file=/secret/id_ed25519&sudo=true")
    assert checked.spec == "paramiko://root@h:22?ssh_identity_file=/secret/id_ed25519&sudo=true"
    assert checked.display == "paramiko://root@h:22?ssh_identity_file=***&sudo=true"
    message = "cannot connect: No such file: '/secret/id_ed25519' or '/other/key'"
    assert scrub(message, checked.spec, "/other/key") == "cannot connect: No such file: '***' or '***'"


def test_the_command_line_in_reports_hides_identity_files() -> None:
    """Issue 21.13: the README says identity files show as ***; the Command of every report held them."""
    args = [
        "--hosts=ssh://root@a?ssh_identity_file=/k/a,paramiko://b?sudo=true&ssh_identity_file=/k/b",
        "--ssh-identity-file",
        "/k/c",
        "--ssh-identity-file=/k/d",
        "--known-hosts=/k/known",
    ]
    assert redact_args(args) == [
        "--hosts=ssh://root@a?ssh_identity_file=***,paramiko://b?sudo=true&ssh_identity_file=***",
        "--ssh-identity-file",
        "***",
        "--ssh-identity-file=***",
        "--known-hosts=/k/known",
    ]
