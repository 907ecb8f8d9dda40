"""One image on an axis: a tensor as a picture, a neuron's patch over it, and which images to show."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes


def to_image(x: torch.Tensor) -> np.ndarray:
    """A ``(C, H, W)`` tensor in [0,1] as an array for ``imshow`` (grey images as 2-D)."""
    arr = x.detach().cpu().clamp(0, 1).numpy()
    return arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)


def show_image(ax: Axes, x: torch.Tensor, title: str | None = None, **kw: object) -> None:
    """Draw image ``x`` (:func:`to_image`) on ``ax`` without ticks, with an optional small title."""
    img = to_image(x)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1, **kw)  # type: ignore[arg-type]
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def overlay_mask(ax: Axes, mask: torch.Tensor, color: str = "#ff3b30", alpha: float = 0.45) -> None:
    """Tint the pixels of ``mask`` (H, W) and outline them (a neuron's patch)."""
    m = mask.float().numpy()
    rgba = np.zeros((*m.shape, 4))
    rgba[..., :3] = plt.matplotlib.colors.to_rgb(color)
    rgba[..., 3] = alpha * m
    ax.imshow(rgba)
    if m.any() and not m.all():
        ax.contour(m, levels=[0.5], colors=[color], linewidths=0.8)


def diverse_indices(labels: Sequence[int] | torch.Tensor, n: int) -> list[int]:
    """Up to ``n`` positions with distinct labels first (in label order), then the rest in order:
    galleries show one example per class before repeating a class."""
    labels = [int(v) for v in labels]
    first: dict[int, int] = {}
    for i, lab in enumerate(labels):
        first.setdefault(lab, i)
    chosen = [first[lab] for lab in sorted(first)][:n]
    chosen += [i for i in range(len(labels)) if i not in set(chosen)][: n - len(chosen)]
    return chosen
