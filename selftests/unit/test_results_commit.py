"""results.json's `commit`: the checkout's commit and whether it has local changes, from one git call."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cisaudit.outputs import results


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    _git(tmp_path, "init", "-q")
    monkeypatch.setattr(results, "REPO", tmp_path)
    results.commit.cache_clear()
    yield tmp_path
    results.commit.cache_clear()


def _commit(repo: Path) -> None:
    (repo / "a.txt").write_text("one\n")
    _git(repo, "add", "a.txt")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "one")


def test_commit_and_local_changes_take_one_git_call(checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: `git rev-parse` and `git status` ran as two processes on every run."""
    _commit(checkout)
    head = _git(checkout, "rev-parse", "--short=12", "HEAD")
    calls: list[list[str]] = []
    real = subprocess.run

    def counted(cmd: list[str], **kwargs: Any) -> Any:
        calls.append(cmd)
        return real(cmd, **kwargs)

    monkeypatch.setattr(results.subprocess, "run", counted)
    assert results.commit() == head
    assert len(calls) == 1
    (checkout / "a.txt").write_text("two\n")
    (checkout / "untracked.txt").write_text("not a change of the checkout\n")
    results.commit.cache_clear()
    assert results.commit() == head + "+dirty"


def test_no_commit_yet_or_no_git_is_unknown(checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert results.commit() == "unknown"  # `# branch.oid (initial)`
    results.commit.cache_clear()
    monkeypatch.setattr(results, "REPO", checkout / "absent")
    assert results.commit() == "unknown"
