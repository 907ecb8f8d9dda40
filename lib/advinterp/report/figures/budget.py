"""What an attack achieves as its budget eps grows: success rates, and robust accuracy with the
gradient-masking check."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .style import CONTROL_STYLE, PALETTE


def success_curves(table: "object", ax: Axes | None = None) -> Figure:
    """Attack success rate (%) against eps (pixel units on a 0-1 scale), one line per attack."""
    import pandas as pd

    assert isinstance(table, pd.DataFrame)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, group in table.groupby("attack", sort=False):
        style = CONTROL_STYLE if name == "noise" else {"label": str(name).upper(), "ls": "-"}
        ax.plot(group["eps"], 100 * group["success_rate"], marker="o", color=PALETTE.get(str(name)), **style)
    ax.set_xlabel("L-inf budget eps (pixel intensity, images in [0, 1])")
    ax.set_ylabel("success rate (% of correctly\nclassified probes misclassified)")
    ax.set_ylim(-3, 103)
    ax.legend(title="attack", loc="lower right")
    return ax.figure  # type: ignore[return-value]


def robustness_sweep(table: "object", curves: dict[str, tuple[Sequence[float], Sequence[float]]] | None = None) -> Figure:
    """Left: clean accuracy against AutoAttack-core accuracy, one point per model (mean over seeds,
    error bars one std); right (``curves``: model -> (eps grid, accuracy)): accuracy against eps."""
    import pandas as pd

    assert isinstance(table, pd.DataFrame)
    fig, axes = plt.subplots(1, 2 if curves else 1, figsize=(10.5 if curves else 5.5, 3.8), squeeze=False)
    ax = axes[0, 0]
    for name, row in table.iterrows():
        ax.errorbar(row["aa_acc"], row["clean_acc"], xerr=row.get("aa_acc_std"), yerr=row.get("clean_acc_std"),
                    fmt="s" if not str(name).startswith("nas") else "o", ms=6, capsize=2, label=str(name))
    ax.set_xlabel("accuracy under AutoAttack's core")
    ax.set_ylabel("clean accuracy")
    ax.legend(fontsize=8)
    if curves:
        ax2 = axes[0, 1]
        for name, (grid, acc) in curves.items():
            ax2.plot(grid, acc, marker="o", ms=3, label=str(name))
        ax2.set_xlabel("eps (PGD)")
        ax2.set_ylabel("accuracy")
        ax2.set_title("gradient-masking check: accuracy must fall to ~0", fontsize=9)
        ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig
