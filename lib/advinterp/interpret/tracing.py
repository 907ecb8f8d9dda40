"""Tracing predictions to influential neurons and their concepts; detecting adversarial inputs.

Dong et al. (version A, sec. 6; our reading): a neuron's *concept* c(n) is the dominant class of
its top-K real images (:func:`concepts`, from chapter 2's mining). A prediction is explained by
its most influential neurons (:mod:`advinterp.interpret.influence`) and their concepts; it is *suspicious*
when those concepts disagree with the predicted class. The agreement score

``s(x) = mean over the top-k influential neurons n of A[c(n), y_hat]``

(optionally weighted by their prediction difference) is low for adversarial inputs whose
neurons were hijacked; :func:`detection_auc` measures how well ``-s`` separates adversarial from
clean inputs (ROC-AUC, scikit-learn). Two references give that AUC a meaning: the same detector with
the concepts shuffled among neurons (:func:`permuted_concepts`, its structural chance level) and the
maximum softmax probability (:func:`max_softmax`, a detector that knows nothing of neurons).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .consistency import dominant_class
from .influence import baseline_values, prediction_difference, top_influential
from .topk import NeuronTopK, mine_topk


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


def rank_auc(negatives: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """ROC-AUC of every row: positives ``(R, n1)`` ranked above negatives ``(R, n0)`` (ties count
    1/2), by the Mann-Whitney rank sum, vectorised over rows."""
    from scipy.stats import rankdata

    neg, pos = np.atleast_2d(negatives), np.atleast_2d(positives)
    n0, n1 = neg.shape[1], pos.shape[1]
    ranks = rankdata(np.concatenate([neg, pos], axis=1), axis=1)[:, n0:]
    return (ranks.sum(1) - n1 * (n1 + 1) / 2) / (n0 * n1)


def permuted_scores(diff_clean: torch.Tensor, pred_clean: torch.Tensor, diff_adv: torch.Tensor,
                    pred_adv: torch.Tensor, concept: torch.Tensor, live: torch.Tensor, A: torch.Tensor, k: int, *,
                    weighted: bool, n_permutations: int, generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The detector's scores (``-s(x)``: high flags an input) with the concepts shuffled among the live
    neurons (:func:`permuted_concepts`), ``n_permutations`` times on the same inputs: arrays
    ``(n_permutations, clean)`` and ``(n_permutations, adversarial)``. The influential neurons do not
    depend on the concepts, so they are found once; each permutation only relabels them."""
    shuffled = torch.stack([permuted_concepts(concept, live, generator) for _ in range(n_permutations)])  # (P, N)

    def scores(diff: torch.Tensor, pred: torch.Tensor) -> np.ndarray:
        values, idx = diff.topk(min(k, diff.shape[1]), dim=1)                # (n, k)
        agree = A[shuffled[:, idx], pred.view(1, -1, 1)]                      # (P, n, k)
        if not weighted:
            return (-agree.mean(2)).numpy()
        w = values.clamp_min(0)
        total = w.sum(1, keepdim=True)
        w = torch.where(total > 0, w / total.clamp_min(1e-12), torch.full_like(w, 1.0 / w.shape[1]))
        return (-(w * agree).sum(2)).numpy()

    return scores(diff_clean, pred_clean), scores(diff_adv, pred_adv)


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


def top1_concept_agreement(diff: torch.Tensor, predicted: torch.Tensor, labels: torch.Tensor,
                           concept: torch.Tensor) -> tuple[float, float]:
    """Fractions of inputs whose most influential neuron's concept is the predicted class, and is
    the true class."""
    c = concept[diff.argmax(1)]
    return float((c == predicted).float().mean()), float((c == labels).float().mean())


def permuted_concepts(concept: torch.Tensor, live: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The concepts shuffled among the live neurons: a control with the same concept frequencies and the
    same influential neurons, but no link between a neuron and what it responds to. The agreement
    detector's AUC with these concepts is its structural chance level (what the readout structure
    alone gives), which a real effect must exceed."""
    out = concept.clone()
    idx = torch.nonzero(live).flatten()
    out[idx] = concept[idx[torch.randperm(len(idx), generator=generator)]]
    return out


@torch.no_grad()
def max_softmax(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The maximum softmax probability per input (Hendrycks and Gimpel 2017): a reference detector,
    low for inputs the model is unsure about."""
    from ..models.predict import logits_of

    return torch.softmax(logits_of(model, x), 1).amax(1)
