"""Chapter 8: every method on the same data, architecture and seeds, from one sweep's table.

The rows are the training methods (standard, PGD adversarial training, consistent loss,
sensitivity-regularised), the columns what chapters 4-7 measure. Each cell is read from the
results of the chapter that measures it for that method, as mean and std over the chapter's
seeds, under the metric name that chapter's study gives it: each study exports what chapter 8 reads
(``SIDE_BY_SIDE``, :class:`advinterp.studies.SideBySide`) and this module imports no other
chapter's study (:func:`columns`). A chapter that does not evaluate a method leaves its cell empty
("not measured", declared here); a metric the table should have but lacks is an error that says
which chapter and metric, never a silent NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..core import paths
from ..core.params import Chapter, ChapterParams, flag, text
from ..report.results import format_mean_std
from .. import sweeps
from ..report import claims
from . import SideBySide, default_validate, exports
from . import setting as S


# ----------------------------------------------------------------------------- declarations

METHODS = {"standard": "standard", "pgd_at": "PGD adversarial training", "cl": "consistent loss",
           "nas": "sensitivity-regularised"}

#: columns a chapter measures only on some data (relevance mass needs MNIST's digit masks)
OPTIONAL = {"relevance_mass"}

#: every column's label, in the order the table shows them
LABELS = {"clean_acc": "clean accuracy", "pgd_acc": "PGD accuracy", "aa_acc": "AutoAttack-core accuracy",
          "masking": "gradient masking flagged (share of seeds)", "consis_real": "consis (real)",
          "consis_adv_true": "consis (adversarial, true label)", "detect_auc": "adversarial-input detector AUC (ch. 5)",
          "error_auroc": "wrong-prediction AUROC (ch. 6)", "deletion_gain": "deletion gain over a random order ↑",
          "infidelity": "relative infidelity ↓", "infidelity_wide": "relative infidelity, sigma 0.3 ↓",
          "deletion_auc": "deletion AUC / p(x) ↓", "faithfulness_corr": "faithfulness correlation ↑",
          "sparseness": "sparseness (Gini) ↑", "relevance_mass": "relevance mass ↑",
          "alignment": "gradient alignment ↑", "deletion_random": "deletion AUC / p(x), random order (the model)",
          "sens_max": "sensitivity-max ↓ (circular)"}

SWEEP_SPEC = text("sweep_spec", "configs/sweeps/side-by-side.yaml", "the sweep whose table this chapter reads")

RUNS_DIR = text("runs_dir", "runs", "sweep outputs: <runs_dir>/<sweep name>/ (relative to the repository)")

RERUN = flag("rerun", False, "True: re-execute every run of the sweep (else only missing or outdated ones)")

CHAPTER = Chapter("08-side-by-side", (SWEEP_SPEC, RUNS_DIR, RERUN, S.RESULTS_DIR))

#: chapter 8 decides no claim of its own: its cells are the other chapters' measures
CLAIMS: tuple[claims.Claim, ...] = ()

validate = default_validate(CHAPTER)

#: chapter 8 reproduces no paper's run: no settings table
SETTINGS: tuple = ()


# ----------------------------------------------------------------------------- setup

@dataclass(frozen=True)
class Setup:
    """Chapter 8's setup: the sweep spec (a small YAML file, checked) and where its outputs are."""

    P: ChapterParams
    spec: dict[str, Any]
    spec_path: Path
    runs_root: Path

    @property
    def table_path(self) -> Path:
        return self.runs_root / self.spec["name"] / "table.csv"


def _from_repo(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else paths.repo_root() / p


def setup(P: ChapterParams) -> Setup:
    """Read and check the sweep spec."""
    spec_path = _from_repo(P.sweep_spec)
    return Setup(P, sweeps.load_spec(spec_path, name="sweep_spec"), spec_path, _from_repo(P.runs_dir))


# ----------------------------------------------------------------------------- run

def run(setup: Setup) -> pd.DataFrame:
    """The sweep's table; the sweep runs first when the table is absent, a run is missing or made by
    an older notebook or library, or ``rerun`` is set. A run with a chapter's default parameters that
    this build has just executed (its ``results_dir`` file, made by the current notebook and
    library) is adopted rather than executed again."""
    P = setup.P
    root = setup.runs_root / setup.spec["name"]
    complete = all(sweeps.is_complete(root, r) for r in sweeps.expand(setup.spec))
    table_path = setup.table_path
    if P.rerun or not table_path.is_file() or not complete:
        table_path = sweeps.run_sweep(setup.spec_path, setup.runs_root, force=P.rerun, reuse_results=P.results_dir)
    return pd.read_csv(table_path)


# ----------------------------------------------------------------------------- summarize

def _exporter(what: str, exported: Callable[[SideBySide], bool]) -> str:
    """The one chapter whose ``SIDE_BY_SIDE`` has ``what`` (``exported`` says whether it does)."""
    stems = [stem for stem, sbs in exports().items() if exported(sbs)]
    if len(stems) != 1:
        raise KeyError(f"chapter 8 reads {what!r} from exactly one chapter; exported by {stems or 'none'}")
    return stems[0]


class MissingMetric(KeyError):
    """The sweep's table lacks a metric chapter 8 needs."""


def _chapter_row(table: pd.DataFrame, chapter: str) -> pd.Series:
    rows = table[table["chapter"] == chapter]
    if rows.empty:
        raise MissingMetric(f"the sweep has no run of chapter {chapter}: add it to the sweep spec")
    ok = rows[rows["status"] == "ok"]
    if ok.empty:
        raise MissingMetric(f"the sweep's run of chapter {chapter} did not finish: {rows['status'].iloc[0]} "
                            f"({rows['error'].iloc[0]}); see its folder under runs/")
    return ok.iloc[0]  # chapters 4-7 run once in the side-by-side sweep


def best_lambda(curve: pd.DataFrame, clean_reference: float, tolerance: float = 0.05) -> float | None:
    """The consistent-loss weight (lambda > 0) with the highest consistency on adversarial probes
    among those whose clean accuracy stays within ``tolerance`` of ``clean_reference`` (a collapsed
    model, whose few live units are trivially "consistent", does not count)."""
    ok = curve[(curve["lambda"] > 0) & (curve["clean_acc"] >= clean_reference - tolerance)]
    return float(ok.loc[ok["consis_adv_true"].idxmax(), "lambda"]) if len(ok) else None


@dataclass
class Result:
    table: pd.DataFrame
    values: dict[str, float | None]
    lambdas: pd.DataFrame
    eps: pd.DataFrame


def summarize(result: Result, setup: Setup) -> dict[str, Any]:
    """Chapter 8's metrics."""
    lam, table = result.lambdas, result.table
    best = best_lambda(lam, result.values["clean_acc_standard"] or math.nan) if len(lam) else None
    overall = lam.loc[lam.consis_adv_true.idxmax()] if len(lam) else None
    cl_lambda = float(_chapter_row(table, _exporter("lambda_cl", lambda s: "lambda_cl" in s.values))["lambda_cl"])
    return {**result.values, "best_lambda_consistency": best,
            "best_lambda_overall": float(overall["lambda"]) if overall is not None else None,
            "lambda_cl_in_table": cl_lambda, "n_runs": len(table), "n_runs_ok": int((table.status == "ok").sum())}


# ----------------------------------------------------------------------------- verdicts

def best_method(values: dict[str, float | None], column: str) -> str:
    """The readable name of the method with the highest measured ``column``."""
    measured = {m: values[f"{column}_{m}"] for m in METHODS if f"{column}_{m}" in values}
    return METHODS[max(measured, key=lambda m: measured[m])] if measured else "no"  # type: ignore[arg-type,return-value]


def verdicts(result: Result, setup: Setup, metrics: dict[str, Any]) -> dict[str, str]:
    """Words the prose glues."""
    words = {word: best_method(result.values, column) for word, column in (
        ("best_pgd", "pgd_acc"), ("best_clean", "clean_acc"), ("best_consis", "consis_adv_true"),
        ("best_alignment", "alignment"))}
    words["lambda_note"] = "" if metrics["best_lambda_consistency"] == metrics["lambda_cl_in_table"] else "not"
    return words


# ----------------------------------------------------------------------------- display helpers

def columns() -> dict[str, tuple[str, dict[str, str]]]:
    """Column -> (chapter, {method alias: metric name}), gathered from every study's ``SIDE_BY_SIDE``
    cells, in the order of :data:`LABELS` (a column without a label is an error)."""
    found = {column: (stem, dict(names)) for stem, sbs in exports().items() for column, names in sbs.cells.items()}
    unlabelled = sorted(set(found) - set(LABELS))
    if unlabelled:
        raise KeyError(f"chapter 8 has no label for the exported column(s) {unlabelled}: add them to LABELS")
    return {column: found[column] for column in LABELS if column in found}


def cells(table: pd.DataFrame) -> dict[str, float | None]:
    """``{column}_{method}`` and ``{column}_{method}_std`` (None for one seed) of every declared cell.

    Raises :class:`MissingMetric` naming the chapter and metric when the table lacks one."""
    out: dict[str, float | None] = {}
    for column, (chapter, metrics) in columns().items():
        row = _chapter_row(table, chapter)
        for method, metric in metrics.items():
            if metric not in row or pd.isna(row[metric]):
                if column in OPTIONAL:
                    continue
                raise MissingMetric(f"chapter {chapter}'s results lack metric {metric!r} ({LABELS[column]} of "
                                    f"{METHODS[method]}); rerun the sweep with rerun=True")
            out[f"{column}_{method}"] = float(row[metric])
            std = row.get(f"{metric}_std")
            out[f"{column}_{method}_std"] = None if std is None or pd.isna(std) else float(std)
    return out


def display_table(values: dict[str, float | None]) -> pd.DataFrame:
    """Rows: measures; columns: methods; ``mean ± std`` (``n = 1`` for one seed) or ``not measured``."""
    data = {}
    for column in columns():
        data[LABELS[column]] = [format_mean_std(values[f"{column}_{m}"], values[f"{column}_{m}_std"])  # type: ignore[arg-type]
                                if f"{column}_{m}" in values else "not measured" for m in METHODS]
    return pd.DataFrame(data, index=[METHODS[m] for m in METHODS]).T


def lambda_curve(table: pd.DataFrame) -> pd.DataFrame:
    """The curve a chapter exports (chapter 4: what it measures against lambda; its study names it)."""
    stem = _exporter("curve", lambda s: s.curve is not None)
    row = _chapter_row(table, stem)
    try:
        return pd.DataFrame(exports()[stem].curve(dict(row)))  # type: ignore[misc]
    except KeyError as missing:
        raise MissingMetric(f"chapter {stem}'s results lack metric {missing}") from None


def eps_curve(table: pd.DataFrame) -> pd.DataFrame:
    """The measures a chapter exports across eps (chapter 3's headline consistency measures) against
    the attack budget eps, one row per finished run."""
    stem = _exporter("across_eps", lambda s: bool(s.across_eps))
    rows = table[(table["chapter"] == stem) & (table["status"] == "ok")].sort_values("eps")
    if rows.empty:
        raise MissingMetric(f"the sweep has no finished run of chapter {stem}")
    names = exports()[stem].across_eps
    cols = ["eps"] + [c for n in names for c in (n, f"{n}_std") if c in rows.columns]
    return rows[cols].reset_index(drop=True)


def collect(table: pd.DataFrame) -> Result:
    """Everything the chapter shows, read from the sweep's table."""
    return Result(table, cells(table), lambda_curve(table), eps_curve(table))
