"""The papers' claims as findings decided from a results file, at the embedded default and at scale.

Each chapter's study declares the claims it tests as :class:`Claim` objects: which paper, the claim
in one sentence, the metric names it reads, and a rule that turns a results file's metrics into a
verdict (one of :data:`VERDICTS`) and the number behind it. The same rule decides the verdict on the
chapter's live results (the embedded default) and on a recorded run at scale
(:mod:`advinterp.report.recorded`), so no verdict is typed by hand:

* :func:`at_scale` is a chapter's closing section "At scale: CIFAR-10": each finding at the default
  and in the recorded CIFAR-10 run, side by side, and a sentence saying whether it holds at scale;
* :func:`scorecard` is the intro's table: every claim of the four papers, both verdicts.

A difference counts only beyond the seeds' spread (:func:`advinterp.report.results.tolerance`); a
record with one seed has no spread, so any difference counts there, and the table says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..report import recorded as rec
from ..report.results import format_mean_std, tolerance

HOLDS, FAILS, MIXED, UNMEASURED = "holds", "does not hold", "mixed", "not measured"
#: every verdict a finding can have
VERDICTS = (HOLDS, FAILS, MIXED, UNMEASURED)

Metrics = Mapping[str, Any]


@dataclass(frozen=True)
class Claim:
    """A claim of a paper that a chapter tests. ``decide(metrics)`` returns the verdict and the
    number behind it (as text, with its spread); it may assume every name of ``uses`` is present."""

    key: str
    paper: str
    text: str
    chapter: str
    uses: tuple[str, ...]
    decide: Callable[[Metrics], tuple[str, str]]


@dataclass(frozen=True)
class Finding:
    claim: Claim
    verdict: str
    number: str


#: every declared claim, by chapter stem (filled as study modules are imported)
CLAIMS: dict[str, list[Claim]] = {}


def claim(key: str, paper: str, text: str, chapter: str, uses: tuple[str, ...],
          decide: Callable[[Metrics], tuple[str, str]]) -> Claim:
    """Declare (and register) a claim."""
    c = Claim(key, paper, text, chapter, uses, decide)
    CLAIMS.setdefault(chapter, [])
    CLAIMS[chapter] = [x for x in CLAIMS[chapter] if x.key != key] + [c]
    return c


def missing(c: Claim, metrics: Metrics) -> list[str]:
    """The names ``c`` reads that ``metrics`` lacks (or holds as null)."""
    return [n for n in c.uses if metrics.get(n) is None or (isinstance(metrics[n], float) and math.isnan(metrics[n]))]


def assess(c: Claim, metrics: Metrics | None) -> Finding:
    """``c`` decided on ``metrics`` (``not measured`` when they are absent or lack a name it reads)."""
    if metrics is None:
        return Finding(c, UNMEASURED, "not run")
    lacking = missing(c, metrics)
    if lacking:
        return Finding(c, UNMEASURED, f"results lack {', '.join(lacking)}")
    verdict, number = c.decide(metrics)
    if verdict not in VERDICTS:
        raise ValueError(f"claim {c.key} decided {verdict!r}; a verdict is one of {VERDICTS}")
    return Finding(c, verdict, number)


# ---- helpers for the rules -------------------------------------------------------------------

def value(metrics: Metrics, name: str, digits: int = 3) -> str:
    """``name`` as ``mean ± std`` (``(n = 1)`` without a spread)."""
    return format_mean_std(float(metrics[name]), _std(metrics, name), digits)


def _std(metrics: Metrics, name: str) -> float | None:
    std = metrics.get(f"{name}_std")
    return None if std is None else float(std)


def exceeds(metrics: Metrics, a: str, b: str) -> int:
    """+1 when ``a`` is above ``b`` by more than their larger spread, -1 when below, 0 within it."""
    diff = float(metrics[a]) - float(metrics[b])
    tol = tolerance(_std(metrics, a), _std(metrics, b))
    return 0 if abs(diff) <= tol else (1 if diff > 0 else -1)


def greater(a: str, b: str, label_a: str, label_b: str) -> Callable[[Metrics], tuple[str, str]]:
    """Holds when ``a`` exceeds ``b`` beyond the spread, does not hold otherwise."""
    def decide(m: Metrics) -> tuple[str, str]:
        return (HOLDS if exceeds(m, a, b) > 0 else FAILS), f"{label_a} {value(m, a)} vs {label_b} {value(m, b)}"
    return decide


def from_counts(better: int, worse: int, compared: int) -> str:
    """Chapter 7's rule for a pair of models over metric x method comparisons: holds when better on
    at least half and worse on none; does not hold when better on none or worse more often."""
    if compared == 0:
        return UNMEASURED
    if better >= compared / 2 and worse == 0:
        return HOLDS
    if better == 0 or worse > better:
        return FAILS
    return MIXED


# ---- the two views ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ScaleSection:
    """A chapter's "At scale: CIFAR-10" section: the table and the glued words."""

    table: pd.DataFrame
    words: dict[str, str]
    record: rec.Record | None


def cell(f: Finding) -> str:
    """A finding as one table cell: its verdict and the number behind it."""
    if f.verdict == UNMEASURED:
        return "not run yet" if f.number == "not run" else f"not measured ({f.number})"
    return f"{f.verdict}: {f.number}"


def observations(payload: Mapping[str, Any]) -> dict[str, Any]:
    """What a claim's rule reads from a results file: its parameters, then its metrics."""
    return {**payload.get("params", {}), **payload.get("metrics", {})}


def at_scale(chapter: str, live: Metrics, folder: Path | None = None) -> ScaleSection:
    """The chapter's findings on its live results (``live``: the parameters and metrics just computed,
    as :func:`observations` of its results file: the embedded default) and
    on its recorded CIFAR-10 run (``book/recorded/scale.yaml``), with a summary sentence glued as
    ``scale_summary`` and the run's description as ``scale_run``."""
    claims = CLAIMS.get(chapter, [])
    if not claims:
        raise KeyError(f"chapter {chapter} declares no claims (advinterp.studies.findings.claim)")
    record, note = rec.scale_record(chapter, folder)
    here = [assess(c, live) for c in claims]
    there = [assess(c, _recorded(record)) for c in claims]
    table = pd.DataFrame({"paper": [c.paper for c in claims], "finding": [c.text for c in claims],
                          f"this page ({live.get('dataset', 'its data')})": [cell(f) for f in here],
                          "CIFAR-10 (recorded run)": [cell(f) for f in there]})
    if record is None:
        summary = (f"This chapter has not been run at CIFAR-10 scale yet ({note}). `make scale` runs it with "
                   "`configs/cifar10-gpu.yaml` on a GPU, three seeds (README: Sweeps on Ray); the table shows the "
                   "results of this page only.")
        run = "none"
    else:
        seeds = record.seeds
        spread = ("one seed, so differences there count without a spread" if len(seeds) == 1
                  else f"{len(seeds)} seeds, mean ± std")
        agree = sum(a.verdict == b.verdict for a, b in zip(here, there))
        held = [f.claim.text[0].lower() + f.claim.text[1:] for f in there if f.verdict == HOLDS]
        device = str(record.provenance.get("machine", "machine not recorded")).split(",")[0]
        summary = (f"Recorded run `{record.run}` ({device}; {spread}{'; ' + note if note else ''}): "
                   f"{sum(f.verdict == HOLDS for f in there)} of {len(there)} finding(s) hold at scale; "
                   f"{agree} of {len(there)} verdict(s) match this page's."
                   + (f" Holding at scale: {'; '.join(held)}." if held else "")
                   + " The appendix gives the command and provenance.")
        run = f"{record.run}: {record.provenance.get('what', '')}"
    return ScaleSection(table, {"scale_summary": summary, "scale_run": run}, record)


def styled(table: pd.DataFrame) -> Any:
    """``table`` for display: every cell whole (pandas would cut long text), left-aligned, no index."""
    return (table.style.hide(axis="index").set_properties(**{"text-align": "left", "vertical-align": "top"})
            .set_table_styles([{"selector": "th", "props": [("text-align", "left")]}]))


def scorecard(live: Mapping[str, Metrics | None], folder: Path | None = None) -> list[tuple[Finding, Finding]]:
    """Every claim of every chapter (chapters in order) as its finding at the embedded default
    (``live[chapter]``: :func:`observations` of that chapter's results file, None when it has not
    run) and its finding in the chapter's recorded CIFAR-10 run."""
    pairs = []
    for chapter in sorted(CLAIMS):
        record, _ = rec.scale_record(chapter, folder)
        for c in CLAIMS[chapter]:
            pairs.append((assess(c, live.get(chapter)), assess(c, _recorded(record))))
    return pairs


def _recorded(record: rec.Record | None) -> dict[str, Any] | None:
    """What the rules read from a recorded run (as :func:`observations`)."""
    return None if record is None else {**record.params, **record.metrics}
