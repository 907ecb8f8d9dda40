"""Top-K images of every neuron of a layer, mined in one streaming pass (Dong et al., sec. 3).

For a conv layer a neuron is a channel and its activation on an image is the spatial ``max``
(or ``mean``) of its map; for a dense layer it is the unit's value. :func:`mine_topk` streams
the probe set in batches and keeps, per neuron, the K largest activations and their image
indices, so memory grows with ``K x neurons`` (plus at most ``max_samples x neurons`` for the
patch threshold, see below), not with the probe set. In the same pass it estimates each neuron's
dataset-wide top ``quantile`` of activation values (of all map positions for a conv channel), the
threshold of Network Dissection that :mod:`advinterp.interpret.patches` uses to outline what drives
the neuron. The estimate is exact while a neuron has at most ``max_samples`` values in all; beyond
that it is the top quantile of a uniform random sample of ``max_samples`` of them
(:class:`TopQuantile`), whose rank error has standard deviation ``sqrt(q (1 - q) / max_samples)``
(0.028 % at q = 0.5 % and 2^16 samples): ample for a threshold that outlines patches, and it keeps
mining near forward-only speed where a running exact top-m (m = 0.5 % of every value) does not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import Dataset

from ..core import progress
from ..core._helpers import eval_mode, model_device
from ..core.validation import check_int, check_number
from ..data.datasets import batches as dataset_batches
from ..models.layers import STATISTIC, neuron_values, recording


#: values per neuron kept for the patch threshold (beyond this, a uniform sample)
MAX_SAMPLES = 2 ** 16


class TopQuantile:
    """Per neuron, the value above which a fraction ``quantile`` of its ``total`` values lie, from a
    stream of ``(neurons, values)`` blocks: every value while ``total <= max_samples``, else a uniform
    sample (with replacement, from a seeded generator) of about ``max_samples`` of them."""

    def __init__(self, quantile: float, total: int, *, max_samples: int = MAX_SAMPLES, seed: int = 0) -> None:
        check_number("quantile", quantile, 0.0, 1.0, lo_open=True, hi_open=True)
        check_int("total", total, 1)
        check_int("max_samples", max_samples, 1)
        self.quantile, self.total = quantile, total
        self.rate = min(1.0, max_samples / total)
        self.generator = torch.Generator().manual_seed(seed)
        self.kept: list[torch.Tensor] = []

    def update(self, values: torch.Tensor) -> None:
        """Add a block ``(neurons, values)``."""
        if self.rate < 1.0:
            count = max(1, round(self.rate * values.shape[1]))
            pick = torch.randint(values.shape[1], (count,), generator=self.generator).to(values.device)
            values = values.index_select(1, pick)
        self.kept.append(values)

    def threshold(self) -> torch.Tensor:
        """``(neurons,)``: the top-``quantile`` value of each neuron (the m-th largest kept value,
        m = ceil(quantile x kept values))."""
        kept = torch.cat(self.kept, 1)
        m = max(1, math.ceil(self.quantile * kept.shape[1]))
        return kept.topk(m, dim=1).values[:, -1]


@dataclass
class NeuronTopK:
    """Per neuron of ``layer``: the K largest activations (descending) and their probe indices."""

    layer: str
    statistic: str
    values: torch.Tensor   # (neurons, K)
    indices: torch.Tensor  # (neurons, K), into the probe set
    threshold: torch.Tensor  # (neurons,) the top-quantile activation value (patch threshold)
    predicted: torch.Tensor  # (n_probe,) the model's predicted label of every probe
    spatial: bool  # a conv layer (neurons are channel maps), so patches exist
    labels: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> (neurons, K)

    @property
    def n_neurons(self) -> int:
        return int(self.values.shape[0])

    @property
    def live(self) -> torch.Tensor:
        """Neurons that fire (> 0) on at least one probe; a dead ReLU unit has no top images."""
        return self.values[:, 0] > 0


def mine_topk(
    model: nn.Module,
    probes: torch.Tensor | Dataset,
    layers: Sequence[str],
    k: int,
    *,
    statistic: str = "max",
    quantile: float = 0.005,
    max_samples: int = MAX_SAMPLES,
    labels: dict[str, torch.Tensor] | None = None,
    batch_size: int = 256,
    desc: str = "mining top-K",
) -> dict[str, NeuronTopK]:
    """Mine the top-``k`` probes of every neuron of each layer in ``layers`` in one pass.

    ``probes`` is a tensor of images in [0,1] or a dataset. ``labels`` maps names ("true",
    "target", ...) to one label per probe; each neuron's top-K labels are gathered for each,
    plus "pred", the model's own prediction. ``max_samples`` bounds the values per neuron kept for
    the patch threshold (:class:`TopQuantile`). The model runs in eval mode; its mode is restored.
    """
    STATISTIC.validate(statistic)
    n = len(probes)  # type: ignore[arg-type]
    check_int("k", k, 1, n)
    check_number("quantile", quantile, 0.0, 1.0, lo_open=True, hi_open=True)
    device = model_device(model)
    top_v: dict[str, torch.Tensor] = {}
    top_i: dict[str, torch.Tensor] = {}
    q_top: dict[str, TopQuantile] = {}
    spatial: dict[str, bool] = {}
    preds: list[torch.Tensor] = []
    if isinstance(probes, torch.Tensor):
        batches = ((probes[i:i + batch_size], None) for i in range(0, n, batch_size))
    else:
        batches = dataset_batches(probes, batch_size)
    start = 0
    with eval_mode(model), torch.no_grad(), recording(model, layers) as acts:
        for xb, _ in progress.bar(batches, total=math.ceil(n / batch_size), desc=desc, leave=False,
                                  min_total=8):
            # running buffers stay on the model's device (a copy per batch made GPU mining CPU-bound)
            logits = model(xb.to(device))
            preds.append(logits.argmax(1))
            idx = torch.arange(start, start + len(xb), device=device)
            for layer in layers:
                act = acts[layer].float()
                spatial[layer] = act.ndim == 4
                vals = neuron_values(act, statistic).T  # (neurons, B)
                cand_v = torch.cat([top_v[layer], vals], 1) if layer in top_v else vals
                cand_i = torch.cat([top_i[layer], idx.expand_as(vals)], 1) if layer in top_i else idx.expand_as(vals)
                kk = min(k, cand_v.shape[1])
                top_v[layer], pos = cand_v.topk(kk, dim=1)
                top_i[layer] = cand_i.gather(1, pos)
                # every activation value (all map positions), or a uniform sample of them
                flat = act.transpose(0, 1).reshape(act.shape[1], -1)  # (neurons, B*H*W)
                if layer not in q_top:
                    q_top[layer] = TopQuantile(quantile, n * (flat.shape[1] // len(xb)), max_samples=max_samples)
                q_top[layer].update(flat)
            start += len(xb)
    predicted = torch.cat(preds).cpu()
    top_v = {name: v.cpu() for name, v in top_v.items()}
    top_i = {name: i.cpu() for name, i in top_i.items()}
    thresholds = {name: q.threshold().cpu() for name, q in q_top.items()}
    out = {}
    for layer in layers:
        label_sets = {"pred": predicted[top_i[layer]]}
        for name, lab in (labels or {}).items():
            if len(lab) != n:
                raise ValueError(f"labels[{name!r}] has {len(lab)} entries for {n} probes")
            label_sets[name] = lab[top_i[layer]]
        out[layer] = NeuronTopK(layer, statistic, top_v[layer], top_i[layer], thresholds[layer], predicted,
                                spatial[layer], label_sets)
    return out
