"""Chapter 4's study: standard vs adversarial vs consistent-loss training, evaluated alike.

Every variant is trained from scratch with the dataset's recipe and the same seed (only the loss
hook differs, :mod:`advinterp.consistent_loss`), and evaluated on the same probes: clean test
accuracy, accuracy under an evaluation PGD stronger than the training attack (more steps, random
restarts), neuron consistency at the analysed layer on real probes and on the model's own PGD
adversarial probes, dead units, and the measured training time per epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from . import progress
from .advdata import cached_adversarial_set
from .consistent_loss import AdversarialObjective, dead_units
from .dissection import Dissection, neuron_report
from .evaluation import accuracy, predict, test_accuracies
from .experiment import Experiment
from .training import TrainedModel


def method_name(lam: float | None) -> str:
    """``standard`` (None), ``at`` (lambda = 0), ``cl-<lambda>`` otherwise."""
    if lam is None:
        return "standard"
    return "at" if lam == 0 else f"cl-{lam:g}"


def variants(exp: Experiment, spec: AdversarialObjective, lambdas: Sequence[float]) -> dict[str, TrainedModel]:
    """The standard model and one model trained with ``spec`` per lambda (0 = plain AT, always included)."""
    out = {"standard": exp.trained(exp.model)}
    for lam in sorted({0.0, *map(float, lambdas)}):
        out[method_name(lam)] = exp.trained(exp.model, spec.with_lambda(lam))
    return out


@dataclass
class Evaluation:
    row: dict[str, float | str]
    dissection: Dissection


def evaluate(exp: Experiment, tm: TrainedModel, *, eval_eps: float, eval_steps: int, restarts: int, layer: str,
             k: int, A: torch.Tensor, reference_time: float) -> Evaluation:
    """Accuracy, robustness, consistency and cost of one trained variant (see the module docstring)."""
    x, y = exp.probes()
    adv = cached_adversarial_set("pgd", [tm], exp.bundle, exp.probe_index, eps=eval_eps, steps=eval_steps,
                                 seed=exp.seed, device=exp.device, restarts=restarts)
    pred_adv = predict(tm.model, adv.x_adv)
    diss = neuron_report(tm.model, adv, pred_adv, [layer], k, A)
    live = diss.table[diss.table.live]
    row = {
        "clean_acc": test_accuracies({"m": tm.model}, exp.bundle.test)["m"],
        "pgd_acc": accuracy(pred_adv, y),
        "consis_real": float(live.consis_real.mean()), "consis_adv_true": float(live.consis_adv_true.mean()),
        "consis_adv_target": float(live.consis_adv_target.mean()),
        "n_live": int(diss.table.live.sum()), "dead_units": dead_units(tm.model, x, layer),
        "epoch_seconds": tm.epoch_seconds, "epoch_time_ratio": tm.epoch_seconds / reference_time,
        "train_acc": tm.final_train_acc,
    }
    return Evaluation(row, diss)


def robustness_study(experiments: dict[int, Experiment], spec: AdversarialObjective, lambdas: Sequence[float], *,
                     eval_eps: float, eval_steps: int, restarts: int, k: int,
                     A: torch.Tensor) -> tuple[pd.DataFrame, dict[tuple[int, str], Evaluation]]:
    """One row per (seed, method); the evaluations (with their dissections) keyed likewise."""
    rows, evals = [], {}
    for seed, exp in progress.bar(list(experiments.items()), desc="seeds"):
        models = variants(exp, spec, lambdas)
        reference = models["standard"].epoch_seconds
        for method, tm in models.items():
            ev = evaluate(exp, tm, eval_eps=eval_eps, eval_steps=eval_steps, restarts=restarts, layer=spec.layer,
                          k=k, A=A, reference_time=reference)
            lam = None if method == "standard" else (0.0 if method == "at" else float(method[3:]))
            rows.append({"seed": seed, "method": method, "lambda": lam, **ev.row})
            evals[(seed, method)] = ev
    return pd.DataFrame(rows), evals


def before_after_rows(evals: dict[tuple[int, str], Evaluation], models: dict[str, TrainedModel], seed: int,
                      n_show: int, k_show: int, classes: Sequence[str]) -> list[dict[str, object]]:
    """Gallery rows (:func:`advinterp.plotting.neuron_rows`) of the most consistent neurons of each
    model in ``models`` (its top real and top adversarial probes), labelled with the model's name."""
    from .dissection import most_consistent
    from .widgets import neuron_gallery_rows

    rows: list[dict[str, object]] = []
    for method, tm in models.items():
        diss = evals[(seed, method)].dissection
        for layer, neuron in most_consistent(diss.table, n_show):
            for row in neuron_gallery_rows(tm.model, diss, diss.adversarial_set, diss.target, layer, neuron, classes,
                                           k_show):
                rows.append({**row, "label": f"{method}\n{row['label']}"})
    return rows
