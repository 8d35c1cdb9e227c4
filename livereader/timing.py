"""Wall time per pipeline stage, measured by explicit timers: what ``livereader-bench`` reports as the share of
livereader's time per stage.

A stage is a function decorated with :func:`timed`. Outside :func:`measuring` the decorator only calls through
(one test of a module global). Inside it, each call of a stage on the thread that measures adds its wall time
(``time.perf_counter``) to that stage's total, in seconds. Stages count cumulatively: a stage called inside another
counts in both. A call of a stage inside a call of the same stage (recursion, or two functions of one stage)
counts once, in the outer call.

    >>> with measuring() as totals:
    ...     read_frame(frame, models)
    >>> totals["finder patterns"]  # seconds inside find_finders

Standard library only: ``import livereader`` stays light.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from time import perf_counter
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

_totals: dict[str, float] | None = None  # the active measurement's seconds per stage; None when none is active
_thread = 0  # the thread that measures (its calls alone count, as with cProfile)
_open: set[str] = set()  # the stages with a call in progress on that thread


def timed(stage: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: count the wrapped function's calls as ``stage`` while :func:`measuring` (see the module)."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            totals = _totals
            if totals is None or stage in _open or threading.get_ident() != _thread:
                return function(*args, **kwargs)
            _open.add(stage)
            start = perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                totals[stage] = totals.get(stage, 0.0) + perf_counter() - start
                _open.discard(stage)

        return call

    return decorate


@contextmanager
def measuring(totals: dict[str, float] | None = None) -> Iterator[dict[str, float]]:
    """Measure the stages' calls of this thread while the block runs; yields the seconds per stage (only stages
    that ran have a key), added to ``totals`` where given (to sum several blocks). One measurement at a time:
    RuntimeError when one is already active."""
    global _totals, _thread
    if _totals is not None:
        raise RuntimeError("a stage measurement is already active")
    active = {} if totals is None else totals
    _totals, _thread = active, threading.get_ident()
    try:
        yield active
    finally:
        _totals = None
        _open.clear()
