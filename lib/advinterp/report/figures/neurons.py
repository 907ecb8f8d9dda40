"""Distributions over neurons and channels: how often a neuron's adversarial top images carry its
dominant real class (chapter 2), and mean conductance per class and channel (chapter 6)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def agreement_histograms(table: "object", ax: Axes | None = None) -> Figure:
    """Per live neuron: the fraction of its top-K adversarial images whose target (resp. true)
    label is the neuron's dominant real class, as overlaid histograms per layer."""
    import pandas as pd
    import seaborn as sns

    assert isinstance(table, pd.DataFrame)
    live = table[table["live"]]
    long = live.melt(id_vars=["layer"], value_vars=["target_agreement", "true_agreement"],
                     var_name="label of the adversarial image", value_name="agreement")
    long["label of the adversarial image"] = long["label of the adversarial image"].map(
        {"target_agreement": "target label", "true_agreement": "true label"})
    grid = sns.displot(long, x="agreement", hue="label of the adversarial image", col="layer", bins=np.linspace(0, 1, 11),
                       multiple="dodge", shrink=0.85, stat="percent", common_norm=False, height=3.0, aspect=1.2,
                       col_wrap=2,
                       facet_kws={"sharey": False}, palette={"target label": "#C44E52", "true label": "#4C72B0"})
    grid.set_axis_labels("share of the top-K adversarial images\nwith the neuron's dominant real class",
                         "neurons (% of live)")
    sns.move_legend(grid, "lower center", bbox_to_anchor=(0.5, -0.02), ncol=2, frameon=False)
    grid.figure.set_size_inches(7.6, 3.5)
    grid.figure.tight_layout(rect=(0, 0.14, 1, 1))
    return grid.figure


def conductance_patterns(correct: np.ndarray, wrong: np.ndarray, classes: Sequence[str]) -> Figure:
    """Mean conductance per (predicted class, channel), correct vs wrong predictions (Wu et al.'s
    figure of class-specific channels); one shared colour scale."""
    vmax = np.nanmax(np.abs(np.r_[correct, wrong]))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    for ax, table, title in ((axes[0], correct, "correct predictions"), (axes[1], wrong, "wrong predictions")):
        im = ax.imshow(table, aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set_title(title)
        ax.set_xlabel("channel of the analysed layer")
        ax.set_yticks(range(len(classes)), classes)
    axes[0].set_ylabel("predicted class")
    fig.colorbar(im, ax=axes, label="mean conductance\n(logit units per channel position)")
    return fig
