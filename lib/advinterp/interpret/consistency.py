"""Neuron consistency ``consis(n) = p^T A p`` (Dong et al., version B) and top-K agreement.

``p`` is the label histogram of neuron n's top-K images (``p_c`` = count of class c / K) and
``A`` a class-affinity matrix (:mod:`advinterp.interpret.affinity`). With ``A = I`` it is the purity
``sum_c p_c^2``: 1 when all top images share a class, ``1/C`` when spread evenly. For
adversarial probes it is computed twice: with the **true** labels (what the images show) and
with the **target** (or predicted) labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..core.stats import SeedEffect, from_replicates, resamples
from ..models.predict import predict
from . import layer_stats


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


@dataclass
class GapTest:
    """Several networks on the same clean and adversarial images at the same K: each one's summaries
    (:data:`advinterp.interpret.layer_stats.SUMMARIES`) and, per compared pair ``(a, b)``, the paired
    effect ``consis_gap(a) - consis_gap(b)`` with its bootstrap interval over the images."""

    summaries: dict[str, dict[str, float]]
    effects: dict[tuple[str, str], SeedEffect]


def gap_test(nets: Mapping[str, nn.Module], x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor, layer: str,
             k: int, A: torch.Tensor, *, pairs: Sequence[tuple[str, str]], n_boot: int, seed: int) -> GapTest:
    """Each network's neurons of ``layer`` on the images ``x`` and ``x_adv`` (read against the network's
    own predictions on ``x_adv``), top-``k`` per neuron for every network, and the consistency gap's
    difference for each pair, resampling the same images for both networks (one bootstrap of
    ``n_boot`` resamples drawn with ``seed``: the effects are paired; chapter 4's fair test)."""
    probes = {name: layer_stats.measure(net, x, x_adv, y, predict(net, x_adv), [layer])[layer]
              for name, net in nets.items()}
    summaries = {name: layer_stats.summarize(p, k, A) for name, p in probes.items()}
    index = resamples(len(y), n_boot, seed)
    gaps = {name: layer_stats.summarize_many(probes[name], k, A, index)["consis_gap"] for name in nets}
    effects = {(a, b): from_replicates(summaries[a]["consis_gap"] - summaries[b]["consis_gap"], gaps[a] - gaps[b],
                                       len(y)) for a, b in pairs}
    return GapTest(summaries, effects)

