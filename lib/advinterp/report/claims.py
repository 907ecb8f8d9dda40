"""The papers' claims, each decided from a results file by an interval on its effect, at the
embedded default and in every recorded tier (CIFAR-10 on the CPU, CIFAR-10 on a GPU).

Each chapter's study declares the claims it tests with :func:`claim`: the paper, the claim in one
sentence, and the :class:`~advinterp.report.verdicts.Effect` (or effects, all of which must hold) it
is decided by, each with its smallest effect of interest and the reason for it. The study writes
every effect's per-seed estimates and image-level intervals into its results file
(:func:`advinterp.core.stats.per_seed_metrics`); :func:`assess` reads them back and decides
the verdict by :mod:`advinterp.report.verdicts` - holds / opposite / negligible / inconclusive /
not measured - the same way for the chapter's live results and for a recorded run (:mod:`advinterp.report.recorded`),
so no verdict is typed by hand:

* :func:`at_scale` is a chapter's closing section "At scale: CIFAR-10": each finding on this page
  and in each recorded tier, side by side, with a sentence glued for the prose;
* :func:`scorecard` is the intro's table and :func:`forest` its picture: every claim, every tier.

Each claim has a **protocol**: ``paper`` - the paper's own setting and comparison, as close as the
tier allows (the row the scorecard counts and headlines) - or ``extension`` - a control or setting
the book adds (a held-out network, a max-softmax bar), shown under the paper row it ``extends``,
marked, never counted - or ``premise`` - what a paper builds on rather than what it finds (Moshe et
al. start from robust models being more interpretable): shown, never counted. Every claim of the four
papers has a ``paper`` row. A claim with ``counted=False`` is a tool the book relies on (chapter 1's
ensemble transfer, Liu et al.'s) rather than one of the four papers' claims: shown, never counted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.validation import check_choice, fail
from ..core.stats import LEVEL, from_metrics, holm
from . import ledger
from . import recorded as rec
from .tables import Table
from .verdicts import HOLDS, INCONCLUSIVE, NEGLIGIBLE, OPPOSITE, UNMEASURED, VERDICTS, Effect, Outcome
from .verdicts import combine_outcomes, decide, outcome_p

__all__ = ["HOLDS", "OPPOSITE", "NEGLIGIBLE", "INCONCLUSIVE", "UNMEASURED", "STALE", "INCOMPLETE", "NOT_COMPARABLE",
           "VERDICTS", "PROTOCOLS", "Effect",
           "Claim", "Finding", "claim", "assess", "at_scale", "scorecard", "forest", "counts", "observations",
           "styled"]

#: what a claim reads in a tier whose record is stale (made by code that no longer measures what the
#: chapter measures): shown with its reason, never a verdict, counted nowhere
STALE = "stale"

#: what a claim reads in a tier recorded in stretches until all the seeds it plans are in ("2 of 3 seeds
#: recorded"): counted nowhere yet
INCOMPLETE = "incomplete"

#: what a paper row reads when it compares this run with a number the paper measured in a setting this run
#: does not share (chapter 6: the paper's ResNet-20 AUROC against a small CNN): the effect is shown, not counted
NOT_COMPARABLE = "not comparable"

#: a claim's protocol: the paper's own setting and comparison, one the book adds, or a premise the paper
#: builds on (not its finding: shown, never counted)
PAPER, EXTENSION, PREMISE = "paper", "extension", "premise"
PROTOCOLS = (PAPER, EXTENSION, PREMISE)

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
    #: for a paper row read against a number the paper measured: why a results file's run is not
    #: comparable with the paper's (another network, say), or None; such a run is shown, not counted
    comparable: Callable[[Metrics], str | None] | None = None

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
    measured, with ``note`` saying why), every effect's outcome, and how an earlier delta of an effect
    (:func:`advinterp.report.ledger.earlier`) would have decided the claim, when differently."""

    claim: Claim
    verdict: str
    outcome: Outcome | None = None
    outcomes: tuple[Outcome, ...] = field(default=())
    note: str = ""
    #: e.g. ``negligible at the earlier δ = 0.01 (declared in 6838ddf, 2026-11-25)``
    earlier: tuple[str, ...] = ()

    @property
    def words(self) -> str:
        """The verdict in words; a run that is not comparable says so before what it measured."""
        if self.verdict == NOT_COMPARABLE:
            return f"not comparable with the paper's number (as measured: {self.outcome.words})"
        if self.verdict == INCOMPLETE:
            return self.note
        return self.outcome.words if self.outcome is not None and self.verdict != STALE else self.verdict

    @property
    def one_run(self) -> bool:
        """Whether the verdict rests on one training run (its interval ignores the seed-to-seed spread)."""
        return self.outcome is not None and self.outcome.interval.one_run

    @property
    def decided(self) -> bool:
        """Whether it is a verdict that counts (not stale, not "not comparable", measured)."""
        return self.outcome is not None and self.verdict in VERDICTS

    @property
    def p_value(self) -> float:
        """The p-value of the verdict's test (for Holm across claims): for "holds", the largest of its
        effects' p-values (an intersection-union test rejects only when every effect does); otherwise
        the deciding effect's. NaN when not measured."""
        if self.outcome is None:
            return float("nan")
        if self.verdict == HOLDS:
            return max(outcome_p(o) for o in self.outcomes)
        return outcome_p(self.outcome)

    def cell(self) -> str:
        """The finding as one table cell: verdict, effect with its interval, what it rests on (seeds,
        and any seed left out), what settles it, and a verdict an earlier delta would have given."""
        if self.verdict == STALE:
            return f"stale, counted nowhere: {self.note}"
        if self.verdict == INCOMPLETE:
            return f"{self.note}: decided once every seed is in"
        if self.verdict == NOT_COMPARABLE:
            return (f"not comparable, not counted ({self.note}): {self.outcome.interval.text()}, "
                    f"{self.outcome.interval.seeds_words()}")
        if self.outcome is None:
            return "not run yet" if self.note == "not run" else f"not measured ({self.note})"
        o = self.outcome
        which = f" ({o.effect.label})" if len(self.claim.effects) > 1 else ""
        text = f"{o.words}{which}: {o.interval.text()}, {o.interval.seeds_words()}"
        text += f"; {o.settle}" if o.settle else ""
        return text + "".join(f"; {e}" for e in self.earlier)

    def short_cell(self) -> str:
        """The finding in a compact cell: verdict, effect and interval, "one training run", the seeds
        used when one was left out, and "δ changed" when an earlier delta decided otherwise."""
        if self.verdict == STALE:
            return "stale (not counted)"
        if self.verdict == INCOMPLETE:
            return self.note
        if self.verdict == NOT_COMPARABLE:
            return f"not comparable (not counted): {self.outcome.words} {self.outcome.interval.text()}"
        if self.outcome is None:
            return "not run yet" if self.note == "not run" else "not measured"
        iv = self.outcome.interval
        marks = (["one training run"] if iv.one_run else []) + (
            [f"{iv.n_seeds} of {iv.n_seeds + len(iv.dropped)} seeds"] if iv.dropped else []) + (
            [f"δ changed: {'; '.join(self.earlier)}"] if self.earlier else [])
        return f"{self.outcome.words} {iv.text()}" + (f" ({'; '.join(marks)})" if marks else "")


def seeds_recorded(record: rec.Record) -> str:
    """``2 of 3 seeds recorded`` for a tier recorded in stretches."""
    planned = len(record.seeds) + len(record.missing_seeds)
    return f"{len(record.seeds)} of {planned} seeds recorded"


def claim(key: str, paper: str, text: str, chapter: str, effects: Effect | tuple[Effect, ...], *,
          counted: bool = True, applies: Callable[[Metrics], str | None] | None = None, protocol: str = PAPER,
          extends: str | None = None, short: str = "",
          comparable: Callable[[Metrics], str | None] | None = None) -> Claim:
    """Declare a claim (a study lists its claims in its ``CLAIMS``)."""
    return Claim(key, paper, text, chapter, effects if isinstance(effects, tuple) else (effects,), counted, applies,
                 protocol, extends, short or text, comparable)


def assess(c: Claim, metrics: Metrics | None) -> Finding:
    """``c`` decided on ``metrics`` (``not measured`` when they are absent, when the claim does not
    apply to them, or when they lack an effect's per-seed values). A seed without a finite interval
    is left out by name (``metrics["seeds"]``), with the results' ``<effect>_why`` when they give one."""
    if metrics is None:
        return Finding(c, UNMEASURED, note="not run")
    reason = c.applies(metrics) if c.applies is not None else None
    if reason:
        return Finding(c, UNMEASURED, note=reason)
    seeds = metrics.get("seeds") if isinstance(metrics.get("seeds"), list) else None
    outcomes, earlier = [], []
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
        why = metrics.get(f"{name}_why")
        if not any(s.finite for s in per_seed):
            return Finding(c, UNMEASURED, note=str(why or "no seed gave a finite estimate and interval"))
        o = decide(e, per_seed, seeds)
        if o.interval.dropped and why:
            o = replace(o, interval=replace(o.interval, dropped=tuple(f"{d} ({why})" for d in o.interval.dropped)))
        outcomes.append(o)
        for d in ledger.earlier(e.name):
            then = decide(replace(e, delta=d.delta), per_seed, seeds)
            if then.words != o.words:
                earlier.append(f"{then.words} at the earlier {d.words()}")
    verdict, deciding = combine_outcomes(outcomes)
    apart = c.comparable(metrics) if c.comparable is not None else None
    if apart:
        return Finding(c, NOT_COMPARABLE, deciding, tuple(outcomes), note=f"{apart}; as measured: {deciding.words}",
                       earlier=tuple(earlier))
    return Finding(c, verdict, deciding, tuple(outcomes), earlier=tuple(earlier))


def claim_words(claims: tuple[Claim, ...] | list[Claim], params: Mapping[str, Any], metrics: Mapping[str, Any]) -> dict[str, str]:
    """What a chapter's prose glues of each claim decided on its own results: ``<key>_verdict`` (the
    verdict in words), ``<key>_interval`` (verdict, effect and interval: :meth:`Finding.cell`) and
    ``<key>_delta`` (its delta with its history: :func:`delta_words`)."""
    observed = {**params, **metrics}
    out = {}
    for c in claims:
        f = assess(c, observed)
        out[f"{c.key}_verdict"], out[f"{c.key}_interval"] = f.words, f.cell()
        out[f"{c.key}_delta"] = "; ".join(delta_words(e) for e in c.effects)
    return out


def delta_words(e: Effect) -> str:
    """An effect's delta for the prose, from the ledger: ``δ = 0.005, declared in 564f89a (2026-12-04):
    <reason>``, and every earlier delta with why it changed."""
    now = ledger.current(e.name)
    text = f"δ = {'-' if e.margin else ''}{e.delta:g}, declared in {e.declared}" + (f" ({now.date})" if now else "")
    text += f": {e.reason}"
    for d in ledger.earlier(e.name):
        text += f"; it was {d.delta:g} before (declared in {d.commit}, {d.date})"
    if now is not None and now.why_changed:
        text += f", {now.why_changed}"
    return text


def observations(payload: Mapping[str, Any]) -> dict[str, Any]:
    """What a claim reads from a results file: its parameters, then its metrics."""
    return {**payload.get("params", {}), **payload.get("metrics", {})}


def _recorded(record: rec.Record | None) -> dict[str, Any] | None:
    return None if record is None else {**record.params, **record.metrics}


def tier_findings(c: Claim, folder: Path | None = None) -> dict[str, tuple[Finding, rec.Record | None, str]]:
    """``c`` decided in each recorded tier: ``{tier: (finding, record, index note)}``. A stale record
    (:func:`advinterp.report.recorded.stale_reason`) is not evidence: its finding is :data:`STALE`, with
    the reason as its note and no outcome, so nothing counts or draws it."""
    out = {}
    for tier in rec.TIERS:
        record, note = rec.scale_record(c.chapter, tier, folder)
        stale = rec.stale_reason(c.chapter, tier, folder) if record is not None else None
        if record is None:
            finding = Finding(c, UNMEASURED, note="not run")
        elif stale:
            finding = Finding(c, STALE, note=stale)
        elif record.missing_seeds:
            finding = Finding(c, INCOMPLETE, note=seeds_recorded(record))
        else:
            finding = assess(c, _recorded(record))
        out[tier] = (finding, record, note)
    return out


# ---- the views ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScaleSection:
    """A chapter's "At scale: CIFAR-10" section: the table and the glued words."""

    table: pd.DataFrame
    words: dict[str, str]


def effect_column(c: Claim) -> str:
    """The effect(s) a claim is decided by, with delta, its reason and where it was declared, and every
    earlier delta from the ledger (:mod:`advinterp.report.ledger`) with why it changed."""
    def was(e: Effect) -> str:
        now = ledger.current(e.name)
        why = f", {now.why_changed}" if now is not None and now.why_changed else ""
        return "".join(f"; earlier {d.words()}: {d.reason}{why}" for d in ledger.earlier(e.name))
    return "; ".join(f"{e.label} (δ = {'-' if e.margin else ''}{e.delta:g}: {e.reason}; declared in {e.declared}"
                     + was(e) + ")" for e in c.effects)


def protocol_words(c: Claim) -> str:
    """``paper``, or ``extension (not counted)`` / ``premise (not counted)`` / ``paper (tool, not
    counted)`` for a row the scorecard does not count (tables)."""
    if c.protocol == PAPER:
        return c.protocol if c.counted else "paper (tool, not counted)"
    return f"{c.protocol} (not counted)"


def ordered(claims: Sequence[Claim]) -> list[Claim]:
    """Paper rows and premises in declaration order, each followed by the extensions that extend it."""
    papers = [c for c in claims if c.protocol != EXTENSION]
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
        stale = rec.stale_reason(chapter, tier, folder)
        if not stale and r.missing_seeds:
            sentences.append(f"{title} (`{r.run}`): {seeds_recorded(r)} (seeds {', '.join(map(str, r.missing_seeds))} "
                             "to come): its verdicts are decided, and counted, once every seed is in.")
            continue
        if stale:
            sentences.append(f"{title} (`{r.run}`): **stale, not evidence:** {stale.rstrip('.')}. Its numbers "
                             "decide nothing here, in the scorecard or in the forest plot, until it is recorded again.")
            continue
        verdicts = [f.verdict for (f, _, _), c in zip(found, claims) if c.scored]
        agree = sum(a.verdict == b.verdict for a, (b, _, _) in zip(here, found))
        sentences.append(
            f"{title} (`{r.run}`, {len(r.seeds)} seed(s){'; ' + note if note else ''}): " + (", ".join(
                f"{verdicts.count(v)} {v}" for v in VERDICTS if verdicts.count(v)) + " (counted paper rows)"
                if verdicts else "no row of this chapter is a counted paper row")
            + f"; {agree} of {len(claims)} verdict(s), extensions and uncounted rows included, as on this page.")
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


def counts(rows: list[tuple[Claim, dict[str, Finding]]]) -> dict[str, int | float | str]:
    """How many of the papers' claims (paper rows: :attr:`Claim.scored`) hold, are opposite, negligible,
    inconclusive or not measured in each tier (``default``, ``cpu``, ``gpu``), with the verdicts that
    rest on one training run counted apart: ``n_<verdict>_<tier>`` counts the verdicts on several
    seeds, ``n_one_run_<verdict>_<tier>`` those on one (their intervals ignore how much another
    training run would move the effect) and ``n_one_run_<tier>`` all of those; ``n_holds_small_<tier>``
    counts the multi-seed holds smaller than delta, ``n_stale_<tier>`` the rows whose record is stale
    and ``n_not_comparable_<tier>`` those whose run is not comparable with the paper's number (both
    counted in no verdict); ``n_claims``, ``n_extensions`` and ``n_not_counted``
    (tools and premises) the rows. The
    error rate (:func:`error_rate`) is added per tier."""
    counted = [found for c, found in rows if c.scored]
    out: dict[str, int | float | str] = {
        "n_claims": len(counted), "n_extensions": sum(c.protocol == EXTENSION for c, _ in rows),
        "n_not_counted": sum(c.protocol != EXTENSION and not c.scored for c, _ in rows)}
    names = {DEFAULT_TIER: "default", **{title: tier for tier, title in rec.TIERS.items()}}
    for title, short in names.items():
        findings = [found[title] for found in counted]
        for v in VERDICTS:
            key = v.replace(" ", "_")
            out[f"n_{key}_{short}"] = sum(f.verdict == v and not f.one_run for f in findings)
            if v != UNMEASURED:
                out[f"n_one_run_{key}_{short}"] = sum(f.verdict == v and f.one_run for f in findings)
        out[f"n_one_run_{short}"] = sum(f.one_run and f.decided for f in findings)
        out[f"n_stale_{short}"] = sum(f.verdict == STALE for f in findings)
        out[f"n_incomplete_{short}"] = sum(f.verdict == INCOMPLETE for f in findings)
        out[f"n_not_comparable_{short}"] = sum(f.verdict == NOT_COMPARABLE for f in findings)
        out[f"n_holds_small_{short}"] = sum(f.verdict == HOLDS and not f.one_run and f.outcome is not None
                                            and f.outcome.small for f in findings)
        out.update({f"{k}_{short}": v for k, v in error_rate(findings).items()})
    return out


def error_rate(findings: Sequence[Finding]) -> dict[str, int | float | str]:
    """What chance alone would give among the counted rows of one tier, and Holm's adjustment across
    them (Holm 1979, on :attr:`Finding.p_value`): ``n_decided`` (rows measured), ``n_chance`` (the
    number of them expected to come out "holds" or "opposite" if no claim had any effect: each 95 %
    interval excludes 0 with probability 5 %, so 0.05 per row), ``n_holds_holm`` and
    ``n_opposite_holm`` (the holds and opposites whose Holm-adjusted p-value stays below 5 %: they
    survive a family-wise error of 5 % across the counted rows) and ``error_words`` (one sentence)."""
    decided = [f for f in findings if f.decided]
    alpha = 1 - LEVEL
    adjusted = holm([f.p_value for f in decided]) if decided else []
    survive = {v: sum(bool(f.verdict == v and p < alpha) for f, p in zip(decided, adjusted)) for v in (HOLDS, OPPOSITE)}
    found = {v: sum(f.verdict == v for f in decided) for v in (HOLDS, OPPOSITE)}
    chance = alpha * len(decided)
    words = (f"if none of the {len(decided)} measured paper rows had any effect, about {chance:.1f} of them would "
             f"still come out 'holds' or 'opposite' at the intervals' {100 * LEVEL:.0f} % level; adjusted across "
             f"them (Holm), {survive[HOLDS]} of the {found[HOLDS]} 'holds' and {survive[OPPOSITE]} of the "
             f"{found[OPPOSITE]} 'opposite' keep a family-wise error below {100 * alpha:.0f} %") if decided else \
        "no paper row is measured here"
    return {"n_decided": len(decided), "n_chance": round(chance, 2), "n_holds_holm": survive[HOLDS],
            "n_opposite_holm": survive[OPPOSITE], "error_words": words}


def forest(rows: list[tuple[Claim, dict[str, Finding]]]) -> pd.DataFrame:
    """One row per (claim, tier) that was decided: the deciding effect's estimate and interval in
    units of its delta (so every claim shares one axis: 0 = no effect, 1 = the smallest effect of
    interest), the verdict and whether the claim is counted (for :func:`advinterp.report.forest
    .verdict_forest`)."""
    out = []
    for c, found in rows:
        for tier, f in found.items():
            if not f.decided:   # not measured, stale, or not comparable: drawn nowhere
                continue
            o, d = f.outcome, f.outcome.effect.delta
            out.append({"claim": f"{c.chapter[:2]} {c.key}" + {PAPER: "", EXTENSION: " (ext.)", PREMISE: " (premise)"}[c.protocol],
                        "text": c.text, "tier": tier, "verdict": f.verdict,
                        "estimate": o.interval.estimate / d, "lo": o.interval.lo / d, "hi": o.interval.hi / d,
                        "margin": o.effect.margin, "counted": c.scored})
    return pd.DataFrame(out)
