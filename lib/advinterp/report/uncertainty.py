"""Confidence intervals for differences between models measured on the same images over several
seeds: a two-level (hierarchical) percentile bootstrap (Efron and Tibshirani 1993, ch. 13; the
two-stage resampling of Davison and Hinkley 1997, sec. 3.8).

Each replicate draws the seeds with replacement and, inside each drawn seed, that seed's images
with replacement, and takes the mean of the paired per-image differences ``a - b``. Resampling
both levels carries both sources of variation into the interval: which images were scored and
which training run produced the models. With one seed only the images are resampled (the interval
then says nothing about training variation; the chapters say so).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..core.validation import check_int, check_number, fail


@dataclass(frozen=True)
class Interval:
    """The mean paired difference and its bootstrap confidence interval."""

    mean: float
    lo: float
    hi: float
    level: float

    @property
    def excludes_zero(self) -> bool:
        return self.lo > 0 or self.hi < 0

    def sign(self) -> int:
        """+1 when the interval lies above 0, -1 below, 0 when it contains 0."""
        return 1 if self.lo > 0 else -1 if self.hi < 0 else 0


def paired_bootstrap(differences: Mapping[int, np.ndarray], *, n_boot: int = 2000, level: float = 0.95,
                     seed: int = 0) -> Interval:
    """Interval for the mean of per-image differences, ``differences[seed] = a - b`` per image
    (NaNs, e.g. images where a metric is undefined, are dropped)."""
    check_int("n_boot", n_boot, 10)
    check_number("level", level, 0.0, 1.0, lo_open=True, hi_open=True)
    groups = [np.asarray(d, dtype=float) for d in differences.values()]
    groups = [g[~np.isnan(g)] for g in groups]
    groups = [g for g in groups if len(g)]
    if not groups:
        fail("differences", "no finite values", "at least one finite paired difference")
    rng = np.random.default_rng(seed)
    point = float(np.mean([g.mean() for g in groups]))
    k = len(groups)
    chosen = rng.integers(0, k, (n_boot, k)) if k > 1 else np.zeros((n_boot, 1), dtype=int)
    # an independent image resample for every (replicate, slot): bank[g][r * k + s]
    bank = [g[rng.integers(0, len(g), (n_boot * k, len(g)))].mean(1) for g in groups]
    slot = np.arange(n_boot * k).reshape(n_boot, k)
    means = np.stack([bank[g][slot] for g in range(k)])  # (k, n_boot, k)
    replicates = np.take_along_axis(means, chosen[None], 0)[0].mean(1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(replicates, [alpha, 1 - alpha])
    return Interval(point, float(lo), float(hi), level)
