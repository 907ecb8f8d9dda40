"""How a claim's verdict is decided from an interval on its effect (the book's one rule).

An :class:`Effect` is a paired difference oriented so that the claim says it is **positive**
(e.g. ``consis_control - consis_adversarial`` for "consistency drops"), with its **smallest effect
of interest** ``delta`` chosen, with a one-line reason, before any number came in. Its interval
(:func:`advinterp.report.uncertainty.combine`, 95 %) decides:

* **holds** - the interval lies above 0 (the effect is real and in the claimed direction); when it
  also lies below ``delta``, *holds, but smaller than delta*: real and too small to matter;
* **refuted** - not holds, and the interval lies below ``delta``: the effect, if any, is too small
  to matter, or opposite;
* **inconclusive** - neither: the interval reaches both 0 and ``delta``; :func:`decide` says roughly
  how many seeds or images would settle it.

These partition every interval. A **non-inferiority** effect (``margin=True``: "reaches the paper's
number") moves both thresholds down by ``delta``: holds when the interval lies above ``-delta``,
refuted when it lies below ``-delta``, inconclusive when it contains ``-delta``.

A claim may rest on several effects that must all hold (an intersection-union test, valid at the
same level without correction): it holds when every effect holds, is refuted when any effect is
refuted, and is inconclusive otherwise (:func:`combine_outcomes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..core.validation import check_number
from .uncertainty import Interval, SeedEffect, combine, settle

HOLDS, REFUTED, INCONCLUSIVE, UNMEASURED = "holds", "refuted", "inconclusive", "not measured"
#: every verdict, in the order tables and counts list them
VERDICTS = (HOLDS, REFUTED, INCONCLUSIVE, UNMEASURED)


@dataclass(frozen=True)
class Effect:
    """A claim's effect: ``name`` is its results-file name (per-seed lists, see
    :func:`advinterp.report.uncertainty.per_seed_metrics`), ``label`` what it is in words,
    ``delta`` the smallest effect of interest and ``reason`` why."""

    name: str
    label: str
    delta: float
    reason: str
    margin: bool = False

    def __post_init__(self) -> None:
        check_number(f"delta of {self.name}", self.delta, 0.0, None, lo_open=True)

    @property
    def threshold(self) -> tuple[float, float]:
        """The two bounds the interval is read against: ``(0, delta)``, or ``(-delta, -delta)``
        for a non-inferiority margin."""
        return (-self.delta, -self.delta) if self.margin else (0.0, self.delta)


@dataclass(frozen=True)
class Outcome:
    """One effect decided: its verdict, interval, whether it is smaller than ``delta`` (holds only)
    and, when inconclusive, what would settle it."""

    effect: Effect
    verdict: str
    interval: Interval
    small: bool = False
    settle: str = ""

    @property
    def words(self) -> str:
        """The verdict as a reader reads it (``holds, but smaller than delta``)."""
        if self.verdict == HOLDS and self.small:
            return f"holds, but smaller than δ = {self.effect.delta:g}"
        return self.verdict


def above_words(o: Outcome) -> str:
    """An outcome as a comparison in prose ("the detector ... its null"): is above it / is above it,
    by less than delta / is not above it by delta or more (refuted) / cannot be told from it yet."""
    if o.verdict == HOLDS:
        return "is above it, by less than δ" if o.small else "is above it"
    if o.verdict == REFUTED:
        return "is not above it by δ or more (refuted)"
    return "cannot yet be told apart from it (inconclusive)"


def decide(effect: Effect, per_seed: Sequence[SeedEffect]) -> Outcome:
    """The verdict of ``effect`` from its per-seed estimates and image-level intervals."""
    iv = combine(per_seed)
    counts = [e.n for e in per_seed if e.n > 0]
    n_images = round(sum(counts) / len(counts)) if counts else None
    zero, delta = effect.threshold
    if iv.lo > zero:
        return Outcome(effect, HOLDS, iv, small=not effect.margin and iv.hi < delta)
    if iv.hi < delta:
        return Outcome(effect, REFUTED, iv)
    return Outcome(effect, INCONCLUSIVE, iv, settle=settle(iv, zero, delta, n_images))


def combine_outcomes(outcomes: Sequence[Outcome]) -> tuple[str, Outcome]:
    """The verdict of a claim resting on every one of ``outcomes`` (intersection-union) and the
    outcome that decides it: the first refuted one, else the first inconclusive one, else the one
    whose interval lies closest to its threshold (in units of delta)."""
    for verdict in (REFUTED, INCONCLUSIVE):
        hit = [o for o in outcomes if o.verdict == verdict]
        if hit:
            return verdict, hit[0]
    weakest = min(outcomes, key=lambda o: (o.interval.lo - o.effect.threshold[0]) / o.effect.delta)
    return HOLDS, weakest
