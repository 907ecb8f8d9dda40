"""Chapter 4's study: standard vs adversarial vs consistent-loss training, evaluated alike.

Every variant is trained from scratch with the dataset's recipe and the same seed (only the loss
hook differs, :mod:`advinterp.training.adversarial`), and evaluated on the same probes: clean test
accuracy, accuracy under an evaluation PGD stronger than the training attack (more steps, random
restarts), neuron consistency at the analysed layer on real probes and on the model's own PGD
adversarial probes, dead units, and the measured training time per epoch.

The training parameters (``TRAINING``) are declared here once; chapters 5 and 7 declare the same
objects and get their consistent-loss model from :func:`variants` / :func:`consistent_model`, so
they use exactly chapter 4's cached models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from ..attacks.advdata import cached_adversarial_set
from ..core.params import Chapter, ChapterParams, at_most, integer, listof, one_of
from ..core.validation import fail
from ..interpret import affinity
from ..interpret.dissection import Dissection, most_consistent, neuron_gallery_rows, neuron_report
from ..models.architectures import check_layer
from ..models.layers import dead_units
from ..models.predict import accuracy, predict
from ..report.results import compare, method_metrics, tolerance, with_spread
from ..training import adversarial as adv_obj
from ..training.adversarial import AdversarialObjective
from ..training.loop import TrainedModel
from . import setting as S
from .neurons import K_SHOW, N_SHOW

LAMBDAS = listof(adv_obj.LAMBDA, "lambdas", [10.0, 100.0], "consistency weights (lambda 0, plain adversarial "
                 "training, is always added)")
LAMBDA_CL = adv_obj.LAMBDA.renamed("lambda_cl", default=10.0, help="the lambda whose model the _cl numbers report "
                                   "(one of lambdas)")
#: chapter 4's training settings; chapters 5 and 7 declare the same objects to find its models
TRAINING = (adv_obj.TRAIN_ATTACK, adv_obj.TRAIN_EPS, adv_obj.TRAIN_STEPS, adv_obj.ALPHA, LAMBDAS, LAMBDA_CL,
            adv_obj.LAYER, adv_obj.NORMALIZE)
EVAL_STEPS = integer("eval_steps", 20, 1, 1000, "steps of the evaluation PGD (more than the training attack's)")
EVAL_RESTARTS = integer("eval_restarts", 2, 1, 100, "its random restarts")
#: what the study measures per (seed, method); chapter 8 reads them against lambda
MEASURES = ("clean_acc", "pgd_acc", "consis_real", "consis_adv_true", "consis_adv_target", "dead_units")
TRAINED = (*S.DATA, S.EPOCHS, S.MAX_TRAIN, S.N_PROBE)


def check_training(P: ChapterParams) -> None:
    """Relations of the training parameters (chapters 4, 5, 7)."""
    if P.lambda_cl <= 0:
        fail("lambda_cl", P.lambda_cl, "a positive consistency weight (lambda 0 is plain adversarial training)")
    one_of("lambda_cl", P.lambda_cl, "lambdas", P.lambdas, "the consistent-loss model it reports")
    check_layer("layer", P.layer, P.model)


def _relations(P: ChapterParams) -> None:
    S.check_setting(P)
    check_training(P)
    if P.eval_steps <= P.train_steps:
        fail("eval_steps", P.eval_steps, f"more than train_steps={P.train_steps} (the evaluation attack must be stronger)")
    at_most("k", P.k, "n_probe", P.n_probe)
    at_most("k_show", P.k_show, "k", P.k)


CHAPTER = Chapter("04-consistent-loss", (
    *TRAINED, *TRAINING, EVAL_STEPS, EVAL_RESTARTS, S.K, S.AFFINITY, N_SHOW, K_SHOW, S.SEEDS, S.DEVICE,
    S.RESULTS_DIR), _relations)


def validate(namespace: dict[str, Any]) -> ChapterParams:
    """Check every parameter of chapter 4 (no data loaded, no model built)."""
    return CHAPTER.validate(namespace)


def setup(P: ChapterParams) -> ChapterParams:
    """Load the data and the class affinity; ``P.experiments`` (one per seed, budget ``train_eps``)."""
    S.load(P)
    P["A"] = affinity.for_dataset(P.bundle, P.affinity)
    P["experiments"] = S.experiments(P, eps=P.train_eps)
    return P


def objective(P: ChapterParams, lam: float = 0.0) -> AdversarialObjective:
    """Chapter 4's training objective with consistency weight ``lam`` (0: plain adversarial training)."""
    return AdversarialObjective(attack=P.train_attack, eps=P.train_eps, steps=P.train_steps, alpha=P.alpha,
                                layer=P.layer, normalize=P.normalize, lam=float(lam))


def method_name(lam: float | None) -> str:
    """``standard`` (None), ``at`` (lambda = 0), ``cl-<lambda>`` otherwise."""
    if lam is None:
        return "standard"
    return "at" if lam == 0 else f"cl-{lam:g}"


def variants(exp: S.Experiment, P: ChapterParams) -> dict[str, TrainedModel]:
    """The standard model and one model per lambda of ``P.lambdas`` (0 = plain AT, always included),
    all of ``exp.model`` with the same recipe and seed (cached)."""
    out = {"standard": exp.trained(exp.model)}
    for lam in sorted({0.0, *map(float, P.lambdas)}):
        out[method_name(lam)] = exp.trained(exp.model, objective(P, lam))
    return out


def consistent_model(exp: S.Experiment, P: ChapterParams) -> TrainedModel:
    """The consistent-loss model the chapters report (lambda = ``P.lambda_cl``)."""
    return exp.trained(exp.model, objective(P, P.lambda_cl))


@dataclass
class Evaluation:
    row: dict[str, float | str]
    dissection: Dissection


def evaluate(exp: S.Experiment, tm: TrainedModel, *, eval_eps: float, eval_steps: int, restarts: int, layer: str,
             k: int, A: torch.Tensor, reference_time: float) -> Evaluation:
    """Accuracy, robustness, consistency and cost of one trained model (see the module docstring).
    Chapter 7 evaluates its models with it too."""
    x, y = exp.probes()
    adv = cached_adversarial_set("pgd", [tm], exp.bundle, exp.probe_index, eps=eval_eps, steps=eval_steps,
                                 seed=exp.seed, device=exp.device, restarts=restarts)
    diss = neuron_report(tm.model, adv, predict(tm.model, adv.x_adv), [layer], k, A)
    live = diss.table[diss.table.live]
    row = {
        "clean_acc": accuracy(tm.model, exp.bundle.test),
        "pgd_acc": accuracy(tm.model, adv.x_adv, y),
        "consis_real": float(live.consis_real.mean()), "consis_adv_true": float(live.consis_adv_true.mean()),
        "consis_adv_target": float(live.consis_adv_target.mean()),
        "n_live": int(diss.table.live.sum()), "dead_units": dead_units(tm.model, x, layer),
        "epoch_seconds": tm.epoch_seconds, "epoch_time_ratio": tm.epoch_seconds / reference_time,
        "train_acc": tm.final_train_acc,
    }
    return Evaluation(row, diss)


@dataclass
class Result:
    table: pd.DataFrame                                   # one row per (seed, method)
    evaluations: dict[tuple[int, str], Evaluation]
    models: dict[int, dict[str, TrainedModel]]


def run(P: ChapterParams) -> Result:
    """Train (or load) every variant of every seed and evaluate it."""
    rows, evals, models = [], {}, {}
    for seed, exp in S.over_seeds(P, lambda s: P.experiments[s]).items():
        models[seed] = variants(exp, P)
        reference = models[seed]["standard"].epoch_seconds
        for method, tm in models[seed].items():
            ev = evaluate(exp, tm, eval_eps=P.train_eps, eval_steps=P.eval_steps, restarts=P.eval_restarts,
                          layer=P.layer, k=P.k, A=P.A, reference_time=reference)
            lam = None if method == "standard" else (0.0 if method == "at" else float(method[3:]))
            rows.append({"seed": seed, "method": method, "lambda": lam, **ev.row})
            evals[(seed, method)] = ev
    return Result(pd.DataFrame(rows), evals, models)


def before_after_rows(result: Result, P: ChapterParams, methods: Sequence[str]) -> list[dict[str, object]]:
    """Gallery rows (:func:`advinterp.report.plotting.neuron_rows`) of the ``n_show`` most consistent
    neurons of each of ``methods`` (first seed): top real and top adversarial probes."""
    seed = S.seed_list(P)[0]
    rows: list[dict[str, object]] = []
    for method in methods:
        tm, diss = result.models[seed][method], result.evaluations[(seed, method)].dissection
        for layer, neuron in most_consistent(diss.table, P.n_show):
            for row in neuron_gallery_rows(tm.model, diss, diss.adversarial_set, diss.target, layer, neuron,
                                           P.bundle.classes, P.k_show):
                rows.append({**row, "label": f"{method}\n{row['label']}"})
    return rows


def lambda_metric(measure: str, lam: float) -> str:
    """The name of ``measure`` (one of :data:`MEASURES`) at consistency weight ``lam``."""
    return f"{measure}_lambda_{lam:g}"


def lambdas_in(metrics: dict[str, Any]) -> list[float]:
    """The lambdas of a results file's metrics (the inverse of :func:`lambda_metric`)."""
    prefix = f"{MEASURES[0]}_lambda_"
    found = []
    for name in metrics:
        if name.startswith(prefix) and not name.endswith("_std"):
            try:
                lam = float(name[len(prefix):])
            except ValueError:  # clean_acc_lambda_max: the largest lambda's value, not a grid point
                continue
            if lambda_metric(MEASURES[0], lam) == name:
                found.append(lam)
    return sorted(found)


def summarize(result: Result, P: ChapterParams) -> dict[str, Any]:
    """Chapter 4's metrics (the names are this function's)."""
    table = result.table
    cl = method_name(P.lambda_cl)
    metrics = method_metrics(table, {"standard": "standard", "at": "at", "cl": cl}, list(MEASURES))
    metrics.update(with_spread({"epoch_time_ratio_cl": table[table.method == cl]["epoch_time_ratio"]}))
    metrics.update({"train_attack_steps": P.train_steps, "lambda_cl": P.lambda_cl, "n_seeds": len(S.seed_list(P)),
                    "expected_time_ratio": P.train_steps + 2})
    for lam, rows in table[table.method != "standard"].groupby("lambda"):  # the lambda trade-off, for chapter 8
        metrics.update(with_spread({lambda_metric(c, lam): rows[c] for c in MEASURES}))
    top = table[table["lambda"] == max(P.lambdas)]
    first = S.seed_list(P)[0]
    metrics.update({"lambda_max": max(P.lambdas), "dead_units_lambda_max": top.dead_units.mean(),
                    "clean_acc_lambda_max": top.clean_acc.mean(),
                    "n_units": result.evaluations[(first, "standard")].dissection.real[P.layer].n_neurons})
    return metrics


def verdicts(result: Result, P: ChapterParams, metrics: dict[str, Any]) -> dict[str, str]:
    """Words the prose glues, decided by the numbers (a difference within a seed spread is "the same")."""
    out = {}
    for name, a, b in [("consis_verdict", "consis_adv_true_cl", "consis_adv_true_at"),
                       ("robust_verdict", "pgd_acc_cl", "pgd_acc_at"),
                       ("clean_verdict", "clean_acc_cl", "clean_acc_standard")]:
        out[name] = compare(metrics[a], metrics[b], tol=tolerance(metrics[a + "_std"], metrics[b + "_std"]))
    return out
