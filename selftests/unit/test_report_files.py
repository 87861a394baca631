"""Issue 21.17: report files never written through a link, and no predictable scratch name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cisaudit.outputs.files import replaced
from cisaudit.outputs.junit import CaseSpool
from selftests.unit.test_junit_spool import PYTEST_FILE


def test_a_report_replaces_a_planted_symlink_and_leaves_its_target(tmp_path: Path) -> None:
    victim = tmp_path / "passwd"
    victim.write_text("root:x:0:0\n")
    report = tmp_path / "reports" / "results.json"
    report.parent.mkdir()
    report.symlink_to(victim)
    with replaced(report) as out:
        out.write("{}")
    assert victim.read_text() == "root:x:0:0\n" and not report.is_symlink() and report.read_text() == "{}"
    assert oct(report.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    assert sorted(p.name for p in report.parent.iterdir()) == ["results.json"]


def test_a_failed_report_leaves_the_old_one_and_no_scratch(tmp_path: Path) -> None:
    report = tmp_path / "r.xml"
    report.write_text("old")
    with pytest.raises(RuntimeError), replaced(report) as out:
        out.write("half")
        raise RuntimeError
    assert report.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.xml"]


def test_the_junit_case_spool_has_no_predictable_name(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(PYTEST_FILE)
    planted = tmp_path / "junit.xml.cases.tmp"
    target = tmp_path / "target"
    target.write_text("keep")
    planted.symlink_to(target)
    spool = CaseSpool(junit)
    assert spool.path != planted and spool.path.parent == tmp_path
    spool.merge_into(junit)
    assert target.read_text() == "keep" and not spool.path.exists()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
