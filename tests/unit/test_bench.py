"""The benchmark harness reports a median over alternating repeats with its spread."""

from __future__ import annotations

import time

from advinterp import bench


def test_ratio_is_a_median_with_its_range():
    r = bench._ratio(lambda: time.sleep(0.02), lambda: time.sleep(0.01), repeats=5)
    assert r["repeats"] == 5 and r["min"] <= r["value"] <= r["max"]
    assert 1.3 < r["value"] < 3.5
    scaled = bench._ratio(lambda: time.sleep(0.02), lambda: time.sleep(0.01), scale=2.0, repeats=3)
    assert 0.6 < scaled["value"] < 1.8
