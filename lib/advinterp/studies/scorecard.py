"""The intro's scorecard: every claim the book tests, decided at the embedded default (the chapters'
own results files) and in every recorded tier (CIFAR-10 on a CPU, CIFAR-10 on a GPU), each by an
interval on its effect (:mod:`advinterp.report.claims`); no verdict is typed by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ..core import paths
from ..report import ledger, results
from ..report.forest import VERDICT_COLORS
from ..report.tables import Table
from ..report import claims
from . import declared_claims


def chapters() -> tuple[str, ...]:
    """The chapters whose claims the scorecard lists, in order (those whose study declares claims)."""
    return tuple(stem for stem, declared in declared_claims().items() if declared)


def live_results(results_dir: str | Path = "results") -> dict[str, dict[str, Any] | None]:
    """:func:`claims.observations` of every chapter's results file (None for a chapter not run)."""
    folder = paths.resolve_results_dir(results_dir)
    out: dict[str, dict[str, Any] | None] = {}
    for stem in chapters():
        path = folder / f"{stem}.json"
        out[stem] = claims.observations(json.loads(path.read_text())) if path.is_file() else None
    return out


def rows(results_dir: str | Path = "results", folder: Path | None = None) -> list[tuple[claims.Claim, dict[str, claims.Finding]]]:
    """Every claim with its finding in each column (:func:`claims.scorecard`)."""
    return claims.scorecard({stem: c for stem, c in declared_claims().items() if c}, live_results(results_dir), folder)


#: the scorecard's short column titles, by tier column
SHORT_TIERS = {claims.DEFAULT_TIER: "MNIST default", "CIFAR-10, CPU tier": "CIFAR-10, CPU",
               "CIFAR-10, GPU (ResNet-20)": "CIFAR-10, GPU"}


def _paper(c: claims.Claim) -> str:
    """The paper in a few words (Dong et al.'s two versions as A and B)."""
    if c.paper.startswith("Dong"):
        return "Dong et al. (B)" if "workshop" in c.paper else "Dong et al. (A)"
    name = c.paper.split(" (")[0]
    if c.protocol == claims.PREMISE:
        return f"{name} (premise, not counted)"
    return name if c.counted else f"{name} (tool, not counted)"


def table(card: list[tuple[claims.Claim, dict[str, claims.Finding]]]) -> pd.DataFrame:
    """One compact row per claim: paper, the claim in a short phrase (an extension marked "ext." under
    its paper row), chapter, and in each tier the verdict with its effect and interval (the effect's
    definition, delta and reason are in the chapter's "At scale" table). Show it with :func:`styled`."""
    columns = list(card[0][1]) if card else []
    return pd.DataFrame({
        "paper": [_paper(c) if c.protocol != claims.EXTENSION else "" for c, _ in card],
        "claim": [{claims.EXTENSION: f"ext.: {c.short}", claims.PREMISE: f"premise: {c.short}"}.get(c.protocol, c.short)
                  for c, _ in card],
        "ch.": [c.chapter[:2] for c, _ in card],
        **{SHORT_TIERS.get(col, col): [found[col].short_cell() for _, found in card] for col in columns}})


def delta_history_words(card: list[tuple[claims.Claim, dict[str, claims.Finding]]]) -> str:
    """Which deltas changed after they were first declared, from the ledger (:mod:`advinterp.report.ledger`):
    a sentence for the intro (each chapter's table gives the whole history)."""
    changed = []
    for c, _ in card:
        for e in c.effects:
            found = ledger.history(e.name)
            if len(found) > 1 and e.name not in {x[0] for x in changed}:
                steps = " to ".join(f"{d.delta:g}" for d in found)
                changed.append((e.name, f"chapter {int(c.chapter[:2])}'s δ for {e.label.split(',')[0]} went from {steps} "
                                        f"({found[-1].commit}, {found[-1].date}: {found[-1].why_changed})"))
    if not changed:
        return "Every δ is the one first declared for its effect."
    return (f"{len(changed)} δ changed after it was first declared (each chapter's table gives its whole history, and "
            "a verdict that an earlier δ would have decided otherwise says so): " + "; ".join(w for _, w in changed) + ".")


def publish(card: list[tuple[claims.Claim, dict[str, claims.Finding]]]) -> None:
    """Glue what the intro's prose cites: the counts (:func:`claims.counts`) as numbers, its sentences
    (the error rates, :func:`delta_history_words`) as Markdown."""
    counts = claims.counts(card)
    results.glue_all({k: v for k, v in counts.items() if not isinstance(v, str)})
    results.glue_words_all({**{k: v for k, v in counts.items() if isinstance(v, str)},
                            "delta_history_words": delta_history_words(card)})


def styled(frame: pd.DataFrame) -> Table:
    """The scorecard for display: verdict words coloured as in the forest plot (HTML)."""
    return Table(frame, VERDICT_COLORS, [c for c in frame.columns if c not in ("paper", "claim", "ch.")],
                 font_size="0.85em")
