"""How a claim's verdict is decided from an interval on its effect (the book's one rule).

An :class:`Effect` is a paired difference oriented so that the claim says it is **positive**
(e.g. ``consis_control - consis_adversarial`` for "consistency drops"), with its **smallest effect
of interest** ``delta`` chosen, with a one-line reason, before any number came in. Its interval
(:func:`advinterp.core.stats.combine`, 95 %) decides:

* **holds** - the interval lies above 0 (the effect is real and in the claimed direction); when it
  also lies below ``delta``, *holds, but smaller than delta*: real and too small to matter;
* **opposite** - the interval lies below 0: the reverse of the claim holds;
* **negligible** - neither of those, and the interval lies below ``delta``: whatever the effect is,
  it is smaller than the smallest effect of interest (it may cross 0: "no effect that matters");
* **inconclusive** - none of those: the interval reaches both 0 and ``delta``; :func:`decide` says
  how many seeds or images would settle it with 80 % power.

These partition every interval. A **non-inferiority** effect (``margin=True``: "reaches the paper's
number") moves both thresholds down by ``delta``: it holds when the interval lies above ``-delta``,
is *opposite* (falls short of the paper by more than delta) when it lies below ``-delta``, and is
inconclusive when it contains ``-delta`` (it cannot be negligible: its two thresholds coincide).

A claim may rest on several effects that must all hold (an intersection-union test, valid at the
same level without correction, Berger 1982): it holds when every effect holds (and is "smaller than
delta" when any of them is), is opposite when any effect is opposite, negligible when any other is
negligible, and inconclusive otherwise (:func:`combine_outcomes`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.validation import check_number
from ..core.stats import Interval, SeedEffect, combine, p_value, settle

HOLDS, OPPOSITE, NEGLIGIBLE, INCONCLUSIVE, UNMEASURED = (
    "holds", "opposite", "negligible", "inconclusive", "not measured")
#: every verdict, in the order tables and counts list them
VERDICTS = (HOLDS, OPPOSITE, NEGLIGIBLE, INCONCLUSIVE, UNMEASURED)


@dataclass(frozen=True)
class Effect:
    """A claim's effect: ``name`` is its results-file name (per-seed lists, see
    :func:`advinterp.core.stats.per_seed_metrics`), ``label`` what it is in words,
    ``delta`` the smallest effect of interest and ``reason`` why."""

    name: str
    label: str
    delta: float
    reason: str
    margin: bool = False
    #: the commit that declared ``delta`` with ``reason`` (its last entry in the append-only ledger
    #: :mod:`advinterp.report.ledger`, which keeps every earlier delta; ``tests/unit/test_ledger.py``)
    declared: str = ""
    #: where the effect's per-seed values live in a results file, when that depends on its parameters
    #: (e.g. the dissected network's deepest layer): observations -> results name; default ``name``
    source: Callable[[Mapping[str, Any]], str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_number(f"delta of {self.name}", self.delta, 0.0, None, lo_open=True)

    def results_name(self, observed: Mapping[str, Any]) -> str:
        """The name of this effect's per-seed values in ``observed`` (a results file's params + metrics)."""
        return self.name if self.source is None else self.source(observed)

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


def outcome_p(o: Outcome) -> float:
    """Two-sided p-value of "no effect" for an outcome, on the interval's own rule
    (:func:`advinterp.core.stats.p_value`), against its threshold's zero (``-delta`` for a
    non-inferiority margin)."""
    return p_value(o.interval, o.effect.threshold[0])


def above_words(o: Outcome) -> str:
    """An outcome as a comparison in prose ("the detector ... its null"): is above it / is above it,
    by less than delta / is below it (opposite) / is not above it by delta or more (negligible) /
    cannot be told from it yet."""
    if o.verdict == HOLDS:
        return "is above it, by less than δ" if o.small else "is above it"
    if o.verdict == OPPOSITE:
        return "is below it (opposite)"
    if o.verdict == NEGLIGIBLE:
        return "is not above it by δ or more (negligible)"
    return "cannot yet be told apart from it (inconclusive)"


def decide(effect: Effect, per_seed: Sequence[SeedEffect], seeds: Sequence[Any] | None = None) -> Outcome:
    """The verdict of ``effect`` from its per-seed estimates and image-level intervals (``seeds``: their
    names, so that a seed left out of the combination is named)."""
    iv = combine(per_seed, seeds=seeds)
    counts = [e.n for e in per_seed if e.n > 0 and e.finite]
    n_images = round(sum(counts) / len(counts)) if counts else None
    zero, delta = effect.threshold
    if iv.lo > zero:
        return Outcome(effect, HOLDS, iv, small=not effect.margin and iv.hi < delta)
    if iv.hi < zero:
        return Outcome(effect, OPPOSITE, iv)
    if iv.hi < delta:
        return Outcome(effect, NEGLIGIBLE, iv)
    return Outcome(effect, INCONCLUSIVE, iv, settle=settle(iv, zero, delta, n_images))


def combine_outcomes(outcomes: Sequence[Outcome]) -> tuple[str, Outcome]:
    """The verdict of a claim resting on every one of ``outcomes`` (intersection-union) and the
    outcome that decides it: the first opposite one, else the first negligible one, else the first
    inconclusive one; when all hold, the first that holds but is smaller than delta (so the claim
    keeps "smaller than delta"), else the one whose interval lies closest to its threshold (in
    units of delta)."""
    for verdict in (OPPOSITE, NEGLIGIBLE, INCONCLUSIVE):
        hit = [o for o in outcomes if o.verdict == verdict]
        if hit:
            return verdict, hit[0]
    small = [o for o in outcomes if o.small]
    if small:
        return HOLDS, small[0]
    weakest = min(outcomes, key=lambda o: (o.interval.lo - o.effect.threshold[0]) / o.effect.delta)
    return HOLDS, weakest
