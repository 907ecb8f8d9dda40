"""The papers' claims, each decided from a results file by an interval on its effect, at the
embedded default and in every recorded tier (CIFAR-10 on the CPU, CIFAR-10 on a GPU).

Each chapter's study declares the claims it tests with :func:`claim`: the paper, the claim in one
sentence, and the :class:`~advinterp.report.verdicts.Effect` (or effects, all of which must hold) it
is decided by, each with its smallest effect of interest and the reason for it. The study writes
every effect's per-seed estimates and image-level intervals into its results file
(:func:`advinterp.report.uncertainty.per_seed_metrics`); :func:`assess` reads them back and decides
the verdict by :mod:`advinterp.report.verdicts` - holds / opposite / negligible / inconclusive /
not measured - the same way for the chapter's live results and for a recorded run (:mod:`advinterp.report.recorded`),
so no verdict is typed by hand:

* :func:`at_scale` is a chapter's closing section "At scale: CIFAR-10": each finding on this page
  and in each recorded tier, side by side, with a sentence glued for the prose;
* :func:`scorecard` is the intro's table and :func:`forest` its picture: every claim, every tier.

Each claim has a **protocol**: ``paper`` - the paper's own setting and comparison, as close as the
tier allows (the row the scorecard counts and headlines) - or ``extension`` - a control or setting
the book adds (a held-out network, a max-softmax bar), shown under the paper row it ``extends``,
marked, never counted. Every claim of the four papers has a ``paper`` row. A claim with
``counted=False`` is a tool the book relies on (chapter 1's ensemble transfer, Liu et al.'s) rather
than one of the four papers' claims: shown, never counted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.validation import check_choice, fail
from ..report import recorded as rec
from ..report.tables import Table
from ..report.uncertainty import from_metrics
from ..report.verdicts import HOLDS, INCONCLUSIVE, NEGLIGIBLE, OPPOSITE, UNMEASURED, VERDICTS, Effect, Outcome
from ..report.verdicts import combine_outcomes, decide

__all__ = ["HOLDS", "OPPOSITE", "NEGLIGIBLE", "INCONCLUSIVE", "UNMEASURED", "VERDICTS", "PROTOCOLS", "Effect",
           "Claim", "Finding", "claim", "assess", "at_scale", "scorecard", "forest", "counts", "observations",
           "styled"]

#: a claim's protocol: the paper's own setting and comparison, or one the book adds
PAPER, EXTENSION = "paper", "extension"
PROTOCOLS = (PAPER, EXTENSION)

Metrics = Mapping[str, Any]


@dataclass(frozen=True)
class Claim:
    """A claim of a paper that a chapter tests, decided by ``effects`` (all must hold). ``applies``
    returns why the claim cannot be decided on a results file (e.g. a paper's CIFAR-10 number on
    MNIST), or None."""

    key: str
    paper: str
    text: str
    chapter: str
    effects: tuple[Effect, ...]
    counted: bool = True
    applies: Callable[[Metrics], str | None] | None = None
    #: :data:`PAPER` or :data:`EXTENSION`
    protocol: str = PAPER
    #: the key of the paper row an extension sits under
    extends: str | None = None
    #: the claim in a short phrase (the scorecard's row)
    short: str = ""

    def __post_init__(self) -> None:
        check_choice(f"protocol of claim {self.key}", self.protocol, PROTOCOLS)
        if (self.protocol == EXTENSION) != (self.extends is not None):
            fail(f"extends of claim {self.key}", self.extends,
                 "the key of the paper row it extends, for an extension (and only for one)")

    @property
    def scored(self) -> bool:
        """Whether the scorecard counts it: a paper row of one of the four papers."""
        return self.counted and self.protocol == PAPER


@dataclass(frozen=True)
class Finding:
    """A claim decided on one results file: the verdict, the outcome that decides it (None when not
    measured, with ``note`` saying why) and every effect's outcome."""

    claim: Claim
    verdict: str
    outcome: Outcome | None = None
    outcomes: tuple[Outcome, ...] = field(default=())
    note: str = ""

    @property
    def words(self) -> str:
        return self.outcome.words if self.outcome is not None else self.verdict

    def cell(self) -> str:
        """The finding as one table cell: verdict, effect with its interval, and what settles it."""
        if self.outcome is None:
            return "not run yet" if self.note == "not run" else f"not measured ({self.note})"
        o = self.outcome
        which = f" ({o.effect.label})" if len(self.claim.effects) > 1 else ""
        text = f"{o.words}{which}: {o.interval.text()}, {seeds_words(o.interval.n_seeds)}"
        return text + (f"; {o.settle}" if o.settle else "")

    def short_cell(self) -> str:
        """The finding in a compact cell: verdict, effect and interval (and "one training run")."""
        if self.outcome is None:
            return "not run yet" if self.note == "not run" else "not measured"
        iv = self.outcome.interval
        return f"{self.outcome.words} {iv.text()}" + (" (one training run)" if iv.n_seeds == 1 else "")


def seeds_words(n: int) -> str:
    """How many training runs an interval rests on: "one training run" for a single seed."""
    return "one training run" if n == 1 else f"n = {n} seeds"


def claim(key: str, paper: str, text: str, chapter: str, effects: Effect | tuple[Effect, ...], *,
          counted: bool = True, applies: Callable[[Metrics], str | None] | None = None, protocol: str = PAPER,
          extends: str | None = None, short: str = "") -> Claim:
    """Declare a claim (a study lists its claims in its ``CLAIMS``)."""
    return Claim(key, paper, text, chapter, effects if isinstance(effects, tuple) else (effects,), counted, applies,
                 protocol, extends, short or text)


def assess(c: Claim, metrics: Metrics | None) -> Finding:
    """``c`` decided on ``metrics`` (``not measured`` when they are absent, when the claim does not
    apply to them, or when they lack an effect's per-seed values)."""
    if metrics is None:
        return Finding(c, UNMEASURED, note="not run")
    reason = c.applies(metrics) if c.applies is not None else None
    if reason:
        return Finding(c, UNMEASURED, note=reason)
    outcomes = []
    for e in c.effects:
        try:
            name = e.results_name(metrics)
        except KeyError as missing:
            return Finding(c, UNMEASURED, note=f"the results lack the parameter {missing} that locates the effect")
        per_seed = from_metrics(name, metrics)
        if per_seed is None:
            # (a record made before this effect was measured: its page says so at length)
            return Finding(c, UNMEASURED, note="no per-seed values of this effect in these results: they were "
                                               "made before it was measured")
        if not any(s.estimate == s.estimate and s.lo == s.lo for s in per_seed):  # every seed NaN
            why = metrics.get(f"{name}_why") or "no seed gave a finite estimate"
            return Finding(c, UNMEASURED, note=str(why))
        outcomes.append(decide(e, per_seed))
    verdict, deciding = combine_outcomes(outcomes)
    return Finding(c, verdict, deciding, tuple(outcomes))


def claim_words(claims: tuple[Claim, ...] | list[Claim], params: Mapping[str, Any], metrics: Mapping[str, Any]) -> dict[str, str]:
    """What a chapter's prose glues of each claim decided on its own results: ``<key>_verdict`` (the
    verdict in words) and ``<key>_interval`` (verdict, effect and interval: :meth:`Finding.cell`)."""
    observed = {**params, **metrics}
    out = {}
    for c in claims:
        f = assess(c, observed)
        out[f"{c.key}_verdict"], out[f"{c.key}_interval"] = f.words, f.cell()
    return out


def observations(payload: Mapping[str, Any]) -> dict[str, Any]:
    """What a claim reads from a results file: its parameters, then its metrics."""
    return {**payload.get("params", {}), **payload.get("metrics", {})}


def _recorded(record: rec.Record | None) -> dict[str, Any] | None:
    return None if record is None else {**record.params, **record.metrics}


def tier_findings(c: Claim, folder: Path | None = None) -> dict[str, tuple[Finding, rec.Record | None, str]]:
    """``c`` decided in each recorded tier: ``{tier: (finding, record, index note)}``."""
    out = {}
    for tier in rec.TIERS:
        record, note = rec.scale_record(c.chapter, tier, folder)
        finding = assess(c, _recorded(record))
        if record is None:
            finding = Finding(c, UNMEASURED, note="not run")
        out[tier] = (finding, record, note)
    return out


# ---- the views ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScaleSection:
    """A chapter's "At scale: CIFAR-10" section: the table and the glued words."""

    table: pd.DataFrame
    words: dict[str, str]


def effect_column(c: Claim) -> str:
    """The effect(s) a claim is decided by, with delta, its reason and where it was declared."""
    return "; ".join(f"{e.label} (δ = {'-' if e.margin else ''}{e.delta:g}: {e.reason}; declared in {e.declared}"
                     + (f"; {e.history}" if e.history else "") + ")" for e in c.effects)


def protocol_words(c: Claim) -> str:
    """``paper``, or ``extension (not counted)`` for a row the book adds under its paper row (tables)."""
    return c.protocol if c.protocol == PAPER else "extension (not counted)"


def ordered(claims: Sequence[Claim]) -> list[Claim]:
    """Paper rows in declaration order, each followed by the extensions that extend it."""
    papers = [c for c in claims if c.protocol == PAPER]
    out = []
    for p in papers:
        out += [p] + [c for c in claims if c.extends == p.key]
    return out + [c for c in claims if c not in out]


def at_scale(declared: Sequence[Claim], live: Metrics, folder: Path | None = None) -> ScaleSection:
    """A chapter's findings (``declared``: its study's ``CLAIMS``) on its live results (``live``:
    :func:`observations` of its results file, the embedded default) and in each recorded tier, and a
    sentence glued as ``scale_summary``."""
    claims = ordered(declared)
    if not claims:
        raise ValueError("at_scale needs a chapter's claims (its study's CLAIMS); none were given")
    chapter = claims[0].chapter
    if any(c.chapter != chapter for c in claims):
        raise ValueError(f"at_scale decides one chapter's claims; got {sorted({c.chapter for c in claims})}")
    here = [assess(c, live) for c in claims]
    tiers = [tier_findings(c, folder) for c in claims]
    columns: dict[str, list[str]] = {"paper": [c.paper for c in claims], "protocol": [protocol_words(c) for c in claims],
                                     "finding": [c.text for c in claims],
                                     "effect (δ: smallest effect of interest)": [effect_column(c) for c in claims],
                                     f"this page ({live.get('dataset', 'its data')})": [f.cell() for f in here]}
    sentences = []
    for tier, title in rec.TIERS.items():
        found = [t[tier] for t in tiers]
        columns[title] = [f.cell() for f, _, _ in found]
        records = [r for _, r, _ in found if r is not None]
        if not records:
            notes = sorted({n for _, _, n in found if n})
            sentences.append(f"{title}: not run yet" + (f" ({'; '.join(notes)})" if notes else "") + ".")
            continue
        r, note = records[0], next((n for _, _, n in found if n), "")
        verdicts = [f.verdict for (f, _, _), c in zip(found, claims) if c.protocol == PAPER]
        agree = sum(a.verdict == b.verdict for a, (b, _, _) in zip(here, found))
        stale = rec.scale_index(folder).get(chapter, {}).get(tier, {}).get("stale")
        sentences.append(
            f"{title} (`{r.run}`, {len(r.seeds)} seed(s){'; ' + note if note else ''}): " + ", ".join(
                f"{verdicts.count(v)} {v}" for v in VERDICTS if verdicts.count(v)) +
            " (paper rows)" + f"; {agree} of {len(claims)} verdict(s), extensions included, as on this page."
            + (f" **This record is out of date:** {stale.rstrip('.')}." if stale else ""))
    summary = " ".join(sentences) + " The appendix gives each record's command and provenance."
    return ScaleSection(pd.DataFrame(columns), {"scale_summary": summary})


def styled(table: pd.DataFrame) -> Table:
    """``table`` for display in the HTML book and the PDF (:class:`advinterp.report.tables.Table`):
    every cell whole, left-aligned, no index."""
    return Table(table)


#: the scorecard's columns besides the recorded tiers
DEFAULT_TIER = "embedded default (MNIST sample, CPU)"


def scorecard(claims: Mapping[str, Sequence[Claim]], live: Mapping[str, Metrics | None],
              folder: Path | None = None) -> list[tuple[Claim, dict[str, Finding]]]:
    """Every claim of every chapter (``claims``: each study's ``CLAIMS`` by chapter, in order) with its
    finding at the embedded default (``live[chapter]``: :func:`observations` of that chapter's
    results file, None when it has not run) and in each recorded tier (keys: :data:`DEFAULT_TIER`,
    then the titles of :data:`advinterp.report.recorded.TIERS`)."""
    rows = []
    for chapter in sorted(claims):
        for c in ordered(claims[chapter]):
            found = {DEFAULT_TIER: assess(c, live.get(chapter))}
            found.update({rec.TIERS[t]: f for t, (f, _, _) in tier_findings(c, folder).items()})
            rows.append((c, found))
    return rows


def counts(rows: list[tuple[Claim, dict[str, Finding]]]) -> dict[str, int]:
    """How many of the papers' claims (paper rows: :attr:`Claim.scored`) hold, are opposite, negligible,
    inconclusive or not measured in each tier: ``n_claims``, ``n_<verdict>_<tier>`` (tiers:
    ``default``, ``cpu``, ``gpu``), ``n_extensions``; ``n_holds_small_<tier>`` counts the holds that are
    smaller than delta, ``n_one_run_<tier>`` the verdicts resting on one training run."""
    counted = [found for c, found in rows if c.scored]
    out = {"n_claims": len(counted), "n_extensions": sum(c.protocol == EXTENSION for c, _ in rows)}
    names = {DEFAULT_TIER: "default", **{title: tier for tier, title in rec.TIERS.items()}}
    for title, short in names.items():
        verdicts = [found[title].verdict for found in counted]
        for v in VERDICTS:
            out[f"n_{v.replace(' ', '_')}_{short}"] = verdicts.count(v)
        decided = [found[title].outcome for found in counted if found[title].outcome is not None]
        out[f"n_holds_small_{short}"] = sum(o.verdict == HOLDS and o.small for o in decided)
        out[f"n_one_run_{short}"] = sum(o.interval.n_seeds == 1 for o in decided)
    return out


def forest(rows: list[tuple[Claim, dict[str, Finding]]]) -> pd.DataFrame:
    """One row per (claim, tier) that was decided: the deciding effect's estimate and interval in
    units of its delta (so every claim shares one axis: 0 = no effect, 1 = the smallest effect of
    interest), the verdict and whether the claim is counted (for :func:`advinterp.report.forest
    .verdict_forest`)."""
    out = []
    for c, found in rows:
        for tier, f in found.items():
            if f.outcome is None:
                continue
            o, d = f.outcome, f.outcome.effect.delta
            out.append({"claim": f"{c.chapter[:2]} {c.key}" + ("" if c.protocol == PAPER else " (ext.)"),
                        "text": c.text, "tier": tier, "verdict": f.verdict,
                        "estimate": o.interval.estimate / d, "lo": o.interval.lo / d, "hi": o.interval.hi / d,
                        "margin": o.effect.margin, "counted": c.scored})
    return pd.DataFrame(out)
