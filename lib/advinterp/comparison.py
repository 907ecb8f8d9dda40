"""Chapter 7's study: interpretability of standard, adversarially trained, sensitivity-regularised
and consistent-loss models, each measured with every attribution method on the same images.

Accuracy is measured alongside (clean, and under a PGD stronger than any training attack), so an
interpretability gain is never read without its accuracy cost. Metric values are cached per
(model, method, images), so reruns and book builds reuse them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import pandas as pd
import torch

from . import cache, interpretability, progress
from .advdata import cached_adversarial_set
from .dissection import neuron_report
from .evaluation import accuracy, predict, test_accuracies
from .experiment import Experiment
from .training import TrainedModel

#: for each metric, whether larger values mean a more interpretable model
HIGHER_IS_BETTER = {"infidelity": False, "sens_max": False, "deletion_auc": False, "alignment": True,
                    "relevance_mass": True}


def attribution_metrics(tm: TrainedModel, x: torch.Tensor, method: str, *, digit_mask: bool) -> dict[str, torch.Tensor]:
    """Per-image metrics (and maps) of one model and method, cached."""
    description = {"model": tm.key, "method": method, "images": cache.key_of(x.flatten().tolist()[:4096] + [len(x)]),
                   "digit_mask": digit_mask,
                   "code": cache.code_version(interpretability, sys.modules[__name__])}
    torch.manual_seed(0)  # infidelity / sensitivity / SmoothGrad draw noise
    return cache.memoized("interpretability", description,
                          lambda: interpretability.evaluate_attributions(tm.model, x, method, digit_mask=digit_mask))


def interpretability_study(experiments: dict[int, Experiment], models_for: Callable[[Experiment], dict[str, TrainedModel]],
                           methods: Sequence[str], *, n_eval: int, eval_eps: float, eval_steps: int, restarts: int,
                           digit_mask: bool, layer: str, A: torch.Tensor, k: int = 20) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Returns ``(metrics, accuracy, maps)``: metrics per (seed, model, method) averaged over the
    evaluated images; accuracy and neuron consistency at ``layer`` (real probes and the model's own
    PGD probes, true labels) per (seed, model); attribution maps of the first seed per
    (model, method) for galleries."""
    metric_rows, acc_rows, maps = [], [], {}
    first = next(iter(experiments))
    for seed, exp in progress.bar(list(experiments.items()), desc="seeds"):
        x, y = exp.probes()
        x_eval = x[:n_eval]
        for name, tm in models_for(exp).items():
            adv = cached_adversarial_set("pgd", [tm], exp.bundle, exp.probe_index, eps=eval_eps, steps=eval_steps,
                                         seed=seed, device=exp.device, restarts=restarts)
            pred_adv = predict(tm.model, adv.x_adv)
            live = neuron_report(tm.model, adv, pred_adv, [layer], k, A).table.query("live")
            acc_rows.append({"seed": seed, "model": name,
                             "clean_acc": test_accuracies({"m": tm.model}, exp.bundle.test)["m"],
                             "pgd_acc": accuracy(pred_adv, y), "consis_real": float(live.consis_real.mean()),
                             "consis_adv_true": float(live.consis_adv_true.mean())})
            for method in methods:
                m = attribution_metrics(tm, x_eval, method, digit_mask=digit_mask)
                metric_rows.append({"seed": seed, "model": name, "method": method,
                                    **{k: float(v.mean()) for k, v in m.items() if k != "attributions"}})
                if seed == first:
                    maps[(name, method)] = m["attributions"]
    return pd.DataFrame(metric_rows), pd.DataFrame(acc_rows), maps


def ordering(table: pd.DataFrame, order: Sequence[str], method: str) -> pd.DataFrame:
    """For each metric: does it improve along ``order`` (e.g. standard -> pgd_at -> nas)? Compares
    the seed means of consecutive models in the direction of :data:`HIGHER_IS_BETTER`."""
    sub = table[table["method"] == method].groupby("model")[list(HIGHER_IS_BETTER)].mean()
    rows = []
    for metric, higher in HIGHER_IS_BETTER.items():
        if sub[metric].isna().all():
            continue
        values = [sub.loc[m, metric] for m in order]
        steps = [(b > a) if higher else (b < a) for a, b in zip(values, values[1:])]
        rows.append({"metric": metric, "better": "higher" if higher else "lower",
                     **{m: v for m, v in zip(order, values)}, "ordering holds": all(steps)})
    return pd.DataFrame(rows).set_index("metric")


def models_to_compare(exp: Experiment, *, at_objective: object, nas_objectives: dict[str, object],
                      cl_objective: object) -> dict[str, TrainedModel]:
    """Standard, PGD-AT, each sensitivity-regularised variant and the consistent-loss model of one
    seed, all of ``exp.model`` with the same recipe (cached; chapter 4's model is reused)."""
    out = {"standard": exp.trained(exp.model), "pgd_at": exp.trained(exp.model, at_objective)}  # type: ignore[arg-type]
    out.update({name: exp.trained(exp.model, obj) for name, obj in nas_objectives.items()})  # type: ignore[arg-type]
    out["cl"] = exp.trained(exp.model, cl_objective)  # type: ignore[arg-type]
    return out
