"""The test-host cache is named by its real path, however it is reached."""

from __future__ import annotations

from pathlib import Path

import pytest

from selftests.testhosts.image import cache_dir


def test_a_cache_reached_through_a_symlink_is_named_by_its_real_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "main" / "testhosts"
    real.mkdir(parents=True)
    (tmp_path / "worktree").mkdir()
    (tmp_path / "worktree" / ".cache").symlink_to(tmp_path / "main")
    monkeypatch.setenv("CISAUDIT_TESTHOSTS_CACHE", str(tmp_path / "worktree" / ".cache" / "testhosts"))
    assert cache_dir() == real.resolve()
