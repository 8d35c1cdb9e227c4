"""Stage timers (livereader.timing): totals while measuring, nothing otherwise, one count per stage at a time.

The stages run on a fake clock that each stage moves on by one second, so the totals are exact."""

import threading

import pytest

from livereader import timing


class _Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


_clock = _Clock()


@pytest.fixture(autouse=True)
def fake_clock(monkeypatch):
    monkeypatch.setattr(timing, "perf_counter", _clock)


@timing.timed("inner")
def _inner(seconds: float = 1.0) -> str:
    _clock.now += seconds
    return "inner"


@timing.timed("outer")
def _outer() -> str:
    _clock.now += 1.0
    return _inner()  # a stage inside another: counts in both


@timing.timed("recursive")
def _countdown(n: int) -> int:
    _clock.now += 1.0
    return n if n == 0 else _countdown(n - 1)  # the same stage inside itself: counts once


@timing.timed("inner")
def _also_inner() -> str:  # another function of the stage "inner", calling the first
    _clock.now += 1.0
    return _inner()


def test_totals_add_the_wall_time_of_each_stage_and_nested_stages_count_in_both():
    with timing.measuring() as totals:
        assert _outer() == "inner" and _inner(seconds=0.5) == "inner"
    assert totals == {"outer": 2.0, "inner": 1.5}


def test_outside_a_measurement_a_stage_only_calls_through():
    totals: dict[str, float] = {}
    assert _outer() == "inner"  # no measurement: nothing counted anywhere
    with timing.measuring(totals):
        pass
    assert totals == {}
    assert _inner.__name__ == "_inner" and _inner.__wrapped__(seconds=0.0) == "inner"  # type: ignore[attr-defined]


def test_a_stage_inside_itself_counts_once():
    with timing.measuring() as totals:
        assert _countdown(3) == 0  # four nested calls of "recursive", a second each
        _also_inner()  # "inner" inside "inner": two seconds in all
    assert totals == {"recursive": 4.0, "inner": 2.0}


def test_measurements_add_to_given_totals_one_at_a_time_and_on_their_own_thread():
    totals: dict[str, float] = {}
    for _ in range(2):
        with timing.measuring(totals):
            _inner()
    assert totals == {"inner": 2.0}
    with timing.measuring() as mine:
        with pytest.raises(RuntimeError), timing.measuring():
            pass
        other = threading.Thread(target=_outer)  # another thread's calls stay out
        other.start()
        other.join()
    assert mine == {}
    with pytest.raises(ValueError), timing.measuring() as totals:  # the timers close on an error
        _inner()
        raise ValueError
    assert _outer() == "inner" and totals == {"inner": 1.0}
