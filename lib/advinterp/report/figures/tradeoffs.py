"""What a training choice buys and costs: accuracy epoch by epoch, and accuracy and consistency
against the consistency weight lambda (means over seeds, bars or bands their spread)."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .style import panel_grid


def training_curves(curves: "object", columns: dict[str, str] | None = None,
                    xlabel: str = "epoch of adversarial training") -> Figure:
    """Clean and adversarial training accuracy per epoch, one line per method (mean over seeds,
    band: min-max over seeds). ``curves`` has columns seed, method, epoch and the ``columns``."""
    import pandas as pd

    assert isinstance(curves, pd.DataFrame)
    columns = columns or {"train_acc": "clean training accuracy", "train_adv_acc": "adversarial training accuracy\n"
                          "(the training attack, train mode)"}
    fig, axes = panel_grid(len(columns), 4.6, 3.3)
    for ax, (col, label) in zip(axes.flat, columns.items()):
        for method, group in curves.groupby("method", sort=False):
            g = group.groupby("epoch")[col]
            line = ax.plot(g.mean().index, g.mean().values, marker="o", ms=3, label=str(method))[0]
            ax.fill_between(g.mean().index, g.min().values, g.max().values, alpha=0.15, color=line.get_color())
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
    axes.flat[len(columns) - 1].legend(fontsize=8, title="model")
    fig.tight_layout()
    return fig


def lambda_tradeoff(table: "object", columns: dict[str, str], reference: str = "standard") -> Figure:
    """Each column of ``columns`` (name -> axis label) against the consistency weight lambda, for
    the adversarially trained models (lambda = 0 is plain adversarial training); the standard
    model is a dashed line. Points: mean over seeds; bars: one std."""
    import pandas as pd

    assert isinstance(table, pd.DataFrame)
    adv = table[table["method"] != reference]
    std_rows = table[table["method"] == reference]
    lambdas = sorted(adv["lambda"].unique())
    positions = {lam: i for i, lam in enumerate(lambdas)}
    fig, axes = panel_grid(len(columns), 4.2, 3.2)
    for ax, (col, label) in zip(axes.flat, columns.items()):
        g = adv.groupby("lambda")[col]
        mean, sd = g.mean(), g.std().fillna(0)
        ax.errorbar([positions[v] for v in mean.index], mean.values, yerr=sd.values, marker="o", capsize=3,
                    color="#C44E52", label="adversarial training")
        ax.axhline(std_rows[col].mean(), ls="--", color="#7f7f7f", label="standard training")
        ax.set_xticks(range(len(lambdas)), [f"{v:g}" for v in lambdas])
        ax.set_xlabel("consistency weight lambda\n(0 = plain adversarial training)")
        ax.set_ylabel(label)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def tradeoff_curves(lam: "object", eps: "object") -> Figure:
    """Left three panels: clean accuracy, PGD accuracy and consistency against lambda (chapter 4);
    right: consistency against the budget eps (chapter 3). Bars: one std over seeds."""
    import pandas as pd

    assert isinstance(lam, pd.DataFrame) and isinstance(eps, pd.DataFrame)
    fig, grid = plt.subplots(2, 2, figsize=(9.5, 6.6))
    axes = grid.flatten()
    xs = range(len(lam))
    for ax, (col, label) in zip(axes[:3], [("clean_acc", "clean test accuracy"), ("pgd_acc", "accuracy under PGD"),
                                           ("consis_adv_true", "consis (adversarial,\ntrue labels)")]):
        if len(lam):
            ax.errorbar(xs, lam[col], yerr=lam[f"{col}_std"], marker="o", capsize=3, color="#C44E52")
            ax.set_xticks(list(xs), [f"{v:g}" for v in lam["lambda"]])
        ax.set_xlabel("consistency weight lambda (0 = plain AT)")
        ax.set_ylabel(label)
    ax = axes[3]
    for col, name, color in (("consis_real", "real", "#4C72B0"), ("consis_adv_true", "adversarial, true label", "#DD8452"),
                             ("consis_adv_target", "adversarial, target label", "#55A868")):
        if col in eps:
            ax.errorbar(eps["eps"], eps[col], yerr=eps.get(f"{col}_std"), marker="o", capsize=3, label=name, color=color)
    ax.set_xlabel("L-inf budget eps (pixel units)")
    ax.set_ylabel("consis(n), deepest layer")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
