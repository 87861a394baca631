"""pytest plugin (`-p naive_counter`, bench/naive on PYTHONPATH): counts the remote commands
testinfra runs per host and writes them to $NAIVE_COUNT_DIR/<pid>.json. Every backend builds
exactly one CommandResult per command it ran, so BaseBackend.result is the place to count."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from testinfra.backend import base

COUNTS: Counter[str] = Counter()


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get("NAIVE_COUNT_DIR") or getattr(base.BaseBackend.result, "counted", False):
        return
    original = base.BaseBackend.result

    def result(self: base.BaseBackend, *args: Any, **kwargs: Any) -> base.CommandResult:
        COUNTS[self.get_pytest_id()] += 1
        return original(self, *args, **kwargs)

    result.counted = True  # type: ignore[attr-defined]
    base.BaseBackend.result = result  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    out = os.environ.get("NAIVE_COUNT_DIR")
    if out and COUNTS:
        (Path(out) / f"{os.getpid()}.json").write_text(json.dumps(COUNTS))
