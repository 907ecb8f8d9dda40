"""Pictures of intervals: the verdicts of every claim (the intro's forest plot), an effect layer
by layer (chapters 2-3) and paired differences between models (chapter 7). Drawing only: the
intervals come from :mod:`advinterp.core.stats` and the verdicts from
:mod:`advinterp.report.verdicts`; the other figures are in :mod:`advinterp.report.figures`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .figures.style import panel_grid
from .verdicts import HOLDS, INCONCLUSIVE, NEGLIGIBLE, OPPOSITE

VERDICT_COLORS = {HOLDS: "#2a9d8f", OPPOSITE: "#c0392b", NEGLIGIBLE: "#e9a03b", INCONCLUSIVE: "#8d8d8d"}
TIER_MARKERS = ("o", "s", "D", "^")


def verdict_forest(frame: pd.DataFrame) -> Figure:
    """One row per claim, one marker per tier (column), each claim's deciding effect and its 95 %
    interval in units of its delta (0: no effect; 1: the smallest effect of interest; a
    non-inferiority claim's bound is at -1), coloured by verdict. ``frame``: rows of
    :func:`advinterp.report.claims.forest`."""
    if frame.empty:
        fig, ax = plt.subplots(figsize=(7.6, 1.2))
        ax.text(0.5, 0.5, "no claim has been decided yet (run the chapters)", ha="center", va="center")
        ax.set_axis_off()
        return fig
    claims = list(dict.fromkeys(frame["claim"]))
    tiers = list(dict.fromkeys(frame["tier"]))
    fig, ax = plt.subplots(figsize=(7.6, 0.42 * len(claims) + 1.6))
    offsets = np.linspace(-0.22, 0.22, len(tiers)) if len(tiers) > 1 else np.zeros(1)
    for i, claim in enumerate(claims):
        for off, marker, tier in zip(offsets, TIER_MARKERS, tiers):
            rows = frame[(frame.claim == claim) & (frame.tier == tier)]
            for r in rows.itertuples():
                y = i + off
                color = VERDICT_COLORS[r.verdict]
                lo, hi = np.clip([r.lo, r.hi], -6, 6)
                ax.plot([lo, hi], [y, y], color=color, lw=2.2)
                ax.plot([np.clip(r.estimate, -6, 6)], [y], marker, color=color, mec="black", mew=0.5, ms=6)
                if r.margin:
                    ax.plot([-1, -1], [y - 0.2, y + 0.2], color="black", lw=1)
    ax.axvline(0, color="black", lw=0.9)
    ax.axvline(1, color="black", lw=0.9, ls="--")
    ax.set_yticks(range(len(claims)), claims)
    ax.invert_yaxis()
    ax.set_xlabel("effect in units of its δ (0: none; dashed: the smallest effect of interest)")
    ax.set_xlim(-6.2, 6.2)
    verdict_handles = [Line2D([], [], color=c, lw=2.2, label=v) for v, c in VERDICT_COLORS.items()]
    tier_handles = [Line2D([], [], marker=m, ls="", color="white", mec="black", label=t)
                    for m, t in zip(TIER_MARKERS, tiers)]
    ax.legend(handles=verdict_handles + tier_handles, loc="upper center", bbox_to_anchor=(0.5, -0.5 / ax.figure.get_figheight() - 0.08),
              ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def layer_intervals(frame: pd.DataFrame, effects: Mapping[str, str], panels: Sequence[str], ylabel: str, *,
                    panel_column: str = "network", x_column: str = "layer",
                    xlabel: str = "layer (shallow to deep)") -> Figure:
    """One panel per value of ``panel_column`` (``panels``): each effect of ``effects`` (name -> legend
    label) at each value of ``x_column`` (layers, in order) with its interval over seeds and images.
    ``frame`` has columns ``panel_column``, ``x_column``, ``effect``, ``estimate``, ``lo``, ``hi``."""
    fig, axes = panel_grid(len(panels), 3.7, 3.0, extra_height=0.5, sharey=True)
    colors = ("#C44E52", "#7f7f7f", "#4C72B0", "#55A868")
    for ax, panel in zip(axes.flat, panels):
        sub = frame[frame[panel_column] == panel]
        layers = list(dict.fromkeys(sub[x_column]))
        width = 0.6 / max(1, len(effects))
        for j, ((name, label), color) in enumerate(zip(effects.items(), colors)):
            rows = sub[sub.effect == name].set_index(x_column).reindex(layers)
            xs = np.arange(len(layers)) + (j - (len(effects) - 1) / 2) * width
            err = np.vstack([rows.estimate - rows.lo, rows.hi - rows.estimate])
            ax.errorbar(xs, rows.estimate, yerr=err, fmt="o", capsize=3, color=color, label=label)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(range(len(layers)), layers)
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel(xlabel)
    for row in axes:
        row[0].set_ylabel(ylabel, fontsize=9)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(effects), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig


def interval_forest(rows: pd.DataFrame, pairs: Sequence[tuple[str, str]]) -> Figure:
    """One panel per pair ``a - b``: each metric's paired difference, oriented so that right of the zero
    line means ``a`` is more interpretable, with its 95 % interval. ``rows`` has columns a, b, metric,
    diff, lo, hi, usable, primary, outcome (chapter 7's comparisons): the primary comparison is drawn
    thick; colour says the Holm-adjusted outcome of a descriptive comparison (green better, red worse,
    grey no difference); hollow points are comparisons the sanity check disqualifies."""
    fig, axes = panel_grid(len(pairs), 4.4, 0.4 * rows.metric.nunique() + 1.4, sharey=True)
    colors = {"better": "#2a9d8f", "worse": "#e76f51", "no difference": "#888888"}
    for ax, (a, b) in zip(axes.flat, pairs):
        sub = rows[(rows.a == a) & (rows.b == b)]
        for i, (_, r) in enumerate(sub.iterrows()):
            color = colors[r.outcome]
            ax.plot([r.lo, r.hi], [i, i], color=color, lw=4.0 if r.primary else 2.0)
            ax.plot([r["diff"]], [i], "o", color=color, mfc=color if r.usable else "white")
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(range(len(sub)))
        ax.set_yticklabels([f"{m} (primary)" if p else m for m, p in zip(sub.metric, sub.primary)])
        ax.set_title(f"{a} vs {b}", fontsize=10)
        ax.set_xlabel(f"<- {b} better | {a} better ->", fontsize=8)
    fig.tight_layout()
    return fig
