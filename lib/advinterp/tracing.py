"""Tracing predictions to influential neurons and their concepts; detecting adversarial inputs.

Dong et al. (version A, sec. 6; our reading): a neuron's *concept* c(n) is the dominant class of
its top-K real images (:func:`concepts`, from chapter 2's mining). A prediction is explained by
its most influential neurons (:mod:`advinterp.influence`) and their concepts; it is *suspicious*
when those concepts disagree with the predicted class. The agreement score

``s(x) = mean over the top-k influential neurons n of A[c(n), y_hat]``

(optionally weighted by their prediction difference) is low for adversarial inputs whose
neurons were hijacked; :func:`detection_auc` measures how well ``-s`` separates adversarial from
clean inputs (ROC-AUC, scikit-learn).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from .consistency import dominant_class
from .influence import baseline_values, prediction_difference, top_influential
from .evaluation import predict
from .neurons import NeuronTopK, mine_topk

if TYPE_CHECKING:
    from .advdata import AdversarialSet
    from .experiment import Experiment
    from .training import TrainedModel


def concepts(real_topk: NeuronTopK, num_classes: int) -> torch.Tensor:
    """c(n): the dominant true class of each neuron's top-K real images."""
    return dominant_class(real_topk.labels["true"], num_classes)


def agreement_score(pd: torch.Tensor, predicted: torch.Tensor, concept: torch.Tensor, A: torch.Tensor, k: int,
                    *, weighted: bool = False) -> torch.Tensor:
    """``s(x)`` for each image: mean (or PD-weighted mean) of ``A[c(n), y_hat]`` over its top-k
    influential neurons (live neurons only: pass ``pd`` with dead neurons set to ``-inf``)."""
    values, idx = pd.topk(min(k, pd.shape[1]), dim=1)
    agree = A[concept[idx], predicted.view(-1, 1)]
    if not weighted:
        return agree.mean(1)
    w = values.clamp_min(0)
    total = w.sum(1, keepdim=True)
    uniform = torch.full_like(w, 1.0 / w.shape[1])
    w = torch.where(total > 0, w / total.clamp_min(1e-12), uniform)
    return (w * agree).sum(1)


def detection_auc(score_clean: torch.Tensor, score_adv: torch.Tensor) -> float:
    """ROC-AUC of flagging adversarial inputs by a *low* score (1 = perfect, 0.5 = chance)."""
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.zeros(len(score_clean)), np.ones(len(score_adv))]
    s = -np.r_[score_clean.numpy(), score_adv.numpy()]
    return float(roc_auc_score(y, s))


def roc_curve(score_clean: torch.Tensor, score_adv: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates of the low-score detector (for plotting)."""
    from sklearn.metrics import roc_curve as sk_roc

    y = np.r_[np.zeros(len(score_clean)), np.ones(len(score_adv))]
    fpr, tpr, _ = sk_roc(y, -np.r_[score_clean.numpy(), score_adv.numpy()])
    return fpr, tpr


@dataclass
class Tracer:
    """Everything needed to explain one model's predictions at one layer."""

    model: torch.nn.Module
    layer: str
    concept: torch.Tensor       # (neurons,) dominant real class c(n)
    live: torch.Tensor          # (neurons,) bool
    baseline: torch.Tensor      # one image's layer output, the replacement value
    A: torch.Tensor
    top_k: int
    real_topk: NeuronTopK       # the mining behind the concepts (for galleries)
    reference_x: torch.Tensor   # the real images it was mined on
    weighted: bool = False
    log_odds: bool = False

    def prediction_difference(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """PD of every neuron (dead neurons set to ``-inf`` so they are never "influential") and y_hat."""
        diff, pred = prediction_difference(self.model, x, self.layer, self.baseline, log_odds=self.log_odds)
        return diff.masked_fill(~self.live.view(1, -1), float("-inf")), pred

    def score(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(s(x), pd, y_hat)`` for a batch."""
        diff, pred = self.prediction_difference(x)
        return agreement_score(diff, pred, self.concept, self.A, self.top_k, weighted=self.weighted), diff, pred

    def explain(self, x: torch.Tensor, classes: Sequence[str]) -> pd.DataFrame:
        """The top-k influential neurons of one image: neuron, PD, concept, A[concept, y_hat]."""
        diff, pred = self.prediction_difference(x.unsqueeze(0))
        values, idx = top_influential(diff, self.top_k)
        c = self.concept[idx[0]]
        return pd.DataFrame({"neuron": idx[0].tolist(), "prediction_difference": values[0].tolist(),
                             "concept": [classes[int(v)] for v in c],
                             "affinity_to_prediction": self.A[c, pred[0]].tolist(),
                             "predicted": classes[int(pred[0])]})


def build_tracer(model: torch.nn.Module, layer: str, reference: tuple[torch.Tensor, torch.Tensor], A: torch.Tensor, *,
                 k: int = 20, top_k: int = 5, baseline: str = "zero", weighted: bool = False,
                 log_odds: bool = False) -> Tracer:
    """Mine concepts on ``reference`` real images and set up the prediction-difference tracer."""
    x_ref, y_ref = reference
    mined = mine_topk(model, x_ref, [layer], k, labels={"true": y_ref}, desc="concepts")[layer]
    base = baseline_values(model, x_ref, layer, baseline)
    return Tracer(model, layer, concepts(mined, A.shape[0]), mined.live, base, A, top_k, mined, x_ref,
                  weighted, log_odds)


def detection_inputs(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                     x_adv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks of the clean inputs the model gets right and of the adversarial versions of those
    that fool it."""
    ok = predict(model, x) == y
    return ok, ok & (predict(model, x_adv) != y)


def top1_concept_agreement(diff: torch.Tensor, predicted: torch.Tensor, labels: torch.Tensor,
                           concept: torch.Tensor) -> tuple[float, float]:
    """Fractions of inputs whose most influential neuron's concept is the predicted class, and is
    the true class."""
    c = concept[diff.argmax(1)]
    return float((c == predicted).float().mean()), float((c == labels).float().mean())


def example_cases(exp: "Experiment", models: dict[str, "TrainedModel"], tracers: dict[str, Tracer],
                  attack: str) -> list[dict[str, object]]:
    """Per model: a correctly classified probe, a misclassified real probe (if any) and a
    successful adversarial probe (if any), as rows for :func:`advinterp.plotting.explanations`."""
    x, y = exp.probes()
    cases: list[dict[str, object]] = []
    for name, tm in models.items():
        pred = predict(tm.model, x)
        adv = adversarial_inputs(exp, tm, attack)
        ok, fooled = detection_inputs(tm.model, adv.x, adv.y, adv.x_adv)
        picks = [("correct", x, (pred == y)), ("misclassified", x, (pred != y)), (attack.upper(), adv.x_adv, fooled)]
        for title, images, mask in picks:
            idx = torch.nonzero(mask).flatten()
            if len(idx):
                cases.append({"title": f"{name}: {title}\ntrue: {exp.bundle.classes[int(y[idx[0]])]}",
                              "image": images[idx[0]], "tracer": tracers[name]})
    return cases


def adversarial_inputs(exp: "Experiment", tm: "TrainedModel", attack: str) -> "AdversarialSet":
    """The adversarial probes a detector is evaluated on: FGSM / ILLC / PGD made against ``tm``
    itself; the ensemble set is chapter 1's (made against the standard members)."""
    from .advdata import cached_adversarial_set

    if attack == "ensemble":
        return exp.adversarial("ensemble")
    return cached_adversarial_set(attack, [tm], exp.bundle, exp.probe_index, eps=exp.eps, steps=exp.attack_steps,
                                  seed=exp.seed, device=exp.device)


def detection_study(experiments: dict[int, "Experiment"], models_for: Callable[["Experiment"], dict],
                    attacks: Sequence[str], layer: str, A: torch.Tensor, *, n_reference: int, k: int, top_k: int,
                    baseline: str, weighted: bool, log_odds: bool) -> tuple[pd.DataFrame, dict]:
    """Detector AUC per (seed, model, attack) and the scores behind it.

    ``models_for(exp)`` returns ``{name: TrainedModel}`` (e.g. standard and consistent-loss).
    Returns the table and ``{(seed, name): {"tracer": ..., "clean": s, attack: s_adv, ...}}``.
    """
    from . import progress
    from .dissection import reference_set

    rows, store = [], {}
    for seed, exp in progress.bar(list(experiments.items()), desc="seeds"):
        x, y = exp.probes()
        reference = reference_set(exp, n_reference)
        for name, tm in models_for(exp).items():
            tracer = build_tracer(tm.model, layer, reference, A, k=k, top_k=top_k, baseline=baseline,
                                  weighted=weighted, log_odds=log_odds)
            s_clean, pd_clean, pred_clean = tracer.score(x)
            ok = pred_clean == y
            clean_is_pred, _ = top1_concept_agreement(pd_clean[ok], pred_clean[ok], y[ok], tracer.concept)
            entry: dict[str, object] = {"tracer": tracer, "clean": s_clean[ok]}
            for attack in attacks:
                adv = adversarial_inputs(exp, tm, attack)
                _, fooled = detection_inputs(tm.model, adv.x, adv.y, adv.x_adv)
                row: dict[str, object] = {"seed": seed, "model": name, "attack": attack, "auc": float("nan"),
                                          "n_clean": int(ok.sum()), "n_adversarial": int(fooled.sum()),
                                          "pd_top1_mean": float(pd_clean.max(1).values[ok].mean()),
                                          "clean_concept_is_pred": clean_is_pred,
                                          "adv_concept_is_pred": float("nan"), "adv_concept_is_true": float("nan")}
                s_adv = torch.empty(0)
                if fooled.any():
                    s_adv, pd_adv, pred_adv = tracer.score(adv.x_adv[fooled])
                    row["auc"] = detection_auc(s_clean[ok], s_adv) if ok.any() else float("nan")
                    row["adv_concept_is_pred"], row["adv_concept_is_true"] = top1_concept_agreement(
                        pd_adv, pred_adv, adv.y[fooled], tracer.concept)
                entry[attack] = s_adv
                rows.append(row)
            store[(seed, name)] = entry
    return pd.DataFrame(rows), store
