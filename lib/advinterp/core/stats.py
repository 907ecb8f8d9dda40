"""Intervals on the effects the book's verdicts are decided by (in ``core`` so that every layer, the
interpretation methods among them, can use them), carrying both sources of noise:
which training run made the models (seeds) and which images were scored (sampling).

Every claim's effect is a *paired* difference (model A minus model B on the same seeds and images,
metric a minus metric b on the same images). A study estimates it once per seed, on that seed's
images, with an image-level interval for that seed (:class:`SeedEffect`):

* :func:`mean_interval` - the mean of per-image paired differences (normal, standard error
  ``sd / sqrt(n)``);
* :func:`bootstrap_interval` - any statistic of a set of images, by resampling the images
  (Efron and Tibshirani 1993, ch. 6: the bootstrap standard error, normal interval);
* :func:`advinterp.core.auroc.auroc_interval` - an AUROC against a fixed number, or the difference
  of two AUROCs on the same cases (score intervals that stay inside [0, 1], paired by DeLong's
  correlation: :mod:`advinterp.core.auroc`);
* :func:`newcombe_paired` - a difference of two rates on the same cases (Newcombe 1998, method 10:
  Wilson score limits with the correlation of the paired outcomes).

:func:`combine` turns the per-seed estimates into one interval (:class:`Interval`). With one seed, it
is that seed's image-level interval: it ignores how much another training run would move the effect,
so a one-seed verdict is labelled "one training run" and counted apart from the others. With S >= 2
seeds it is a random-effects meta-analysis of the seeds (each seed a study with its image-level
variance; Cochrane Handbook 10.10.4): DerSimonian and Laird's (1986) between-seed variance tau^2, the
inverse-variance weighted mean, and the wider of two intervals about it:

* Hartung and Knapp's (2001; Sidik and Jonkman 2002) - the weighted variance of the seed estimates
  about their mean, with Student's t at S - 1 degrees of freedom. With equal image-level variances it
  is exactly the one-sample t interval of the seed estimates, whose coverage is exact whatever the
  seed-to-seed spread;
* DerSimonian and Laird's normal interval - the images' noise (plus tau^2), which Hartung-Knapp's
  can fall below when the seeds happen to agree (it is 0 when they agree exactly).

Taking the wider (the ad hoc rule of IQWiG's General Methods 6.0, ``adhoc.hakn.ci = "IQWiG6"`` in
R's meta) keeps Hartung-Knapp's coverage, never claims more precision than the images give, and is
continuous in the data: nearly equal data sets get nearly equal intervals (the earlier rule switched
its quantile between t(S - 1) and normal where the seeds' spread crossed the image noise, and its
width jumped there sixfold). ``tests/unit/test_intervals.py`` checks both intervals against
statsmodels' ``combine_effects`` (verified by its authors against R's metafor).

Coverage of the 95 % interval, simulated (100,000 draws a cell; seed effects with a seed-to-seed
standard deviation tau on top of image noise of known standard error sigma; ``tests/unit/
test_intervals.py`` checks the 2-, 3- and 5-seed rows at 0, 1, 1.5 and 3 sigma):

======  ======  ======  ======  ======  ======  ======  ======  ======
seeds   tau=0   0.5     1       1.5     2       3       5       10 sigma
======  ======  ======  ======  ======  ======  ======  ======  ======
2       99.3    98.9    98.1    97.2    96.6    95.8    95.3    95.0
3       98.7    98.2    97.1    96.3    95.8    95.2    95.0    95.0
5       97.9    97.3    96.1    95.5    95.2    95.0    95.0    95.0
======  ======  ======  ======  ======  ======  ======  ======  ======

It never falls below 95 %; it is conservative where the seeds differ only by their images (there the
images' interval binds). The price of few seeds is width: two seeds use t(1) = 12.7.

All intervals are two-sided at :data:`LEVEL` = 95 %: the convention readers know, and a one-sided
error of 2.5 % for a false "holds" (the interval lies above 0 when the true effect is 0).
:func:`holm` controls the family-wise error of a family of descriptive comparisons, and
:func:`settle` estimates how many seeds or images an inconclusive effect would need.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from .validation import check_int, fail

#: the level of every interval the verdicts read
LEVEL = 0.95


def wilson_interval(successes: int, n: int, z: float) -> tuple[float, float]:
    """Wilson's (1927) score interval of a rate of ``successes`` in ``n`` at normal quantile ``z``
    (Newcombe 1998, method 3), clipped to ``[0, 1]``."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def z_quantile(level: float = LEVEL) -> float:
    """The two-sided normal quantile of ``level`` (1.96 at 95 %)."""
    return float(stats.norm.ppf(0.5 + level / 2))


@dataclass(frozen=True)
class SeedEffect:
    """One seed's estimate of an effect, its image-level interval (at :data:`LEVEL`) and the number
    of images (or cases) behind it."""

    estimate: float
    lo: float
    hi: float
    n: int = 0

    @property
    def se(self) -> float:
        """The standard error the interval implies (its half-width over the normal quantile)."""
        return (self.hi - self.lo) / (2 * z_quantile())

    @property
    def finite(self) -> bool:
        """Whether the estimate and both bounds are finite (a seed that can enter a combination)."""
        return all(math.isfinite(v) for v in (self.estimate, self.lo, self.hi))

    @classmethod
    def normal(cls, estimate: float, se: float, n: int = 0) -> SeedEffect:
        h = z_quantile() * se
        return cls(float(estimate), float(estimate - h), float(estimate + h), int(n))


@dataclass(frozen=True)
class Interval:
    """An effect's estimate and interval over every seed and image, and what it rests on."""

    estimate: float
    lo: float
    hi: float
    n_seeds: int
    #: standard deviation of one seed's estimate that the interval implies (``se * sqrt(n_seeds)``)
    seed_sd: float
    level: float = LEVEL
    #: degrees of freedom of the quantile: ``n_seeds - 1`` when Hartung-Knapp's interval is the wider,
    #: ``inf`` (normal) for one seed's image-level interval or when the images' interval is the wider
    df: float = math.inf
    #: the seeds left out of the combination, each with why (e.g. ``seed 2: no finite interval``)
    dropped: tuple[str, ...] = ()

    @property
    def se(self) -> float:
        """The standard error of the estimate (``seed_sd / sqrt(n_seeds)``)."""
        return self.seed_sd / math.sqrt(self.n_seeds)

    @property
    def floor_binds(self) -> bool:
        """Whether the interval rests on the images' noise (one seed, or seeds that agree up to it)."""
        return math.isinf(self.df)

    @property
    def one_run(self) -> bool:
        """Whether the interval rests on one training run (it then ignores the seed-to-seed spread)."""
        return self.n_seeds == 1

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2

    def text(self, digits: int = 3) -> str:
        """``+0.145 [+0.101, +0.189]``."""
        return f"{self.estimate:+.{digits}f} [{self.lo:+.{digits}f}, {self.hi:+.{digits}f}]"

    def seeds_words(self) -> str:
        """What the interval rests on: "one training run" or "n = 3 seeds", and any seed left out
        ("2 of 3 seeds; seed 2 left out: ...")."""
        if not self.dropped:
            return "one training run" if self.one_run else f"n = {self.n_seeds} seeds"
        total = self.n_seeds + len(self.dropped)
        used = "one training run" if self.one_run else f"{self.n_seeds} seeds"
        return f"{used} of {total} ({'; '.join(self.dropped)})"


def combine(per_seed: Sequence[SeedEffect], level: float = LEVEL, seeds: Sequence[Any] | None = None) -> Interval:
    """One interval from every seed's estimate and image-level interval (see the module docstring).
    A seed without a finite estimate and interval cannot enter it: it is left out, and the interval
    names it in :attr:`Interval.dropped` (by ``seeds[i]`` when given, else by its position)."""
    names = list(seeds) if seeds is not None and len(seeds) == len(per_seed) else list(range(len(per_seed)))
    effects = [e for e in per_seed if e.finite]
    dropped = tuple(f"seed {s} left out: no finite estimate and interval" for s, e in zip(names, per_seed)
                    if not e.finite)
    if not effects:
        fail("per_seed", list(per_seed), "at least one seed with a finite estimate and interval")
    if len(effects) == 1:
        (e,) = effects
        return Interval(e.estimate, e.lo, e.hi, 1, e.se, level, dropped=dropped)
    m, sd, df, h = combine_arrays(np.array([e.estimate for e in effects]), np.array([e.se for e in effects]), level)
    return Interval(float(m), float(m - h), float(m + h), len(effects), float(sd), level, float(df), dropped)


def combine_arrays(estimates: np.ndarray, ses: np.ndarray, level: float = LEVEL
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`combine`'s arithmetic on arrays of shape ``(..., S)`` (S >= 2 seeds on the last axis): the
    random-effects mean (DerSimonian-Laird weights), the standard deviation of one seed's estimate
    that the chosen interval implies, its degrees of freedom (S - 1 for Hartung-Knapp's, ``inf`` for
    the images' normal interval) and the half-width of the wider of the two, each of shape ``(...)``
    (vectorised, so that its coverage can be simulated on many draws)."""
    est, se = np.asarray(estimates, dtype=float), np.asarray(ses, dtype=float)
    s = est.shape[-1]
    within = np.maximum(se, 1e-12) ** 2
    w0 = 1.0 / within
    fixed = (w0 * est).sum(-1, keepdims=True) / w0.sum(-1, keepdims=True)
    q = (w0 * (est - fixed) ** 2).sum(-1)
    c = w0.sum(-1) - (w0 ** 2).sum(-1) / w0.sum(-1)
    tau2 = np.maximum(0.0, (q - (s - 1)) / c)                      # DerSimonian-Laird (1986)
    w = 1.0 / (within + tau2[..., None])
    mean = (w * est).sum(-1) / w.sum(-1)
    se_images = np.sqrt(1.0 / w.sum(-1))
    se_hk = np.sqrt((w * (est - mean[..., None]) ** 2).sum(-1) / ((s - 1) * w.sum(-1)))  # Hartung-Knapp
    h_hk, h_images = quantile(float(s - 1), level) * se_hk, quantile(math.inf, level) * se_images
    hk = h_hk >= h_images
    return (mean, np.where(hk, se_hk, se_images) * math.sqrt(s), np.where(hk, float(s - 1), math.inf),
            np.maximum(h_hk, h_images))


def quantile(df: float, level: float = LEVEL) -> float:
    """The two-sided quantile of Student's t with ``df`` degrees of freedom (normal when infinite)."""
    return z_quantile(level) if math.isinf(df) else float(stats.t.ppf(0.5 + level / 2, df))


# ---- one seed's interval, by the kind of effect ------------------------------------------------

def mean_interval(differences: Sequence[float] | np.ndarray) -> SeedEffect:
    """The mean of per-image paired differences (NaNs dropped) with its normal interval."""
    d = np.asarray(differences, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        fail("differences", len(d), "at least two finite paired differences")
    return SeedEffect.normal(float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d))), len(d))


def resamples(n: int, n_boot: int = 200, seed: int = 0) -> np.ndarray:
    """``(n_boot, n)`` indices of ``n`` images drawn with replacement (one bootstrap resample a row)."""
    check_int("n", n, 2)
    check_int("n_boot", n_boot, 20)
    return np.random.default_rng(seed).integers(0, n, (n_boot, n))


#: the share of bootstrap replicates that may be undefined (NaN) before a resample-based interval is refused
MAX_UNDEFINED = 0.05


def from_replicates(estimate: float, replicates: np.ndarray, n: int) -> SeedEffect:
    """The normal interval of ``estimate`` with the bootstrap standard error of ``replicates``
    (Efron and Tibshirani 1993, ch. 6). Replicates on which the statistic is undefined (NaN: e.g. a
    resample with no image of a class) are not silently dropped: dropping them conditions the
    bootstrap on the resamples that happen to work, so up to :data:`MAX_UNDEFINED` of them are left
    out with a warning that says how many, and more gives no interval (NaN), with a warning too."""
    reps = np.asarray(replicates, dtype=float)
    finite = reps[np.isfinite(reps)]
    undefined = len(reps) - len(finite)
    if not math.isfinite(estimate):
        return SeedEffect(float("nan"), float("nan"), float("nan"), n)
    if undefined:
        share = undefined / max(1, len(reps))
        refused = share > MAX_UNDEFINED or len(finite) < 2
        warnings.warn(f"{undefined} of {len(reps)} bootstrap replicates are undefined (NaN) for a statistic of "
                      f"{n} images: " + ("no interval is given (more than "
                                         f"{MAX_UNDEFINED:.0%} undefined)" if refused else "left out"),
                      UndefinedReplicates, stacklevel=2)
        if refused:
            return SeedEffect(float("nan"), float("nan"), float("nan"), n)
    return SeedEffect.normal(float(estimate), float(finite.std(ddof=1)), n)


class UndefinedReplicates(UserWarning):
    """Some bootstrap replicates of a statistic were undefined (:func:`from_replicates`)."""


def bootstrap_interval(statistic: Callable[[np.ndarray], float], n: int, *, n_boot: int = 200,
                       seed: int = 0) -> SeedEffect:
    """``statistic(indices)`` of ``n`` images on every image (the estimate), with the normal interval
    of its bootstrap standard error over ``n_boot`` resamples of the images (:func:`resamples`,
    :func:`from_replicates`)."""
    estimate = float(statistic(np.arange(n)))
    return from_replicates(estimate, np.array([statistic(i) for i in resamples(n, n_boot, seed)], dtype=float), n)


def newcombe_paired(a: np.ndarray, b: np.ndarray) -> SeedEffect:
    """``mean(a) - mean(b)`` of two 0/1 outcomes on the same cases, with Newcombe's (1998) interval
    for paired proportions (method 10: Wilson score limits combined with the phi correlation)."""
    a, b = np.asarray(a).astype(bool), np.asarray(b).astype(bool)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 1:
        fail("a", a.shape, f"two 1-d outcome arrays of the same length (b: {b.shape})")
    n = len(a)
    both, only_a, only_b = int((a & b).sum()), int((a & ~b).sum()), int((~a & b).sum())
    neither = n - both - only_a - only_b
    z = z_quantile()
    p1, p2 = (both + only_a) / n, (both + only_b) / n
    l1, u1 = wilson_interval(both + only_a, n, z)
    l2, u2 = wilson_interval(both + only_b, n, z)
    denom = (both + only_a) * (neither + only_b) * (both + only_b) * (neither + only_a)
    phi = (both * neither - only_a * only_b) / math.sqrt(denom) if denom > 0 else 0.0
    d = p1 - p2
    lo = d - math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    hi = d + math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    return SeedEffect(d, max(lo, -1.0), min(hi, 1.0), n)


# ---- families and power ----------------------------------------------------------------------

def p_value(effect: SeedEffect | Interval, null: float = 0.0) -> float:
    """Two-sided p-value of "the effect is ``null``" from the same distribution as the effect's
    interval (for :func:`holm`): Student's t with the interval's degrees of freedom (:func:`combine`:
    S - 1 when Hartung-Knapp's interval is the wider, which with equal image-level variances is the
    one-sample t-test of the seed estimates), normal for one seed's image-level interval or when the
    images' interval is the wider. So p < 1 - LEVEL exactly when the interval excludes ``null``. An
    undefined effect (NaN) has an undefined p-value (NaN), never 0."""
    se, df = effect.se, (math.inf if isinstance(effect, SeedEffect) else effect.df)
    if not (math.isfinite(effect.estimate) and math.isfinite(se)):
        return float("nan")
    if not se > 0:
        return 0.0 if effect.estimate != null else 1.0
    t = abs(effect.estimate - null) / se
    return float(2 * (stats.norm.sf(t) if math.isinf(df) else stats.t.sf(t, df)))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's (1979) step-down adjusted p-values: rejecting where the adjusted value is below alpha
    controls the family-wise error at alpha. An undefined p-value (NaN) stays NaN and does not count
    in the family's size."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(len(p), np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = len(finite)
    running = 0.0
    for rank, i in enumerate(finite[np.argsort(p[finite], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


#: the power :func:`settle` plans for
POWER = 0.80


def settle(interval: Interval, lower: float, upper: float, n_images: int | None = None) -> str:
    """What would settle an inconclusive effect with 80 % power (:data:`POWER`), at the observed
    estimate and spread: the interval is decisive once it lies above ``lower`` or below ``upper`` (0
    and delta for a claimed effect). If the true effect is the estimate, the interval excludes the
    nearer-to-miss bound with probability POWER once ``(q_level + q_power) * se`` falls below
    ``target = max(estimate - lower, upper - estimate)`` (the usual sample-size rule; ``q`` are t
    quantiles at the planned seeds' degrees of freedom, S - 1 as in Hartung-Knapp's interval, normal for
    images). With several seeds: about how many seeds at this seed-to-seed spread; with one: about
    what two and three seeds would give if they differed only by their images' noise (Hartung-Knapp's
    half-width at a seed spread equal to that noise), and about how many images per seed (the image
    noise falls as 1/sqrt(n)). A rough estimate, as any power calculation from a pilot."""
    target = max(interval.estimate - lower, upper - interval.estimate)
    if target <= 1e-12:
        return "the estimate sits on the decision boundary: more data narrows the interval around it"
    level = interval.level

    def needed(df: float) -> float:
        return quantile(df, level) + (z_quantile(2 * POWER - 1) if math.isinf(df) else
                                      float(stats.t.ppf(POWER, df)))
    if interval.n_seeds >= 2:
        for s in range(interval.n_seeds + 1, 10_001):
            if needed(s - 1) * interval.seed_sd / math.sqrt(s) < target:
                return f"about {s} seeds at this spread would settle it (80 % power)"
        return "more than 10,000 seeds at this spread: the effect is too noisy to settle this way"
    se = interval.se
    more = "; ".join(f"{k} seeds differing only by their images' noise: about ±{quantile(k - 1, level) * se / math.sqrt(k):.3g}"
                     for k in (2, 3))
    if n_images is None:
        return f"one training run: the interval must shrink to ±{target / needed(math.inf) * quantile(math.inf, level):.3g} ({more})"
    factor = (needed(math.inf) * se / target) ** 2
    return (f"one training run: about {math.ceil(n_images * factor):,} images per seed would settle it (80 % power; "
            f"{more})")


def combine_frame(table: Any, by: Sequence[str]) -> Any:
    """Per group of ``by`` in a table with one row per seed (columns ``estimate``, ``lo``, ``hi``), the
    combined interval (:func:`combine`): columns ``by``, ``estimate``, ``lo``, ``hi``, ``n_seeds``."""
    import pandas as pd

    rows = []
    for key, g in table.groupby(list(by), sort=False):
        effects = [SeedEffect(r.estimate, r.lo, r.hi) for r in g.itertuples()]
        finite = [e for e in effects if e.finite]
        iv = combine(finite) if finite else None
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))),
                     "estimate": iv.estimate if iv else float("nan"), "lo": iv.lo if iv else float("nan"),
                     "hi": iv.hi if iv else float("nan"), "n_seeds": iv.n_seeds if iv else 0})
    return pd.DataFrame(rows)


#: the parts of an effect in a results file: ``<name><part>_per_seed``
PARTS = ("", "_lo", "_hi", "_n")


def per_seed_metrics(name: str, per_seed: Mapping[int, SeedEffect]) -> dict[str, Any]:
    """The results-file form of an effect: ``<name>_per_seed``, ``<name>_lo_per_seed``,
    ``<name>_hi_per_seed`` and ``<name>_n_per_seed`` (images) in seed order (the chapter's ``seeds``
    say which), and the combined interval as ``<name>``, ``<name>_lo``, ``<name>_hi`` for the prose."""
    effects = list(per_seed.values())
    iv = combine(effects) if any(e.finite for e in effects) else None
    return {f"{name}_per_seed": [e.estimate for e in effects], f"{name}_lo_per_seed": [e.lo for e in effects],
            f"{name}_hi_per_seed": [e.hi for e in effects], f"{name}_n_per_seed": [e.n for e in effects],
            name: iv.estimate if iv else float("nan"), f"{name}_lo": iv.lo if iv else float("nan"),
            f"{name}_hi": iv.hi if iv else float("nan")}


def from_metrics(name: str, metrics: Mapping[str, Any]) -> list[SeedEffect] | None:
    """The per-seed effects :func:`per_seed_metrics` wrote (None when a list is missing)."""
    lists = [metrics.get(f"{name}{part}_per_seed") for part in PARTS]
    if any(not isinstance(v, list) for v in lists[:3]):
        return None
    counts = lists[3] if isinstance(lists[3], list) else [0] * len(lists[0])
    return [SeedEffect(*(float("nan") if x is None else float(x) for x in t[:3]), int(t[3] or 0))
            for t in zip(*lists[:3], counts)]
