"""Intervals on AUROCs and their differences that stay inside their range and move smoothly at its
edges (the detectors of chapters 5 and 6).

DeLong's (1988) variance is a plug-in: at perfect separation it is 0, and one discordant pair among
thousands gives a standard error of about 1e-4, so a Wald interval claims certainty exactly where a
finite sample knows least (and crosses 1 when floored). Here each AUROC gets a **score interval**
(Newcombe 2006, "Confidence intervals for an effect size measure based on the Mann-Whitney statistic.
Part 2", Stat. Med. 25: 559-573): the values theta whose distance to the estimate is within
``z * sqrt(V(theta))``, with Hanley and McNeil's (1982) variance under the exponential model written
as a function of theta::

    V(theta) = theta (1 - theta) [1 + (N* - 1) ((1 - theta) / (2 - theta) + theta / (1 + theta))] / (m n),

and Newcombe's N* = (m + n) / 2 for both group sizes (it makes the interval the same when the classes
swap). Like Wilson's interval for a rate, it lies inside [0, 1], is not degenerate at 0 or 1, and
moves continuously with the estimate. A difference of two AUROCs on the same cases combines the two
score intervals by Newcombe's (1998) and Zou and Donner's (2008) method of variance estimates recovery
(MOVER), with DeLong's correlation of the two AUROCs for the pairing (Sun and Xu's 2014 fast
structural components); a difference against a fixed number shifts the score interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import optimize, stats

from .stats import SeedEffect, z_quantile
from .validation import fail


def _placements(positives: np.ndarray, negatives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components (Sun and Xu 2014: midranks, ties counted as 1/2) of rows of
    scores, shape ``(..., m)`` and ``(..., n)``: per positive the share of negatives below it, per
    negative the share of positives above it."""
    m, n = positives.shape[-1], negatives.shape[-1]
    both = np.concatenate([positives, negatives], axis=-1)
    r_all = stats.rankdata(both, axis=-1)
    r_pos, r_neg = stats.rankdata(positives, axis=-1), stats.rankdata(negatives, axis=-1)
    v10 = (r_all[..., :m] - r_pos) / n
    v01 = 1.0 - (r_all[..., m:] - r_neg) / m
    return v10, v01


def _split(labels: np.ndarray) -> np.ndarray:
    y = np.asarray(labels).astype(bool)
    if y.ndim != 1 or y.all() or not y.any():
        fail("labels", f"{int(y.sum())} positives of {y.size}", "a 1-d array with both positive and negative cases")
    return y


def auroc_components(labels: np.ndarray, scores: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """AUROCs of each score for ``labels`` (1 = positive) and DeLong's covariance matrix of them. A score
    may be a 2-d array ``(P, cases)``: it then stands for the mean AUROC of its P rows (e.g. a
    permutation null's mean), whose structural components are the rows' mean components."""
    y = _split(labels)
    aucs, v10s, v01s = [], [], []
    for s in scores:
        s = np.asarray(s, dtype=float)
        v10, v01 = _placements(s[..., y], s[..., ~y])
        if v10.ndim == 2:
            v10, v01 = v10.mean(0), v01.mean(0)
        aucs.append(float(v10.mean()))
        v10s.append(v10)
        v01s.append(v01)
    k = len(aucs)
    s10 = np.cov(np.array(v10s)).reshape(k, k)
    s01 = np.cov(np.array(v01s)).reshape(k, k)
    return np.array(aucs), s10 / int(y.sum()) + s01 / int((~y).sum())


def score_variance(theta: float, m: int, n: int) -> float:
    """Hanley and McNeil's variance of an AUROC of ``theta`` with Newcombe's N* = (m + n) / 2."""
    big = (m + n) / 2
    return theta * (1 - theta) * (1 + (big - 1) * ((1 - theta) / (2 - theta) + theta / (1 + theta))) / (m * n)


def score_interval(auc: float, m: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The score interval of an AUROC ``auc`` with ``m`` positive and ``n`` negative cases (module
    docstring): the theta in [0, 1] with ``(auc - theta)^2 <= z^2 V(theta)``."""
    if not 0.0 <= auc <= 1.0:
        fail("auc", auc, "an AUROC in [0, 1]")
    z = z_quantile(level)

    def below(theta: float) -> float:   # > 0 where theta lies below the interval
        return (auc - theta) - z * math.sqrt(score_variance(theta, m, n))

    def above(theta: float) -> float:   # > 0 where theta lies above the interval
        return (theta - auc) - z * math.sqrt(score_variance(theta, m, n))

    # V vanishes at 0 and 1, so each bound is bracketed between the estimate (nudged off the edge,
    # where sqrt(V) is larger than the nudge) and the end of the range
    tiny = 1e-12
    lo = 0.0 if auc <= tiny or below(0.0) <= 0 else optimize.brentq(below, 0.0, auc - tiny, xtol=1e-14)
    hi = 1.0 if auc >= 1 - tiny or above(1.0) <= 0 else optimize.brentq(above, auc + tiny, 1.0, xtol=1e-14)
    return lo, hi


def _mover(d: float, a: tuple[float, float, float], b: tuple[float, float, float], rho: float) -> tuple[float, float]:
    """MOVER limits of ``d = a - b`` from each one's (estimate, lo, hi) and their correlation."""
    (ea, la, ua), (eb, lb, ub) = a, b
    lo = d - math.sqrt(max((ea - la) ** 2 - 2 * rho * (ea - la) * (ub - eb) + (ub - eb) ** 2, 0.0))
    hi = d + math.sqrt(max((ua - ea) ** 2 - 2 * rho * (ua - ea) * (eb - lb) + (eb - lb) ** 2, 0.0))
    return lo, hi


def auroc_interval(labels: np.ndarray, a: np.ndarray, b: np.ndarray | None = None, *,
                   reference: float | None = None, b_extra_var: float = 0.0, level: float = 0.95) -> SeedEffect:
    """``AUROC(a) - AUROC(b)`` on the same cases (paired), or ``AUROC(a) - reference`` for a fixed
    number, with its interval (module docstring). ``b`` may be 2-d ``(P, cases)``: the mean AUROC of
    its rows (a permutation null's mean on the same cases), whose interval is DeLong's normal one (a
    mean of many AUROCs near chance is far from the edges) widened by ``b_extra_var`` (the Monte Carlo
    variance of a mean over P random draws, ``var / P``); its correlation with ``AUROC(a)`` pairs them
    per case."""
    if (b is None) == (reference is None):
        fail("b", b, "either a second score b or a fixed reference AUROC (exactly one)")
    y = _split(labels)
    m, n = int(y.sum()), int((~y).sum())
    z = z_quantile(level)
    if b is None:
        (auc,), _ = auroc_components(y, [a])
        lo, hi = score_interval(float(auc), m, n, level)
        return SeedEffect(float(auc - reference), lo - reference, hi - reference, len(y))
    b = np.asarray(b, dtype=float)
    aucs, cov = auroc_components(y, [a, b])
    ea, eb = float(aucs[0]), float(aucs[1])
    la, ua = score_interval(ea, m, n, level)
    if b.ndim == 2:
        h = z * math.sqrt(max(float(cov[1, 1]) + b_extra_var, 0.0))
        lb, ub = eb - h, eb + h
    else:
        lb, ub = score_interval(eb, m, n, level)
    # the Monte Carlo part of b's variance is independent of a: it widens b's interval, not their covariance
    var_b = float(cov[1, 1]) + (b_extra_var if b.ndim == 2 else 0.0)
    rho = float(cov[0, 1] / math.sqrt(cov[0, 0] * var_b)) if cov[0, 0] > 0 and var_b > 0 else 0.0
    lo, hi = _mover(ea - eb, (ea, la, ua), (eb, lb, ub), rho)
    return SeedEffect(ea - eb, lo, hi, len(y))
