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
    pairs = F.scorecard(live_results(results_dir), folder)
    return pd.DataFrame({"paper": [h.claim.paper for h, _ in pairs], "claim": [h.claim.text for h, _ in pairs],
                         "ch.": [h.claim.chapter[:2] for h, _ in pairs],
                         "embedded default (MNIST sample, CPU)": [F.cell(h) for h, _ in pairs],
                         "CIFAR-10 (GPU)": [F.cell(t) for _, t in pairs]})


def counts(results_dir: str | Path = "results", folder: Path | None = None) -> dict[str, int]:
    """How many claims there are, hold at each scale, and are measured at CIFAR-10 scale."""
    pairs = F.scorecard(live_results(results_dir), folder)
    here, there = [h.verdict for h, _ in pairs], [t.verdict for _, t in pairs]
    return {"n_claims": len(pairs), "n_hold_default": here.count(F.HOLDS), "n_fail_default": here.count(F.FAILS),
            "n_mixed_default": here.count(F.MIXED), "n_measured_scale": len(there) - there.count(F.UNMEASURED),
            "n_hold_scale": there.count(F.HOLDS)}
