"""Chapter 1's study: adversarial examples, single-model attacks and the ensemble attack's transfer.

For the chapter's seed: train the dissected model, the other ensemble members and the held-out
network (cached), measure each attack's success rate against the budget eps on the probe set,
and measure how the ensemble-optimisation attack (Dong et al.'s adversarial dataset) transfers to
every member and to the held-out network, against the same attack on ``model`` alone (control).
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..attacks import linf
from ..attacks.advdata import AdversarialSet, make_adversarial_set
from ..core import progress
from ..core.params import Chapter, ChapterParams, listof
from ..core.validation import fail
from ..models.predict import accuracy, predict
from ..report.results import compare, tolerance
from . import setting as S
from . import findings as F

EPS_GRID = listof(S.EPS, "eps_grid", [0.05, 0.1, 0.15, 0.2, 0.25, 0.3], "budgets of the success-rate curve")
SINGLE_ATTACKS = tuple(a for a in linf.EVAL_ATTACKS if not linf.ATTACKS[a].multi_model)


def _relations(P: ChapterParams) -> None:
    S.check_setting(P)
    if P.ensemble == []:
        fail("ensemble", P.ensemble, "at least one other member (an ensemble of one is a single-model attack)")
    if P.heldout == P.model or P.heldout in P.ensemble:
        fail("heldout", P.heldout, "an architecture that is not an ensemble member (model or ensemble)")


CHAPTER = Chapter("01-adversarial-examples", (
    *S.DATA, S.ENSEMBLE, S.HELDOUT, S.EPOCHS, S.MAX_TRAIN, S.PRETRAINED, S.EPS, EPS_GRID, S.ATTACK_STEPS, S.N_PROBE,
    S.SEED, S.DEVICE, S.RESULTS_DIR), _relations)


def validate(namespace: dict[str, Any]) -> ChapterParams:
    """Check every parameter of chapter 1 (no data loaded, no model built)."""
    return CHAPTER.validate(namespace)


def setup(P: ChapterParams) -> ChapterParams:
    """Load the data (and check what depends on it); ``P.experiment`` is the chapter's setting."""
    S.load(P)
    P["experiment"] = S.Experiment.from_params(P)
    return P


def success_vs_eps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps_grid: list[float], *, steps: int,
                   seed: int, num_classes: int, device: str | torch.device = "cpu",
                   attack_names: tuple[str, ...] = SINGLE_ATTACKS) -> pd.DataFrame:
    """Untargeted success rate of each single-model attack at each eps (chapter 1's curve).

    For ILLC the rate counted is "no longer the true class" (its aim is y_LL; reaching y_LL is
    reported separately as ``target_rate``)."""
    pred_clean = predict(model, x)
    rows = []
    for eps in progress.bar(sorted(eps_grid), desc="attacks x eps", leave=False):
        for name in attack_names:
            adv = make_adversarial_set(name, [model], x, y, eps=eps, steps=steps, num_classes=num_classes,
                                       seed=seed, device=device)
            pred = predict(model, adv.x_adv)
            rows.append({"attack": name, "eps": eps, "success_rate": linf.untargeted_success(pred_clean, pred, y),
                         "target_rate": linf.targeted_success(pred_clean, pred, y, adv.target) if adv.targeted else None,
                         "max_linf": adv.max_linf})
    return pd.DataFrame(rows)


def transfer_table(adv: AdversarialSet, models: dict[str, nn.Module]) -> pd.DataFrame:
    """For each named model: clean accuracy, targeted success (reaches the set's target) and
    untargeted success (leaves the true class) of one adversarial set."""
    rows = []
    for name, m in models.items():
        pc, pa = predict(m, adv.x), predict(m, adv.x_adv)
        rows.append({"model": name, "clean_acc": float((pc == adv.y).float().mean()),
                     "targeted_success": linf.targeted_success(pc, pa, adv.y, adv.target),
                     "untargeted_success": linf.untargeted_success(pc, pa, adv.y)})
    return pd.DataFrame(rows).set_index("model")


@dataclass
class Result:
    """What chapter 1 shows: test accuracies, the success curve, the transfer table (with the
    single-model control as its last row) and the adversarial sets behind them."""

    clean: dict[str, float]
    curve: pd.DataFrame
    table: pd.DataFrame
    ensemble_set: AdversarialSet
    single_set: AdversarialSet


def run(P: ChapterParams) -> Result:
    """The whole study for ``P.seed``."""
    exp: S.Experiment = P.experiment
    members = exp.members()
    held = exp.trained(P.heldout)
    all_models = {**{n: m.model for n, m in members.items()}, P.heldout: held.model}
    clean = {n: accuracy(m, exp.bundle.test) for n, m in all_models.items()}
    x, y = exp.probes()
    curve = success_vs_eps(exp.net, x, y, sorted({*P.eps_grid, P.eps}), steps=P.attack_steps, seed=P.seed,
                           num_classes=exp.bundle.num_classes, device=P.device)
    ens = exp.adversarial("ensemble")
    single = S.Experiment.from_params(P, ensemble=()).adversarial("ensemble")  # same attack, `model` alone
    table = transfer_table(ens, all_models)
    table["role"] = ["member"] * len(members) + ["held out"]
    control = transfer_table(single, {P.heldout: held.model})
    table.loc[control_row(P)] = [*control.iloc[0].tolist(), "control"]
    return Result(clean, curve, table, ens, single)


def control_row(P: ChapterParams) -> str:
    """The transfer table's row of the single-model control."""
    return f"{P.heldout} (attack on {P.model} only)"


def summarize(result: Result, P: ChapterParams) -> dict[str, Any]:
    """Chapter 1's metrics (the names are this function's)."""
    at_eps = result.curve[result.curve.eps == P.eps].set_index("attack")["success_rate"]
    table = result.table
    members = table[table.role == "member"]
    return {
        "clean_acc": result.clean[P.model],
        **{f"{a}_success": at_eps[a] for a in SINGLE_ATTACKS},
        "ensemble_success_members": members["targeted_success"].min(),
        "ensemble_transfer_heldout": table.loc[P.heldout, "targeted_success"],
        "ensemble_untargeted_heldout": table.loc[P.heldout, "untargeted_success"],
        "single_transfer_heldout": table.loc[control_row(P), "targeted_success"],
        "max_linf": max(result.curve["max_linf"].max(), result.ensemble_set.max_linf, result.single_set.max_linf),
        "eps": P.eps, "heldout_clean_acc": result.clean[P.heldout],
    }


def verdicts(result: Result, P: ChapterParams, metrics: dict[str, Any]) -> dict[str, str]:
    """Words the prose glues, decided by the numbers."""
    return {
        "transfer_verdict": compare(metrics["ensemble_transfer_heldout"], metrics["single_transfer_heldout"],
                                    tol=rate_gap_tolerance(metrics["ensemble_transfer_heldout"],
                                                           metrics["single_transfer_heldout"], P.n_probe),
                                    same="within sampling noise (two standard errors) of"),
        "iterative_verdict": compare(min(metrics["illc_success"], metrics["pgd_success"]), metrics["fgsm_success"],
                                     higher="stronger than", lower="not stronger than"),
    }


def rate_gap_tolerance(p1: float, p2: float, n: int) -> float:
    """Two standard errors of the difference of two success rates on the same ``n`` probes (the
    binomial variances added: conservative for paired rates). One seed has no spread over seeds, so
    this is the noise a difference must clear."""
    return 2.0 * math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / n)


def transfer_verdict(m: F.Metrics) -> tuple[str, str]:
    """Holds when the ensemble's held-out targeted transfer exceeds one network's by more than
    :func:`rate_gap_tolerance` (or, over several seeds, their spread)."""
    a, b = float(m["ensemble_transfer_heldout"]), float(m["single_transfer_heldout"])
    tol = max(rate_gap_tolerance(a, b, int(m["n_probe"])), tolerance(m.get("ensemble_transfer_heldout_std"),
                                                                        m.get("single_transfer_heldout_std")))
    number = (f"ensemble {F.value(m, 'ensemble_transfer_heldout')} vs one network "
              f"{F.value(m, 'single_transfer_heldout')} (noise ±{tol:.3f})")
    return (F.HOLDS if a - b > tol else F.FAILS), number


#: the claim this chapter tests (decided the same way on its results at scale; intro scorecard)
CLAIMS = (
    F.claim("ensemble_transfer", "Dong et al. 2017", "Targeted adversarial examples crafted on an ensemble transfer "
            "to a held-out network more often than those crafted on one network (the attack behind the book)",
            CHAPTER.stem, ("ensemble_transfer_heldout", "single_transfer_heldout", "n_probe"), transfer_verdict),
)
