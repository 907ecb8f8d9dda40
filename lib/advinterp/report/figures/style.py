"""The book's plotting style, its colours and its grids of panels."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

#: one colour per attack (and the random-sign control), the same in every chapter
PALETTE = {"fgsm": "#4C72B0", "illc": "#DD8452", "pgd": "#C44E52", "ensemble": "#55A868", "noise": "#7f7f7f"}
#: how a line of the random-sign control is labelled and drawn (the chance level of an attack)
CONTROL_STYLE = {"label": "random signs (control)", "ls": "--"}


def setup() -> None:
    """The book's plotting style (seaborn whitegrid, readable sizes)."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "axes.titlesize": 11, "figure.autolayout": False})


def panel_grid(n: int, width: float, height: float, *, extra_height: float = 0.0,
               **kw: object) -> tuple[Figure, np.ndarray]:
    """``n`` panels of ``width`` x ``height`` inches, at most two a row (legible at the width of the
    book's text column); unused cells are hidden. Returns the figure and the 2-d axes array."""
    ncols = min(2, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows + extra_height), squeeze=False,
                             **kw)  # type: ignore[arg-type]
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes
