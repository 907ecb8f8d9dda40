"""Small statistics shared by layers that may not import each other (the interval rules of
:mod:`advinterp.report.uncertainty` and the mutation loop of :mod:`advinterp.interpret.mutation`)."""

from __future__ import annotations

import math


def wilson_interval(successes: int, n: int, z: float) -> tuple[float, float]:
    """Wilson's (1927) score interval of a rate of ``successes`` in ``n`` at normal quantile ``z``
    (Newcombe 1998, method 3), clipped to ``[0, 1]``."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
