"""Grids of images: adversarial examples with their perturbations, neurons' top images, explanations
by influential neurons, and attribution maps."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from .images import overlay_mask, show_image


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


def neuron_rows(
    rows: Sequence[dict[str, object]],
    classes: Sequence[str],
    k_show: int,
) -> Figure:
    """One row of images per entry of ``rows``; each entry has ``images`` (K, C, H, W), ``titles``
    (K strings), optional ``masks`` (K, H, W) and a ``label`` shown at the left."""
    n = len(rows)
    fig, axes = plt.subplots(n, k_show, figsize=(1.1 * k_show + 1.2, 1.35 * n + 0.3), squeeze=False)
    for r, row in enumerate(rows):
        images = row["images"]
        masks = row.get("masks")
        titles = row["titles"]
        for j in range(k_show):
            ax = axes[r, j]
            if j >= len(images):  # type: ignore[arg-type]
                ax.axis("off")
                continue
            show_image(ax, images[j], titles[j])  # type: ignore[index]
            if masks is not None:
                overlay_mask(ax, masks[j])  # type: ignore[index]
        axes[r, 0].set_ylabel(str(row["label"]), fontsize=8, rotation=0, ha="right", va="center", labelpad=6)
    fig.tight_layout(pad=0.3)
    return fig


def explanations(cases: Sequence[dict[str, object]], classes: Sequence[str], n_neurons: int = 3,
                 n_thumbs: int = 3) -> Figure:
    """One row per case (keys: ``title``, ``image``, ``tracer``): the image with its prediction,
    then its ``n_neurons`` most influential neurons, each as ``n_thumbs`` of its top real images
    titled with its prediction difference and concept."""
    cols = 1 + n_neurons * n_thumbs
    fig, axes = plt.subplots(len(cases), cols, figsize=(0.95 * cols + 0.6, 1.45 * len(cases) + 0.2), squeeze=False)
    for r, case in enumerate(cases):
        tracer = case["tracer"]
        table = tracer.explain(case["image"], classes)  # type: ignore[attr-defined]
        show_image(axes[r, 0], case["image"], f"{case['title']}\npred: {table['predicted'].iloc[0]}")  # type: ignore[arg-type]
        for j in range(n_neurons):
            if j >= len(table):
                for t in range(n_thumbs):
                    axes[r, 1 + j * n_thumbs + t].axis("off")
                continue
            neuron = int(table["neuron"].iloc[j])
            top = tracer.real_topk.indices[neuron, :n_thumbs]  # type: ignore[attr-defined]
            for t in range(n_thumbs):
                ax = axes[r, 1 + j * n_thumbs + t]
                title = (f"#{neuron} PD {table['prediction_difference'].iloc[j]:+.2f}\nconcept {table['concept'].iloc[j]}"
                         if t == 0 else None)
                show_image(ax, tracer.reference_x[top[t]], title)  # type: ignore[attr-defined]
    fig.tight_layout(pad=0.4)
    return fig


def attribution_gallery(x: torch.Tensor, maps: dict[tuple[str, str], torch.Tensor], models: Sequence[str],
                        methods: Sequence[str], n_images: int = 3) -> Figure:
    """Top row: the inputs; then one row per (model, method). Each map is the absolute attribution
    summed over channels and scaled to its own maximum (white = most relevant)."""
    rows = [(m, meth) for m in models for meth in methods]
    fig, axes = plt.subplots(len(rows) + 1, n_images + 1,
                             figsize=(1.2 * (n_images + 1) + 1.4, 1.15 * (len(rows) + 1) + 0.3), squeeze=False)
    for r in range(len(rows) + 1):
        axes[r, 0].axis("off")
    axes[0, 0].text(1.0, 0.5, "input", ha="right", va="center", fontsize=8, transform=axes[0, 0].transAxes)
    for j in range(n_images):
        show_image(axes[0, j + 1], x[j])
    for r, (m, meth) in enumerate(rows, start=1):
        axes[r, 0].text(1.0, 0.5, f"{m}\n{meth.replace('_', ' ')}", ha="right", va="center", fontsize=8,
                        transform=axes[r, 0].transAxes)
        for j in range(n_images):
            a = maps[(m, meth)][j].abs().sum(0)
            ax = axes[r, j + 1]
            ax.imshow((a / a.max().clamp_min(1e-12)).numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout(pad=0.3)
    return fig
