"""Chapter 7's study: interpretability of standard, adversarially trained, sensitivity-regularised
and consistent-loss models, each measured with every attribution method on the same images.

Accuracy is measured alongside (clean, and under a PGD stronger than any training attack, with
chapter 4's :func:`~advinterp.studies.consistent_loss.evaluate`), so an interpretability gain is
never read without its accuracy cost. Metric values are cached per (model, method, images), so
reruns and book builds reuse them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from ..core import cache
from ..core.validation import fail
from ..core.params import Chapter, ChapterParams, at_most, choice, integer, listof, one_of
from ..interpret import affinity, attribution
from ..report.results import method_metrics, settings_list
from ..training import sensitivity as nas
from ..training.adversarial import TRAIN_ATTACK, TRAIN_EPS, TRAIN_STEPS, madry
from ..training.loop import TrainedModel
from . import consistent_loss as ch4
from . import setting as S

AT_ATTACK = TRAIN_ATTACK.renamed("at_attack", help="robust baseline: pgd (Madry) | fgsm_rs (fast FGSM with random start)")
AT_EPS = TRAIN_EPS.renamed("at_eps", help="its budget (also the evaluation budget)")
AT_STEPS = TRAIN_STEPS.renamed("at_steps", help="its steps")
LAMBDAS_NAS = listof(nas.LAMBDA_NAS, "lambdas_nas", [1.0, 10.0], "sensitivity-regularisation weights")
ATTRIBUTION = choice("attribution", "integrated_gradients", attribution.METHODS,
                     "the method of the headline numbers: " + " | ".join(attribution.METHODS))
N_EVAL = integer("n_eval", 32, 2, None, "images whose attributions are scored (per seed)")
#: for each metric, whether larger values mean a more interpretable model
HIGHER_IS_BETTER = {"infidelity": False, "sens_max": False, "deletion_auc": False, "alignment": True,
                    "relevance_mass": True}
#: the models compared, by their alias in metric names
MODELS = ("standard", "pgd_at", "nas", "cl")
#: accuracy and consistency measured per model
ACCURACY_MEASURES = ("clean_acc", "pgd_acc", "consis_real", "consis_adv_true")


def _relations(P: ChapterParams) -> None:
    S.check_setting(P)
    ch4.check_training(P)
    for i, lam in enumerate(P.lambdas_nas):
        if lam <= 0:
            fail(f"lambdas_nas[{i}]", lam, "a positive weight (0 is the standard model)")
    one_of("lambda_nas", P.lambda_nas, "lambdas_nas", P.lambdas_nas, "the regularised model it reports")
    S.check_layers("nas_layers", P.nas_layers, P.model)
    at_most("n_eval", P.n_eval, "n_probe", P.n_probe)
    at_most("k", P.k, "n_probe", P.n_probe)


CHAPTER = Chapter("07-sensitivity-regularization", (
    *ch4.TRAINED, AT_ATTACK, AT_EPS, AT_STEPS, LAMBDAS_NAS, nas.LAMBDA_NAS, nas.NAS_LAYERS, nas.UNITS_PER_LAYER,
    nas.ESTIMATOR, *ch4.TRAINING, ATTRIBUTION, N_EVAL, ch4.EVAL_STEPS, ch4.EVAL_RESTARTS, S.K, S.SEEDS, S.DEVICE,
    S.RESULTS_DIR), _relations)


def validate(namespace: dict[str, Any]) -> ChapterParams:
    """Check every parameter of chapter 7 (no data loaded, no model built)."""
    return CHAPTER.validate(namespace)


def setup(P: ChapterParams) -> ChapterParams:
    """Load the data; ``P.experiments`` (one per seed, budget ``at_eps``)."""
    S.load(P)
    P["A"] = affinity.for_dataset(P.bundle)
    P["experiments"] = S.experiments(P, eps=P.at_eps)
    return P


def nas_name(lam: float) -> str:
    return f"nas-{lam:g}"


def models_to_compare(exp: S.Experiment, P: ChapterParams) -> dict[str, TrainedModel]:
    """Standard, PGD-AT, each sensitivity-regularised variant and chapter 4's consistent-loss model of
    one seed, all of ``exp.model`` with the same recipe (cached). PGD-AT is trained as chapter 4's
    models are (fine-tuned from the standard model for ``finetune_epochs``, or from scratch)."""
    out = {"standard": exp.trained(exp.model),
           "pgd_at": ch4.train_variant(exp, P, madry(P.at_eps, P.at_steps, layer=P.layer, attack=P.at_attack))}
    for lam in P.lambdas_nas:
        objective = nas.SensitivityObjective(lam, tuple(P.nas_layers), P.units_per_layer, P.estimator)
        out[nas_name(lam)] = exp.trained(exp.model, objective)
    out["cl"] = ch4.consistent_model(exp, P)
    return out


def attribution_metrics(tm: TrainedModel, x: torch.Tensor, method: str, *, digit_mask: bool,
                        seed: int = 0) -> dict[str, torch.Tensor]:
    """Per-image metrics (and maps) of one model and method, cached."""
    description = {"model": tm.key, "method": method, "images": cache.key_of(x.flatten().tolist()[:4096] + [len(x)]),
                   "digit_mask": digit_mask, "seed": seed,
                   "code": cache.code_version(attribution, sys.modules[__name__])}
    return cache.memoized("interpretability", description, lambda: attribution.evaluate_attributions(
        tm.model, x, method, digit_mask=digit_mask, seed=seed))


@dataclass
class Result:
    metrics: pd.DataFrame                              # per (seed, model, method), mean over images
    accuracy: pd.DataFrame                             # per (seed, model)
    maps: dict[tuple[str, str], torch.Tensor]          # first seed: (model, method) -> attributions
    x_eval: torch.Tensor                               # first seed's evaluated images


def run(P: ChapterParams) -> Result:
    """Every model of every seed, every attribution method, on the first ``n_eval`` probes."""
    metric_rows, acc_rows, maps = [], [], {}
    first = S.seed_list(P)[0]
    digit_mask = P.dataset in ("mnist5k", "mnist")
    x_first = torch.empty(0)
    for seed, exp in S.over_seeds(P, lambda s: P.experiments[s]).items():
        x_eval = exp.probes()[0][:P.n_eval]
        models = models_to_compare(exp, P)
        reference = models["standard"].epoch_seconds
        for name, tm in models.items():
            ev = ch4.evaluate(exp, tm, eval_eps=P.at_eps, eval_steps=P.eval_steps, restarts=P.eval_restarts,
                              layer=P.layer, k=P.k, A=P.A, reference_time=reference)
            acc_rows.append({"seed": seed, "model": name, **{m: ev.row[m] for m in ACCURACY_MEASURES}})
            for method in attribution.METHODS:
                m = attribution_metrics(tm, x_eval, method, digit_mask=digit_mask)
                metric_rows.append({"seed": seed, "model": name, "method": method,
                                    **{k: float(v.mean()) for k, v in m.items() if k != "attributions"}})
                if seed == first:
                    maps[(name, method)] = m["attributions"]
        if seed == first:
            x_first = x_eval
    return Result(pd.DataFrame(metric_rows), pd.DataFrame(acc_rows), maps, x_first)


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


def aliases(P: ChapterParams) -> dict[str, str]:
    """Metric-name alias -> model name of the result tables."""
    return {"standard": "standard", "pgd_at": "pgd_at", "nas": nas_name(P.lambda_nas), "cl": "cl"}


def full_ordering(result: Result, P: ChapterParams) -> pd.DataFrame:
    """Moshe et al.'s ordering standard -> PGD-AT -> regularised (the ``ordering holds`` column),
    with the consistent-loss model's values beside it."""
    models = list(aliases(P).values())
    order = ordering(result.metrics, models, P.attribution)
    order["ordering holds"] = [ordering(result.metrics, models[:3], P.attribution).loc[m, "ordering holds"]
                               for m in order.index]
    return order


def metric_name(measure: str, model: str) -> str:
    """The results name of ``measure`` (a metric of :data:`HIGHER_IS_BETTER` or
    :data:`ACCURACY_MEASURES`) for ``model`` (one of :data:`MODELS`)."""
    return f"{measure}_{model}"


def summarize(result: Result, P: ChapterParams) -> dict[str, Any]:
    """Chapter 7's metrics (the names are this function's; see :func:`metric_name`)."""
    head = result.metrics[result.metrics.method == P.attribution]
    names = aliases(P)
    measured = [c for c in HIGHER_IS_BETTER if head[c].notna().any()]
    metrics = method_metrics(head, names, measured, by="model")
    metrics.update(method_metrics(result.accuracy, names, list(ACCURACY_MEASURES), by="model"))
    pairs = {"robust_over_standard": ["standard", "pgd_at"], "nas_over_standard": ["standard", names["nas"]],
             "nas_over_robust": ["pgd_at", names["nas"]], "cl_over_standard": ["standard", "cl"]}
    metrics.update({f"n_{k}": int(ordering(result.metrics, v, P.attribution)["ordering holds"].sum())
                    for k, v in pairs.items()})
    order = full_ordering(result, P)
    metrics.update({"attribution": P.attribution, "lambda_nas": P.lambda_nas, "lambda_cl": P.lambda_cl,
                    "n_seeds": len(S.seed_list(P)), "n_metrics": len(order),
                    "n_ordering_holds": int(order["ordering holds"].sum())})
    return metrics


def verdicts(result: Result, P: ChapterParams, metrics: dict[str, Any]) -> dict[str, str]:
    """Words the prose glues: the metrics on which the full ordering holds, and fails."""
    order = full_ordering(result, P)
    return {"holds_for": settings_list(order.index[order["ordering holds"]]) or "none",
            "fails_for": settings_list(order.index[~order["ordering holds"]]) or "none"}
