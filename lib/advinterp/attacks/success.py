"""How often attacks succeed (chapter 1): each single-model attack's success rate against its budget,
with the random-sign control of the same budget as its chance level, and how one adversarial set
transfers to other networks.

This module only measures models on adversarial sets: it makes no model and no cached set, so the
measurement fingerprint reads what it does from the chapters' tiny runs and leaves it out of the model
code's digest (:data:`advinterp.studies.fingerprint.MEASURING`).
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from ..core import progress
from ..models.predict import predict
from . import linf
from .advdata import AdversarialSet, make_adversarial_set

#: the single-model attacks of the success curve
SINGLE_ATTACKS = tuple(a for a in linf.EVAL_ATTACKS if not linf.ATTACKS[a].multi_model)
#: the success curve's attacks and the random-sign control of the same budget (its chance level)
CURVE = (*SINGLE_ATTACKS, *linf.CONTROLS)


def success_vs_eps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps_grid: list[float], *, steps: int,
                   seed: int, num_classes: int, device: str | torch.device = "cpu",
                   attack_names: tuple[str, ...] = CURVE) -> tuple[pd.DataFrame, dict[tuple[str, float], torch.Tensor]]:
    """Untargeted success rate of each single-model attack (and the random-sign control) at each eps
    (chapter 1's curve), and each one's per-probe success (correct before, wrong after).

    For ILLC the rate counted is "no longer the true class" (its aim is y_LL; reaching y_LL is
    reported separately as ``target_rate``)."""
    pred_clean = predict(model, x)
    rows, fooled = [], {}
    for eps in progress.bar(sorted(eps_grid), desc="attacks x eps", leave=False):
        for name in attack_names:
            adv = make_adversarial_set(name, [model], x, y, eps=eps, steps=steps, num_classes=num_classes,
                                       seed=seed, device=device)
            pred = predict(model, adv.x_adv)
            fooled[(name, eps)] = (pred_clean == y) & (pred != y)
            rows.append({"attack": name, "eps": eps, "success_rate": linf.untargeted_success(pred_clean, pred, y),
                         "target_rate": linf.targeted_success(pred_clean, pred, y, adv.target) if adv.targeted else None,
                         "max_linf": adv.max_linf})
    return pd.DataFrame(rows), fooled


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
