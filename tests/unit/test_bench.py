"""The benchmark harness reports a median over alternating repeats with its spread: its arithmetic,
checked with a fake clock (wall-clock sleeps on a loaded machine would test the machine, not the code)."""

from __future__ import annotations

import pytest

from advinterp import bench


class FakeClock:
    """``perf_counter`` that only moves when a timed function says how long it took."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def spend(self, seconds: float):
        def work() -> None:
            self.now += seconds
        return work


def test_ratio_is_a_median_with_its_range(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(bench.time, "perf_counter", clock)
    r = bench._ratio(clock.spend(0.02), clock.spend(0.01), repeats=5)
    assert r == {"value": pytest.approx(2.0), "min": pytest.approx(2.0), "max": pytest.approx(2.0), "repeats": 5}
    scaled = bench._ratio(clock.spend(0.02), clock.spend(0.01), scale=2.0, repeats=3)
    assert scaled["value"] == pytest.approx(1.0)


def test_the_median_ignores_one_slow_spell(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(bench.time, "perf_counter", clock)
    durations = iter([0.1, 0.1] + [0.03, 0.01, 0.03, 0.01, 0.30, 0.01, 0.03, 0.01, 0.03, 0.01])

    def timed() -> None:
        clock.now += next(durations)

    r = bench._ratio(timed, timed, repeats=5)
    assert r["value"] == pytest.approx(3.0) and r["min"] == pytest.approx(3.0) and r["max"] == pytest.approx(30.0)
