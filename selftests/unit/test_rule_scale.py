"""Hosts with thousands of rules (issue 26.1): the model's shortcuts give what the plain scans gave."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cisaudit.model.evaluate import _mentions
from cisaudit.model.rules import AuditRule, lines_of, parse_rule

REPO = Path(__file__).resolve().parents[2]

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


COUNT_SCANS = """
import collections, importlib.metadata as md, sys
reads = collections.Counter()
read_text = md.PathDistribution.read_text
def counted(self, filename):
    if filename == "entry_points.txt":
        reads[str(self._path)] += 1
    return read_text(self, filename)
md.PathDistribution.read_text = counted
import pytest
pytest.main(["--help", "-p", "no:cacheprovider"])
print("scans", max(reads.values()), file=sys.stderr)
"""


def test_the_plugins_modules_cost_no_scan_of_every_distributions_entry_points():
    """pytest read every installed distribution's entry_points.txt once per name in
    pytest_plugins (12 scans, about 800 failed lookups: 0.25 s on a host with 5,000 rules on
    absent paths); registered by the plugin itself, pytest's own scans remain."""
    out = subprocess.run([sys.executable, "-c", COUNT_SCANS], capture_output=True, text=True, check=True, cwd=REPO)
    scans = int(out.stderr.strip().splitlines()[-1].removeprefix("scans "))
    assert scans <= 3, f"{scans} scans of the installed distributions' entry points"
