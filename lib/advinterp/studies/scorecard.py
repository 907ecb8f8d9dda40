"""The intro's scorecard: every claim of the four papers that the book tests, its verdict on the
embedded default (the chapters' own results files) and at CIFAR-10 scale (the recorded runs), and
the number behind each verdict with its spread, all decided by the chapters' rules
(:mod:`advinterp.studies.findings`); no verdict is typed by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ..core import paths
from . import consistency, consistent_loss, interpretability, neurons, tracing, transfer, wrong_predictions
from . import findings as F

#: the studies whose claims the scorecard lists, in chapter order
STUDIES = (transfer, neurons, consistency, consistent_loss, tracing, wrong_predictions, interpretability)


def live_results(results_dir: str | Path = "results") -> dict[str, dict[str, Any] | None]:
    """:func:`findings.observations` of every chapter's results file (None for a chapter not run)."""
    folder = paths.resolve_results_dir(results_dir)
    out: dict[str, dict[str, Any] | None] = {}
    for study in STUDIES:
        path = folder / f"{study.CHAPTER.stem}.json"
        out[study.CHAPTER.stem] = F.observations(json.loads(path.read_text())) if path.is_file() else None
    return out


def table(results_dir: str | Path = "results", folder: Path | None = None) -> pd.DataFrame:
    """One row per claim: paper, claim, chapter number, and verdict with its number at the embedded
    default and at CIFAR-10 scale (show it with :func:`findings.styled`)."""
    card = F.scorecard(live_results(results_dir), folder)
    here = [F.cell(f) for f in card["_default"]]
    scale = [F.cell(f) for f in card["_scale"]]
    return pd.DataFrame({"paper": card.paper, "claim": card.claim, "ch.": [c[:2] for c in card.chapter],
                         "embedded default (MNIST sample, CPU)": here, "CIFAR-10 (GPU)": scale})


def counts(results_dir: str | Path = "results", folder: Path | None = None) -> dict[str, int]:
    """How many claims there are, hold at each scale, and are measured at CIFAR-10 scale."""
    card = F.scorecard(live_results(results_dir), folder)
    return {"n_claims": len(card), "n_hold_default": int((card["embedded default"] == F.HOLDS).sum()),
            "n_fail_default": int((card["embedded default"] == F.FAILS).sum()),
            "n_mixed_default": int((card["embedded default"] == F.MIXED).sum()),
            "n_measured_scale": int((card["CIFAR-10"] != F.UNMEASURED).sum()),
            "n_hold_scale": int((card["CIFAR-10"] == F.HOLDS).sum())}
