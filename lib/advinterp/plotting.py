"""Figures shared by chapters. Every figure has axis labels with units and is captioned in the
chapter (myst-nb cell metadata), so functions here draw and label but do not caption."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

PALETTE = {"fgsm": "#4C72B0", "illc": "#DD8452", "pgd": "#C44E52", "ensemble": "#55A868"}


def setup() -> None:
    """The book's plotting style (seaborn whitegrid, readable sizes)."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "axes.titlesize": 11, "figure.autolayout": False})


def to_image(x: torch.Tensor) -> np.ndarray:
    """A ``(C, H, W)`` tensor in [0,1] as an array for ``imshow`` (grey images as 2-D)."""
    arr = x.detach().cpu().clamp(0, 1).numpy()
    return arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)


def show_image(ax: Axes, x: torch.Tensor, title: str | None = None, **kw: object) -> None:
    img = to_image(x)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1, **kw)  # type: ignore[arg-type]
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


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


def success_curves(table: "object", ax: Axes | None = None) -> Figure:
    """Attack success rate (%) against eps (pixel units on a 0-1 scale), one line per attack."""
    import pandas as pd

    assert isinstance(table, pd.DataFrame)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, group in table.groupby("attack", sort=False):
        ax.plot(group["eps"], 100 * group["success_rate"], "o-", label=str(name).upper(),
                color=PALETTE.get(str(name)))
    ax.set_xlabel("L-inf budget eps (pixel intensity, images in [0, 1])")
    ax.set_ylabel("success rate (% of correctly\nclassified probes misclassified)")
    ax.set_ylim(-3, 103)
    ax.legend(title="attack", loc="lower right")
    return ax.figure  # type: ignore[return-value]


def adversarial_gallery(
    x: torch.Tensor,
    x_adv: torch.Tensor,
    y: Sequence[int],
    target: Sequence[int],
    pred: Sequence[int],
    classes: Sequence[str],
    n: int = 8,
) -> Figure:
    """Clean image, perturbation (rescaled to the full grey range) and adversarial image, with
    true, target and predicted labels."""
    n = min(n, len(x))
    fig, axes = plt.subplots(3, n, figsize=(1.25 * n, 4.3), squeeze=False)
    for i in range(n):
        delta = x_adv[i] - x[i]
        scale = float(delta.abs().max()) or 1.0
        show_image(axes[0, i], x[i], f"true: {classes[int(y[i])]}")
        show_image(axes[1, i], 0.5 + 0.5 * delta / scale, f"|d|max={scale:.2f}")
        ok = int(pred[i]) == int(target[i])
        show_image(axes[2, i], x_adv[i], f"target: {classes[int(target[i])]}\npred: {classes[int(pred[i])]}")
        axes[2, i].title.set_color("#2a7a2a" if ok else "#b22222")
    for row, label in enumerate(["clean", "perturbation", "adversarial"]):
        axes[row, 0].set_ylabel(label, fontsize=9)
    fig.tight_layout()
    return fig
