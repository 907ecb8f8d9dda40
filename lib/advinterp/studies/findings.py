"""The papers' claims, each decided from a results file by an interval on its effect, at the
embedded default and in every recorded tier (CIFAR-10 on the CPU, CIFAR-10 on a GPU).

Each chapter's study declares the claims it tests with :func:`claim`: the paper, the claim in one
sentence, and the :class:`~advinterp.report.verdicts.Effect` (or effects, all of which must hold) it
is decided by, each with its smallest effect of interest and the reason for it. The study writes
every effect's per-seed estimates and image-level intervals into its results file
(:func:`advinterp.report.uncertainty.per_seed_metrics`); :func:`assess` reads them back and decides
the verdict by :mod:`advinterp.report.verdicts` - holds / refuted / inconclusive / not measured -
the same way for the chapter's live results and for a recorded run (:mod:`advinterp.report.recorded`),
so no verdict is typed by hand:

* :func:`at_scale` is a chapter's closing section "At scale: CIFAR-10": each finding on this page
  and in each recorded tier, side by side, with a sentence glued for the prose;
* :func:`scorecard` is the intro's table and :func:`forest` its picture: every claim, every tier.

A claim with ``counted=False`` is a tool the book relies on (chapter 1's ensemble transfer, Liu et
al.'s) rather than one of the four papers' claims: shown, never counted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..report import recorded as rec
from ..report.tables import Table
from ..report.uncertainty import from_metrics
from ..report.verdicts import HOLDS, INCONCLUSIVE, REFUTED, UNMEASURED, VERDICTS, Effect, Outcome
from ..report.verdicts import combine_outcomes, decide

__all__ = ["HOLDS", "REFUTED", "INCONCLUSIVE", "UNMEASURED", "VERDICTS", "Effect", "Claim", "Finding", "claim",
           "assess", "at_scale", "scorecard", "forest", "counts", "observations", "styled", "CLAIMS"]

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

    @property
    def uses(self) -> tuple[str, ...]:
        """The results names the claim reads."""
        return tuple(f"{e.name}{part}_per_seed" for e in self.effects for part in ("", "_lo", "_hi"))


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
        text = f"{o.words}{which}: {o.interval.text()}, n = {o.interval.n_seeds} seed(s)"
        return text + (f"; {o.settle}" if o.settle else "")


#: every declared claim, by chapter stem (filled as study modules are imported)
CLAIMS: dict[str, list[Claim]] = {}


def claim(key: str, paper: str, text: str, chapter: str, effects: Effect | tuple[Effect, ...], *,
          counted: bool = True, applies: Callable[[Metrics], str | None] | None = None) -> Claim:
    """Declare (and register) a claim."""
    c = Claim(key, paper, text, chapter, effects if isinstance(effects, tuple) else (effects,), counted, applies)
    CLAIMS[chapter] = [x for x in CLAIMS.get(chapter, []) if x.key != key] + [c]
    return c


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
        per_seed = from_metrics(e.name, metrics)
        if per_seed is None:
            # (a record made before verdicts were decided by intervals: its page says so at length)
            return Finding(c, UNMEASURED, note=f"no per-seed values of {e.name}")
        if not any(s.estimate == s.estimate and s.lo == s.lo for s in per_seed):  # every seed NaN
            why = metrics.get(f"{e.name}_why") or "no seed gave a finite estimate"
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
    """The effect(s) a claim is decided by, with delta and its reason."""
    return "; ".join(f"{e.label} (δ = {'-' if e.margin else ''}{e.delta:g}: {e.reason})" for e in c.effects)


def at_scale(chapter: str, live: Metrics, folder: Path | None = None) -> ScaleSection:
    """The chapter's findings on its live results (``live``: :func:`observations` of its results file,
    the embedded default) and in each recorded tier, and a sentence glued as ``scale_summary``."""
    claims = CLAIMS.get(chapter, [])
    if not claims:
        raise KeyError(f"chapter {chapter} declares no claims (advinterp.studies.findings.claim)")
    here = [assess(c, live) for c in claims]
    tiers = [tier_findings(c, folder) for c in claims]
    columns: dict[str, list[str]] = {"paper": [c.paper for c in claims], "finding": [c.text for c in claims],
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
        verdicts = [f.verdict for f, _, _ in found]
        agree = sum(a.verdict == b.verdict for a, (b, _, _) in zip(here, found))
        stale = rec.scale_index(folder).get(chapter, {}).get(tier, {}).get("stale")
        sentences.append(
            f"{title} (`{r.run}`, {len(r.seeds)} seed(s){'; ' + note if note else ''}): " + ", ".join(
                f"{verdicts.count(v)} {v}" for v in VERDICTS if verdicts.count(v)) +
            f"; {agree} of {len(claims)} verdict(s) as on this page."
            + (f" **This record is out of date:** {stale.rstrip('.')}." if stale else ""))
    summary = " ".join(sentences) + " The appendix gives each record's command and provenance."
    return ScaleSection(pd.DataFrame(columns), {"scale_summary": summary})


def styled(table: pd.DataFrame) -> Table:
    """``table`` for display in the HTML book and the PDF (:class:`advinterp.report.tables.Table`):
    every cell whole, left-aligned, no index."""
    return Table(table)


#: the scorecard's columns besides the recorded tiers
DEFAULT_TIER = "embedded default (MNIST sample, CPU)"


def scorecard(live: Mapping[str, Metrics | None], folder: Path | None = None) -> list[tuple[Claim, dict[str, Finding]]]:
    """Every claim of every chapter (chapters in order) with its finding at the embedded default
    (``live[chapter]``: :func:`observations` of that chapter's results file, None when it has not
    run) and in each recorded tier (keys: :data:`DEFAULT_TIER`, then the titles of
    :data:`advinterp.report.recorded.TIERS`)."""
    rows = []
    for chapter in sorted(CLAIMS):
        for c in CLAIMS[chapter]:
            found = {DEFAULT_TIER: assess(c, live.get(chapter))}
            found.update({rec.TIERS[t]: f for t, (f, _, _) in tier_findings(c, folder).items()})
            rows.append((c, found))
    return rows


def counts(rows: list[tuple[Claim, dict[str, Finding]]]) -> dict[str, int]:
    """How many of the papers' claims (``counted``) hold, are refuted, inconclusive or not measured
    in each tier: ``n_claims``, ``n_<verdict>_<tier>`` (tiers: ``default``, ``cpu``, ``gpu``)."""
    counted = [found for c, found in rows if c.counted]
    names = {DEFAULT_TIER: "default", **{title: tier for tier, title in rec.TIERS.items()}}
    out = {"n_claims": len(counted)}
    for title, short in names.items():
        verdicts = [found[title].verdict for found in counted]
        for v in VERDICTS:
            out[f"n_{v.replace(' ', '_')}_{short}"] = verdicts.count(v)
    return out


def forest(rows: list[tuple[Claim, dict[str, Finding]]]) -> pd.DataFrame:
    """One row per (claim, tier) that was decided: the deciding effect's estimate and interval in
    units of its delta (so every claim shares one axis: 0 = no effect, 1 = the smallest effect of
    interest), the verdict and whether the claim is counted (for :func:`advinterp.report.plotting
    .verdict_forest`)."""
    out = []
    for c, found in rows:
        for tier, f in found.items():
            if f.outcome is None:
                continue
            o, d = f.outcome, f.outcome.effect.delta
            out.append({"claim": f"{c.chapter[:2]} {c.key}", "text": c.text, "tier": tier, "verdict": f.verdict,
                        "estimate": o.interval.estimate / d, "lo": o.interval.lo / d, "hi": o.interval.hi / d,
                        "margin": o.effect.margin, "counted": c.counted})
    return pd.DataFrame(out)
