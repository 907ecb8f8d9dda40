"""The image region that drives a conv neuron (Network Dissection style, Bau et al. 2017).

The neuron's channel map is upsampled (bilinearly) to the input size and thresholded at the
neuron's dataset-wide top-quantile activation (0.5 % by default, computed while mining,
:attr:`advinterp.interpret.topk.NeuronTopK.threshold`). The mask is where a reader should look.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..core._helpers import eval_mode, model_device
from ..models.layers import recording


def channel_maps(model: nn.Module, x: torch.Tensor, layer: str, neurons: torch.Tensor) -> torch.Tensor:
    """The map of channel ``neurons[i]`` for image ``x[i]``: ``(N, h, w)``."""
    with eval_mode(model), torch.no_grad(), recording(model, [layer]) as acts:
        model(x.to(model_device(model)))
    act = acts[layer].cpu()
    if act.ndim != 4:
        raise ValueError(f"layer {layer!r} is not a conv layer (activation shape {tuple(act.shape)}); "
                         "patches exist for conv channels only")
    return act[torch.arange(len(x)), neurons]


def patch_masks(maps: torch.Tensor, thresholds: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Upsample ``maps`` ``(N, h, w)`` to ``size`` and keep where they reach ``thresholds`` ``(N,)``."""
    up = F.interpolate(maps.unsqueeze(1).float(), size=size, mode="bilinear", align_corners=False).squeeze(1)
    return up >= thresholds.view(-1, 1, 1)


def neuron_patches(model: nn.Module, x: torch.Tensor, layer: str, neurons: torch.Tensor,
                   thresholds: torch.Tensor) -> torch.Tensor:
    """Boolean masks ``(N, H, W)``: where neuron ``neurons[i]`` is in its top quantile on ``x[i]``."""
    maps = channel_maps(model, x, layer, neurons)
    return patch_masks(maps, thresholds, tuple(x.shape[-2:]))


def bounding_box(mask: torch.Tensor) -> tuple[int, int, int, int] | None:
    """``(top, left, bottom, right)`` of a mask's true pixels (inclusive), ``None`` if empty."""
    rows, cols = torch.where(mask)
    if len(rows) == 0:
        return None
    return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())
