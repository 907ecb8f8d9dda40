"""A layer's dissection summarised as a function of *which* probe images are used, so that an
image-level interval can resample them (chapters 2-4; the bootstrap is
:func:`advinterp.core.stats.bootstrap_interval`).

:class:`LayerProbes` holds one number per (image, neuron) for clean probes and for their perturbed
versions (adversarial, or the same-budget random-noise control), with the true labels and the label
the perturbation aims at. :func:`summarize` mines every neuron's top-K on the images of an index
(with repeats, as a bootstrap resample has them) and averages over the live neurons:

* ``consis_real`` / ``consis_adv_true`` / ``consis_adv_target`` - ``p^T A p`` of the top-K real images
  (true labels) and of the top-K perturbed images (true labels; target labels),
  :mod:`advinterp.interpret.consistency`; ``consis_gap = consis_adv_true - consis_real``;
* ``target_agreement`` / ``true_agreement`` - the share of a neuron's top-K perturbed images whose
  target / true label is its dominant real class (Dong et al., finding 1);
  ``agreement_gap = target_agreement - true_agreement``;
* ``n_live`` - neurons that fire (> 0) on at least one real and one perturbed image.

The same function gives the point estimate (every image once) and each bootstrap replicate, so the
two never disagree about what is measured; :func:`summarize_many` computes many resamples at once.
Consistency is :mod:`advinterp.interpret.consistency`'s ``p^T A p`` (checked against it in the tests),
written here batched over resamples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.validation import check_int
from ..models.layers import neuron_matrix

#: what :func:`summarize` returns
SUMMARIES = ("consis_real", "consis_adv_true", "consis_adv_target", "consis_gap", "target_agreement",
             "true_agreement", "agreement_gap", "n_live")


@dataclass(frozen=True)
class LayerProbes:
    """One layer's neuron values ``(images, neurons)`` on clean probes (``real``) and their perturbed
    versions (``perturbed``), the true labels ``y`` and the label each perturbation aims at
    (``target``: an attack's target, the model's prediction for an untargeted one)."""

    real: torch.Tensor
    perturbed: torch.Tensor
    y: torch.Tensor
    target: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


def measure(model: nn.Module, x: torch.Tensor, x_perturbed: torch.Tensor, y: torch.Tensor, target: torch.Tensor,
            layers: Sequence[str], *, statistic: str = "max") -> dict[str, LayerProbes]:
    """:class:`LayerProbes` of every layer of ``layers`` (one pass over each image set)."""
    real = neuron_matrix(model, x, layers, statistic=statistic)
    pert = neuron_matrix(model, x_perturbed, layers, statistic=statistic)
    return {layer: LayerProbes(real[layer], pert[layer], y.cpu(), target.cpu()) for layer in layers}


def summarize(p: LayerProbes, k: int, A: torch.Tensor, index: np.ndarray | None = None) -> dict[str, float]:
    """The :data:`SUMMARIES` of the images ``index`` (default: every image once), top-``k`` per neuron."""
    idx = np.arange(len(p)) if index is None else np.asarray(index)
    return {name: float(v[0]) for name, v in summarize_many(p, k, A, idx[None]).items()}


def summarize_many(p: LayerProbes, k: int, A: torch.Tensor, indices: np.ndarray,
                   max_elements: int = 2 ** 25) -> dict[str, np.ndarray]:
    """:func:`summarize` of every row of ``indices`` ``(resamples, images)`` at once (vectorised over
    the resamples, in chunks of at most ``max_elements`` activation values): ``{summary: (resamples,)}``."""
    idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
    if idx.ndim != 2:
        raise ValueError(f"indices must be (resamples, images), got {tuple(idx.shape)}")
    check_int("k", k, 1, idx.shape[1])
    chunk = max(1, max_elements // max(1, idx.shape[1] * p.real.shape[1]))
    parts = [_summaries(p, k, A.float(), idx[i:i + chunk]) for i in range(0, len(idx), chunk)]
    return {name: np.concatenate([part[name] for part in parts]) for name in SUMMARIES}


def _summaries(p: LayerProbes, k: int, A: torch.Tensor, idx: torch.Tensor) -> dict[str, np.ndarray]:
    n_classes = A.shape[0]
    y, target = p.y[idx], p.target[idx]                          # (B, n)
    v_real, i_real = p.real[idx].topk(k, dim=1)                   # (B, k, N)
    v_pert, i_pert = p.perturbed[idx].topk(k, dim=1)
    live = ((v_real[:, 0] > 0) & (v_pert[:, 0] > 0)).float()      # (B, N)
    n_live = live.sum(1)

    def labels(of: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
        return torch.gather(of, 1, where.flatten(1)).view(where.shape)  # (B, k, N)

    def histogram(lab: torch.Tensor) -> torch.Tensor:
        return F.one_hot(lab.long(), n_classes).float().mean(1)  # (B, N, C)

    def consis(lab: torch.Tensor) -> torch.Tensor:
        h = histogram(lab)
        return torch.einsum("bnc,cd,bnd->bn", h, A, h)

    def over_live(values: torch.Tensor) -> np.ndarray:
        mean = (values * live).sum(1) / n_live.clamp_min(1)
        return torch.where(n_live > 0, mean, torch.full_like(mean, float("nan"))).numpy()

    real_labels = labels(y, i_real)
    true_labels, target_labels = labels(y, i_pert), labels(target, i_pert)
    dominant = histogram(real_labels).argmax(-1)                   # (B, N): ties -> the smallest class
    out = {"consis_real": over_live(consis(real_labels)), "consis_adv_true": over_live(consis(true_labels)),
           "consis_adv_target": over_live(consis(target_labels)),
           "target_agreement": over_live((target_labels == dominant[:, None]).float().mean(1)),
           "true_agreement": over_live((true_labels == dominant[:, None]).float().mean(1)),
           "n_live": n_live.numpy()}
    out["consis_gap"] = out["consis_adv_true"] - out["consis_real"]
    out["agreement_gap"] = out["target_agreement"] - out["true_agreement"]
    return out


def selection_k(k: int, n_images: int, *, per_k: int = 4, min_k: int = 5) -> int:
    """The K used on ``n_images`` images: ``min(k, n_images // per_k)``, so the top-K is a selection
    (with K = n the real and perturbed top-K would hold the same images), or 0 when that is below
    ``min_k`` (too few images to measure)."""
    kk = min(k, n_images // per_k)
    return kk if kk >= min_k else 0
