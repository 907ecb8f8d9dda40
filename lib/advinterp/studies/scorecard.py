"""The intro's scorecard: every claim the book tests, decided at the embedded default (the chapters'
own results files) and in every recorded tier (CIFAR-10 on a CPU, CIFAR-10 on a GPU), each by an
interval on its effect (:mod:`advinterp.studies.findings`); no verdict is typed by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ..core import paths
from . import STUDIES, findings, study

#: the chapters whose claims the scorecard lists, in order (chapter 8 declares none)
CHAPTERS = tuple(stem for stem in STUDIES if stem != "08-side-by-side")


def live_results(results_dir: str | Path = "results") -> dict[str, dict[str, Any] | None]:
    """:func:`findings.observations` of every chapter's results file (None for a chapter not run)."""
    folder = paths.resolve_results_dir(results_dir)
    out: dict[str, dict[str, Any] | None] = {}
    for stem in CHAPTERS:
        study(stem)  # its claims are declared when its study is imported
        path = folder / f"{stem}.json"
        out[stem] = findings.observations(json.loads(path.read_text())) if path.is_file() else None
    return out


def rows(results_dir: str | Path = "results", folder: Path | None = None) -> list[tuple[findings.Claim, dict[str, findings.Finding]]]:
    """Every claim with its finding in each column (:func:`findings.scorecard`)."""
    return findings.scorecard(live_results(results_dir), folder)


def table(card: list[tuple[findings.Claim, dict[str, findings.Finding]]]) -> pd.DataFrame:
    """One row per claim: paper, claim, chapter, the effect and its delta, and the verdict with its
    interval in each column (show it with :func:`findings.styled`)."""
    columns = list(card[0][1]) if card else []
    return pd.DataFrame({
        "paper": [c.paper + ("" if c.counted else " — not counted") for c, _ in card],
        "claim": [c.text for c, _ in card], "ch.": [c.chapter[:2] for c, _ in card],
        "effect (δ)": [findings.effect_column(c) for c, _ in card],
        **{col: [found[col].cell() for _, found in card] for col in columns}})
