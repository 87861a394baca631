"""Building a host's model without the cyclic garbage collector walking it.

Parsing a host with thousands of rules allocates a few hundred thousand objects that all live as
long as the host's assessment: no garbage, no cycles to free. CPython collects its youngest
generation every 700 allocations and sometimes the older ones, each pass walking the objects
allocated so far: at 10,000 rules about 500 collections, a fifth of the model's CPU (README,
"Performance"). Pure code, no I/O.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


@contextmanager
def uncollected() -> Iterator[None]:
    """The collector paused for the block, and resumed after it only if it ran before (nested
    blocks, and a caller that disabled it, keep it as they found it)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def built_uncollected(func: Callable[P, T]) -> Callable[P, T]:
    """`func` run inside `uncollected()`: for what builds a host's long-lived model."""

    @wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        with uncollected():
            return func(*args, **kwargs)

    return run
