"""Chapter 8: every method on the same data, architecture and seeds, from one sweep's table.

The rows are the training methods (standard, PGD adversarial training, consistent loss,
sensitivity-regularised), the columns what chapters 4-7 measure. Each cell is read from the
results of the chapter that measures it for that method, as mean and std over the chapter's
seeds; a chapter that does not evaluate a method leaves its cell empty (and the table says so)
rather than filling it from another model.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

METHODS = {"standard": "standard", "pgd_at": "PGD adversarial training", "cl": "consistent loss",
           "nas": "sensitivity-regularised"}

#: column -> (chapter, metric prefix per method: the metric is f"{prefix}_{method}" unless overridden)
COLUMNS: dict[str, tuple[str, dict[str, str]]] = {
    "clean_acc": ("07-sensitivity-regularization", {m: f"clean_acc_{m}" for m in METHODS}),
    "pgd_acc": ("07-sensitivity-regularization", {m: f"pgd_acc_{m}" for m in METHODS}),
    "consis_real": ("07-sensitivity-regularization", {m: f"consis_real_{m}" for m in METHODS}),
    "consis_adv_true": ("07-sensitivity-regularization", {m: f"consis_adv_true_{m}" for m in METHODS}),
    "detect_auc": ("05-tracing-and-detection", {"standard": "detect_auc_standard", "cl": "detect_auc_cl"}),
    "error_auroc": ("06-error-detection", {"standard": "auroc_combined"}),
    "infidelity": ("07-sensitivity-regularization", {m: f"infidelity_{m}" for m in METHODS}),
    "sens_max": ("07-sensitivity-regularization", {m: f"sens_max_{m}" for m in METHODS}),
    "deletion_auc": ("07-sensitivity-regularization", {m: f"deletion_auc_{m}" for m in METHODS}),
    "alignment": ("07-sensitivity-regularization", {m: f"alignment_{m}" for m in METHODS}),
    "relevance_mass": ("07-sensitivity-regularization", {m: f"relevance_mass_{m}" for m in METHODS}),
}
LABELS = {"clean_acc": "clean accuracy", "pgd_acc": "PGD accuracy", "consis_real": "consis (real)",
          "consis_adv_true": "consis (adversarial, true label)", "detect_auc": "adversarial-input detector AUC (ch. 5)",
          "error_auroc": "wrong-prediction AUROC (ch. 6)", "infidelity": "infidelity ↓", "sens_max": "sensitivity-max ↓",
          "deletion_auc": "deletion AUC ↓", "alignment": "gradient alignment ↑", "relevance_mass": "relevance mass ↑"}


def _ok_rows(table: pd.DataFrame, chapter: str) -> pd.DataFrame:
    return table[(table["chapter"] == chapter) & (table["status"] == "ok")]


def cells(table: pd.DataFrame) -> dict[str, float]:
    """``{column}_{method}`` and ``{column}_{method}_std`` for every measured cell."""
    out: dict[str, float] = {}
    for column, (chapter, metrics) in COLUMNS.items():
        rows = _ok_rows(table, chapter)
        if rows.empty:
            continue
        row = rows.iloc[0]  # chapters 5-7 run once in the side-by-side sweep
        for method, metric in metrics.items():
            if metric in row and pd.notna(row[metric]):
                out[f"{column}_{method}"] = float(row[metric])
                std = f"{metric}_std"
                out[f"{column}_{method}_std"] = float(row[std]) if std in row and pd.notna(row[std]) else 0.0
    return out


def display_table(values: dict[str, float]) -> pd.DataFrame:
    """Rows: methods; columns: measures; ``mean ± std`` or ``not measured``."""
    data = {}
    for column in COLUMNS:
        data[LABELS[column]] = [f"{values[f'{column}_{m}']:.3f} ± {values[f'{column}_{m}_std']:.3f}"
                                if f"{column}_{m}" in values else "not measured" for m in METHODS]
    return pd.DataFrame(data, index=[METHODS[m] for m in METHODS]).T


def lambda_curve(table: pd.DataFrame) -> pd.DataFrame:
    """From chapter 4's results: clean accuracy, PGD accuracy and consistency against lambda."""
    rows = _ok_rows(table, "04-consistent-loss")
    if rows.empty:
        return pd.DataFrame()
    row = rows.iloc[0]
    pattern = re.compile(r"^clean_acc_lambda_([0-9][0-9.e+-]*)$")
    lambdas = sorted({float(m.group(1)) for c in row.index if (m := pattern.match(str(c)))})
    out = []
    for lam in lambdas:
        entry: dict[str, Any] = {"lambda": lam}
        for measure in ("clean_acc", "pgd_acc", "consis_adv_true", "consis_real", "dead_units"):
            key = f"{measure}_lambda_{lam:g}"
            entry[measure], entry[f"{measure}_std"] = row.get(key, np.nan), row.get(f"{key}_std", np.nan)
        out.append(entry)
    return pd.DataFrame(out)


def eps_curve(table: pd.DataFrame) -> pd.DataFrame:
    """From chapter 3's runs: neuron consistency (deepest layer) against the attack budget eps."""
    rows = _ok_rows(table, "03-neuron-consistency").sort_values("eps")
    cols = ["eps"] + [c for c in rows.columns if c.startswith(("consis_", "cs_adv")) and c not in ("consis_real_where_drop",
                                                                                                     "consis_real_where_no_drop")]
    return rows[cols].reset_index(drop=True)


def best_method(values: dict[str, float], column: str) -> str:
    """The readable name of the method with the highest measured ``column``."""
    measured = {m: values[f"{column}_{m}"] for m in METHODS if f"{column}_{m}" in values}
    return METHODS[max(measured, key=measured.__getitem__)] if measured else "no"


def best_lambda(curve: pd.DataFrame, clean_reference: float, tolerance: float = 0.05) -> float | None:
    """The consistent-loss weight (lambda > 0) with the highest consistency on adversarial probes
    among those whose clean accuracy stays within ``tolerance`` of ``clean_reference`` (a collapsed
    model, whose few live units are trivially "consistent", does not count)."""
    ok = curve[(curve["lambda"] > 0) & (curve["clean_acc"] >= clean_reference - tolerance)]
    return float(ok.loc[ok["consis_adv_true"].idxmax(), "lambda"]) if len(ok) else None
