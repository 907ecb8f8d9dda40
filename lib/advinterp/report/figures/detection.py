"""Detectors of adversarial inputs and of wrong predictions: score distributions, ROC curves, and
accuracy against coverage."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .style import PALETTE


def detector_curves(scores: dict[str, object], attacks: Sequence[str]) -> Figure:
    """Top: distribution of the agreement score s(x) on clean and adversarial inputs; bottom: ROC
    curves of flagging a low score, one panel per model. ``scores`` maps a model's name to an object
    with ``clean`` (scores of clean inputs) and ``adversarial`` (``{attack: scores}``)."""
    from ...interpret.tracing import roc_curve

    names = list(scores)
    fig, axes = plt.subplots(2, len(names), figsize=(4.2 * len(names), 6.0), squeeze=False)
    bins = np.linspace(0, 1, 21)
    for c, name in enumerate(names):
        clean, adversarial = scores[name].clean, scores[name].adversarial  # type: ignore[attr-defined]
        ax = axes[0, c]
        ax.hist(clean.numpy(), bins=bins, density=True, alpha=0.5, color="#7f7f7f", label="clean")
        for attack in attacks:
            if len(adversarial[attack]):
                ax.hist(adversarial[attack].numpy(), bins=bins, density=True, histtype="step", lw=1.6,
                        color=PALETTE.get(attack), label=attack.upper())
        ax.set_title(name)
        ax.set_xlabel("agreement score s(x) (0-1)")
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
        ax = axes[1, c]
        for attack in attacks:
            if len(adversarial[attack]):
                fpr, tpr = roc_curve(clean, adversarial[attack])
                ax.plot(fpr, tpr, color=PALETTE.get(attack), label=attack.upper())
        ax.plot([0, 1], [0, 1], ls=":", color="#999999")
        ax.set_xlabel("false-positive rate (clean flagged)")
        ax.set_ylabel("true-positive rate (adversarial flagged)")
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def roc_panel(wrong: np.ndarray, scores: dict[str, np.ndarray], ax: Axes | None = None) -> Figure:
    """ROC curves of wrong-prediction detectors (one per score)."""
    from sklearn.metrics import roc_curve

    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 4.0))
    for name, score in scores.items():
        fpr, tpr, _ = roc_curve(wrong.astype(int), score)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], ls=":", color="#999999")
    ax.set_xlabel("false-positive rate (correct predictions flagged)")
    ax.set_ylabel("true-positive rate (wrong predictions flagged)")
    ax.legend(fontsize=8, loc="lower right")
    return ax.figure  # type: ignore[return-value]


def mutants_and_coverage(counts: Sequence[int], aurocs: np.ndarray, wrong: np.ndarray,
                         scores: dict[str, np.ndarray]) -> Figure:
    """Left: LCR AUROC against the number of mutants (rows of ``aurocs`` = seeds; mean, bars one
    std). Right: accuracy on kept predictions against coverage for each detector score."""
    from ...interpret.error_detection import coverage_curve

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    axes[0].errorbar(counts, aurocs.mean(0), yerr=aurocs.std(0), marker="o", capsize=3)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("number of mutants")
    axes[0].set_ylabel("LCR AUROC (wrong vs correct)")
    for name, score in scores.items():
        cov, acc = coverage_curve(wrong, score)
        axes[1].plot(100 * cov, 100 * acc, label=name)
    axes[1].set_xlabel("coverage (% of test predictions kept)")
    axes[1].set_ylabel("accuracy on kept predictions (%)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig
