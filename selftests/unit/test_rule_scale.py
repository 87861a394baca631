"""Hosts with thousands of rules (issue 26.1): the model's shortcuts give what the plain scans gave."""

from __future__ import annotations

import pytest

from cisaudit.model.evaluate import _mentions
from cisaudit.model.rules import AuditRule, lines_of, parse_rule

TEXT = (
    "# -w /etc/docker -k docker\n"
    "-w /etc/docker -p wa -k docker\n"
    "-w /etc/dockerd.conf -k x\n"
    "\n"
    "-a always,exit -F path=/usr/bin/runc -F perm=x\r\n"
    "-w /etc/docker/daemon.json -k docker\n"
    "  -w /run/containerd -k docker  \n"
    "-w /etc/docker"
)


def _scanned(texts, paths):
    """The scan _mentions replaced: every line tested against every path."""
    return [
        f"{source}:{n}: {line.strip()}"
        for source, text in texts
        for n, line in enumerate(lines_of(text), 1)
        if any(p in line for p in paths)
    ]


@pytest.mark.parametrize(
    "paths",
    [
        {"/etc/docker"},
        {"/etc/docker", "/run/containerd", "/usr/bin/runc"},
        {"/etc/docker\n-w"},
        {""},
        {"/nowhere"},
        {"-k docker\n", "docker"},
        set(),
    ],
)
def test_mentions_names_the_lines_a_scan_of_every_line_names(paths):
    texts = [("a.rules", TEXT), ("auditctl -l", TEXT.replace("\n", "\n\n") + "\n"), ("empty", "")]
    assert _mentions(texts, paths) == _scanned(texts, paths)


def test_a_parsed_line_is_shared_and_cannot_change():
    """parse_rule is cached: a rules file and the listing (and a fleet's hosts) repeat lines."""
    text = "-a always,exit -F arch=b64 -S execve -F path=/usr/bin/x -F auid!=unset -k k"
    rule = parse_rule(text)
    assert parse_rule(text) is rule and isinstance(rule, AuditRule)
    assert rule.identity is rule.identity  # computed once
    with pytest.raises(AttributeError):
        rule.path = "/elsewhere"  # type: ignore[misc]
