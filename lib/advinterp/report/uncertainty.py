"""Intervals on the effects the book's verdicts are decided by, carrying both sources of noise:
which training run made the models (seeds) and which images were scored (sampling).

Every claim's effect is a *paired* difference (model A minus model B on the same seeds and images,
metric a minus metric b on the same images). A study estimates it once per seed, on that seed's
images, with an image-level interval for that seed (:class:`SeedEffect`):

* :func:`mean_interval` - the mean of per-image paired differences (normal, standard error
  ``sd / sqrt(n)``);
* :func:`bootstrap_interval` - any statistic of a set of images, by resampling the images
  (Efron and Tibshirani 1993, ch. 6: the bootstrap standard error, normal interval);
* :func:`delong_interval` - a difference of two AUROCs on the same cases, or one AUROC against a
  fixed number (DeLong, DeLong and Clarke-Pearson 1988, in Sun and Xu's 2014 fast form);
* :func:`newcombe_paired` - a difference of two rates on the same cases (Newcombe 1998, method 10:
  Wilson score limits with the correlation of the paired outcomes).

:func:`combine` turns the per-seed estimates into one interval (:class:`Interval`): with one seed,
that seed's image-level interval (never "no noise"); with S >= 2 seeds, the mean of the seed
estimates with the variance of one seed's estimate taken as the larger of the between-seed variance
(S - 1 degrees of freedom) and the mean image-level variance (the *floor*). The between-seed variance
already contains the image noise (each seed scores its own probe images); with three seeds it is a
poor estimate and can come out below the image noise that must be there, so it is floored at it.
The interval's quantile is Student's t with the degrees of freedom of the variance that is used
(Satterthwaite 1946): S - 1 when the seeds' spread is the larger, and the images' (the sum of the
seeds' n - 1: effectively the normal quantile) when the floor binds, since an image-level variance
rests on hundreds of images. So seeds that agree up to their images' noise narrow the interval as
1/sqrt(S), like more images would, and adding a seed identical to the others never widens it (a
t(S - 1) quantile on the floor made two identical seeds wider than one, and covered 99.5-100 %).

Coverage of the 95 % interval, simulated (100,000 draws; seed effects with a seed-to-seed standard
deviation tau on top of image noise of known standard error sigma; ``tests/unit/test_intervals.py``
checks the rows it names):

======  ======  ======  ======  ======  ======  ======  ======  ======
seeds   tau=0   0.5     1       1.5     2       3       5       10 sigma
======  ======  ======  ======  ======  ======  ======  ======  ======
2       96.6    95.1    91.5    88.4    87.0    86.7    89.1    92.7
3       96.8    95.6    93.5    92.6    92.8    93.7    94.7    95.0
5       97.0    96.1    94.8    94.7    94.8    94.9    95.0    95.0
======  ======  ======  ======  ======  ======  ======  ======  ======

It is near nominal when the seeds differ only by their images and when their own spread dominates;
in between, the floor binds on draws where the seeds happen to agree, and three seeds dip to about
92.5 %. Two seeds are poor whatever is done (one degree of freedom); the book's tiers use three and
label a one-seed verdict "one training run".

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

from ..core.stats import wilson_interval
from ..core.validation import check_int, fail

#: the level of every interval the verdicts read
LEVEL = 0.95


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
    #: standard deviation of one seed's estimate (between seeds, floored at the image noise)
    seed_sd: float
    level: float = LEVEL
    #: degrees of freedom of the quantile (``inf``: normal; ``n_seeds - 1`` when the seeds' spread is used)
    df: float = math.inf

    @property
    def se(self) -> float:
        """The standard error of the estimate (``seed_sd / sqrt(n_seeds)``)."""
        return self.seed_sd / math.sqrt(self.n_seeds)

    @property
    def floor_binds(self) -> bool:
        """Whether the interval rests on the images' noise (one seed, or seeds that agree up to it)."""
        return math.isinf(self.df)

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2

    def sign(self) -> int:
        """+1 when the interval lies above 0, -1 below, 0 when it contains 0."""
        return 1 if self.lo > 0 else -1 if self.hi < 0 else 0

    def text(self, digits: int = 3) -> str:
        """``+0.145 [+0.101, +0.189]``."""
        return f"{self.estimate:+.{digits}f} [{self.lo:+.{digits}f}, {self.hi:+.{digits}f}]"


def combine(per_seed: Sequence[SeedEffect], level: float = LEVEL) -> Interval:
    """One interval from every seed's estimate and image-level interval (see the module docstring)."""
    effects = [e for e in per_seed if all(math.isfinite(v) for v in (e.estimate, e.lo, e.hi))]
    if not effects:
        fail("per_seed", list(per_seed), "at least one seed with a finite estimate and interval")
    if len(effects) == 1:
        (e,) = effects
        return Interval(e.estimate, e.lo, e.hi, 1, e.se, level)
    m, sd, df, h = combine_arrays(np.array([e.estimate for e in effects]), np.array([e.se for e in effects]), level)
    return Interval(float(m), float(m - h), float(m + h), len(effects), float(sd), level, float(df))


def combine_arrays(estimates: np.ndarray, ses: np.ndarray, level: float = LEVEL
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`combine`'s arithmetic on arrays of shape ``(..., S)`` (S >= 2 seeds on the last axis):
    the mean, the floored seed standard deviation, the degrees of freedom and the half-width, each of
    shape ``(...)`` (vectorised, so that its coverage can be simulated on many draws)."""
    est, se = np.asarray(estimates, dtype=float), np.asarray(ses, dtype=float)
    s = est.shape[-1]
    within = np.mean(se ** 2, axis=-1)
    between = est.var(axis=-1, ddof=1)
    df = np.where(between > within, float(s - 1), np.inf)
    sd = np.sqrt(np.maximum(between, within))
    q = np.where(np.isinf(df), quantile(math.inf, level), quantile(float(s - 1), level))
    return est.mean(axis=-1), sd, df, q * sd / math.sqrt(s)


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


def _placements(positives: np.ndarray, negatives: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUROC and DeLong's structural components (Sun and Xu 2014: midranks), ties counted as 1/2."""
    m, n = len(positives), len(negatives)
    both = np.concatenate([positives, negatives])
    r_all = stats.rankdata(both)
    r_pos, r_neg = stats.rankdata(positives), stats.rankdata(negatives)
    v10 = (r_all[:m] - r_pos) / n          # per positive: share of negatives below it
    v01 = 1.0 - (r_all[m:] - r_neg) / m    # per negative: share of positives above it
    return float(v10.mean()), v10, v01


def auroc_components(labels: np.ndarray, scores: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """AUROCs of each score for ``labels`` (1 = positive) and DeLong's covariance matrix of them."""
    y = np.asarray(labels).astype(bool)
    if y.all() or not y.any():
        fail("labels", f"{int(y.sum())} positives of {len(y)}", "both positive and negative cases")
    aucs, v10s, v01s = [], [], []
    for s in scores:
        s = np.asarray(s, dtype=float)
        auc, v10, v01 = _placements(s[y], s[~y])
        aucs.append(auc)
        v10s.append(v10)
        v01s.append(v01)
    k = len(aucs)
    s10 = np.cov(np.array(v10s)).reshape(k, k)
    s01 = np.cov(np.array(v01s)).reshape(k, k)
    return np.array(aucs), s10 / int(y.sum()) + s01 / int((~y).sum())


def delong_interval(labels: np.ndarray, a: np.ndarray, b: np.ndarray | None = None, *,
                    reference: float | None = None) -> SeedEffect:
    """``AUROC(a) - AUROC(b)`` on the same cases (paired), or ``AUROC(a) - reference`` for a fixed
    number, with DeLong's normal interval."""
    if (b is None) == (reference is None):
        fail("b", b, "either a second score b or a fixed reference AUROC (exactly one)")
    k = min(int(np.sum(labels)), len(labels) - int(np.sum(labels)))
    if b is None:
        aucs, cov = auroc_components(labels, [a])
        return SeedEffect.normal(float(aucs[0] - reference), _delong_se(float(cov[0, 0]), k), len(labels))
    aucs, cov = auroc_components(labels, [a, b])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    return SeedEffect.normal(float(aucs[0] - aucs[1]), _delong_se(var, k), len(labels))


def _delong_se(var: float, k: int) -> float:
    """DeLong's standard error, or :func:`delong_se_floor` where the variance is degenerate (0)."""
    return math.sqrt(var) if var > 1e-12 else delong_se_floor(k)


def delong_se_floor(k: int) -> float:
    """The smallest standard error an AUROC (or a difference of two) is given, with ``k`` cases in
    the smaller class. DeLong's variance is 0 when the classes are perfectly separated (or both scores
    order every pair alike), which would claim certainty from a finite sample; the rule of three
    (Hanley and Lippman-Hand 1983) bounds an unobserved discordance rate by about 3/k at 95 %, so a
    degenerate interval becomes +-3/k: se = 3 / (1.96 k). A variance that is merely small (two
    nearly identical scores) is kept: it is what the data say."""
    return 3.0 / (z_quantile() * max(k, 1))


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

def p_value(effect: SeedEffect | Interval) -> float:
    """Two-sided p-value of "the effect is 0" from the same distribution as the effect's interval (for
    :func:`holm`): Student's t with the interval's degrees of freedom (:func:`combine`: S - 1 when
    the seeds' spread is used, which is the one-sample t-test of the seed estimates), normal for
    one seed's image-level interval or when the image-level floor binds."""
    se, df = effect.se, (math.inf if isinstance(effect, SeedEffect) else effect.df)
    if not se > 0:
        return 0.0 if effect.estimate != 0 else 1.0
    t = abs(effect.estimate) / se
    return float(2 * (stats.norm.sf(t) if math.isinf(df) else stats.t.sf(t, df)))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's (1979) step-down adjusted p-values: rejecting where the adjusted value is below alpha
    controls the family-wise error at alpha."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
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
    quantiles at the planned seeds' degrees of freedom, normal for images). With several seeds: about
    how many seeds at this seed-to-seed spread; with one: what two and three seeds would give if they
    agreed up to their images' noise, and about how many images per seed (the image noise falls as
    1/sqrt(n)). A rough estimate, as any power calculation from a pilot."""
    target = max(interval.estimate - lower, upper - interval.estimate)
    if target <= 1e-12:
        return "the estimate sits on the decision boundary: more data narrows the interval around it"
    level = interval.level

    def needed(df: float) -> float:
        return quantile(df, level) + (z_quantile(2 * POWER - 1) if math.isinf(df) else
                                      float(stats.t.ppf(POWER, df)))
    if interval.n_seeds >= 2:
        for s in range(interval.n_seeds + 1, 10_001):
            df = math.inf if interval.floor_binds else s - 1
            if needed(df) * interval.seed_sd / math.sqrt(s) < target:
                return f"about {s} seeds at this spread would settle it (80 % power)"
        return "more than 10,000 seeds at this spread: the effect is too noisy to settle this way"
    se = interval.se
    more = "; ".join(f"{k} seeds agreeing up to their images' noise: ±{quantile(math.inf, level) * se / math.sqrt(k):.3g}"
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
        finite = [e for e in effects if all(math.isfinite(v) for v in (e.estimate, e.lo, e.hi))]
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
    iv = combine(effects) if any(math.isfinite(e.estimate) for e in effects) else None
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
