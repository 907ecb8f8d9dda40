"""Neuron consistency ``consis(n) = p^T A p`` (Dong et al., version B) and top-K agreement.

``p`` is the label histogram of neuron n's top-K images (``p_c`` = count of class c / K) and
``A`` a class-affinity matrix (:mod:`advinterp.interpret.affinity`). With ``A = I`` it is the purity
``sum_c p_c^2``: 1 when all top images share a class, ``1/C`` when spread evenly. For
adversarial probes it is computed twice: with the **true** labels (what the images show) and
with the **target** (or predicted) labels.
"""

from __future__ import annotations

import torch


def label_histograms(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(neurons, K)`` integer labels -> ``(neurons, C)`` frequencies summing to 1."""
    if labels.ndim != 2:
        raise ValueError(f"labels must be (neurons, K), got {tuple(labels.shape)}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes})")
    one_hot = torch.nn.functional.one_hot(labels.long(), num_classes).float()
    return one_hot.mean(dim=1)


def consis(p: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """``p_n^T A p_n`` for each row of ``p`` ``(neurons, C)``."""
    return torch.einsum("nc,cd,nd->n", p, A.to(p.dtype), p)


def neuron_consistency(labels: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """``consis`` of every neuron from its top-K labels."""
    return consis(label_histograms(labels, A.shape[0]), A)


def dominant_class(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The most frequent label of each row (ties: the smallest class index)."""
    return label_histograms(labels, num_classes).argmax(dim=1)


def agreement(labels: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Fraction of each row of ``labels`` ``(neurons, K)`` equal to ``reference[n]``."""
    return (labels == reference.view(-1, 1)).float().mean(dim=1)
