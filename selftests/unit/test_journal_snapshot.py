"""The kernel sandbox puts the host-side journal back: a test's remediation runs leave no entry
that a later `--backout` without a run id could pick (selftests/kernel.py)."""

from __future__ import annotations

from pathlib import Path

from selftests.kernel import JournalSnapshot


def test_entries_made_after_the_snapshot_go_and_the_index_is_put_back(tmp_path: Path) -> None:
    root = tmp_path / "journal"
    (root / "old-run").mkdir(parents=True)
    (root / "index").write_text("old-run\n")
    snapshot = JournalSnapshot(root)
    (root / "new-run").mkdir()
    (root / "new-run" / "state").write_text("done\n")
    (root / "index").write_text("old-run\nnew-run\n")
    snapshot.restore()
    assert sorted(p.name for p in root.iterdir()) == ["index", "old-run"]
    assert (root / "index").read_text() == "old-run\n"


def test_a_journal_root_that_was_absent_is_removed_with_its_parents(tmp_path: Path) -> None:
    root = tmp_path / "var" / "lib" / "journal"
    snapshot = JournalSnapshot(root)
    (root / "run").mkdir(parents=True)
    snapshot.restore()
    assert not (tmp_path / "var").exists()
