"""Figures shared by chapters. Every figure has axis labels with units and is captioned in the
chapter (myst-nb cell metadata), so functions here draw and label but do not caption."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

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
        style = CONTROL_STYLE if name == "noise" else {"label": str(name).upper(), "ls": "-"}
        ax.plot(group["eps"], 100 * group["success_rate"], marker="o", color=PALETTE.get(str(name)), **style)
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


def overlay_mask(ax: Axes, mask: torch.Tensor, color: str = "#ff3b30", alpha: float = 0.45) -> None:
    """Tint the pixels of ``mask`` (H, W) and outline them (a neuron's patch)."""
    m = mask.float().numpy()
    rgba = np.zeros((*m.shape, 4))
    rgba[..., :3] = plt.matplotlib.colors.to_rgb(color)
    rgba[..., 3] = alpha * m
    ax.imshow(rgba)
    if m.any() and not m.all():
        ax.contour(m, levels=[0.5], colors=[color], linewidths=0.8)


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


def consistency_violins(table: "object") -> Figure:
    """consis(n) of live neurons: real / adversarial-true / adversarial-target, per attack and layer."""
    import pandas as pd
    import seaborn as sns

    assert isinstance(table, pd.DataFrame)
    live = table[table["live"]]
    long = live.melt(id_vars=["layer", "attack", "seed"],
                     value_vars=["consis_real", "consis_adv_true", "consis_adv_target"],
                     var_name="probes", value_name="consis")
    long["probes"] = long["probes"].map({"consis_real": "real", "consis_adv_true": "adversarial, true label",
                                         "consis_adv_target": "adversarial, target label"})
    grid = sns.catplot(long, x="attack", y="consis", hue="probes", row="layer", kind="violin", cut=0,
                       inner="quartile", density_norm="width", height=2.6, aspect=3.0, linewidth=0.8)
    grid.set_axis_labels("attack", "consis(n)")
    return grid.figure


def representation_curves(table: "object", measure: str = "cs") -> Figure:
    """Similarity of phi(x_adv) to phi(x), to the true-class mean and to the target-class mean,
    against depth; mean and spread (one std) over seeds; one panel per attack."""
    import pandas as pd

    assert isinstance(table, pd.DataFrame)
    attacks = list(dict.fromkeys(table["attack"]))
    fig, axes = panel_grid(len(attacks), 3.4, 3.0, extra_height=0.5, sharey=True)
    nrows = axes.shape[0]
    names = {f"{measure}_own": "own clean image", f"{measure}_true": "true-class mean",
             f"{measure}_target": "target-class mean"}
    colors = {f"{measure}_own": "#7f7f7f", f"{measure}_true": "#4C72B0", f"{measure}_target": "#C44E52"}
    label = {"cs": "cosine similarity", "r": "Pearson r", "lc": "local consistency (LC)"}[measure]
    for ax, attack in zip(axes.flat, attacks):
        sub = table[table["attack"] == attack]
        g = sub.groupby(["depth", "layer"], sort=True)
        for col, name in names.items():
            if col not in sub:
                continue
            mean, std = g[col].mean(), g[col].std().fillna(0)
            xs = [d for d, _ in mean.index]
            ax.errorbar(xs, mean.values, yerr=std.values, marker="o", capsize=3, label=name, color=colors[col])
        ax.set_xticks([d for d, _ in g.size().index], [layer for _, layer in g.size().index])
        ax.set_title(attack.upper())
        ax.set_xlabel("layer (shallow to deep)")
    for row in axes:
        row[0].set_ylabel(f"{label}\n(bars: std over seeds)", fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, title="phi(x_adv) compared with", loc="lower center", ncol=3, fontsize=9,
               title_fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.5 / (3.0 * nrows + 0.5) + 0.04, 1, 1))
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


def detector_curves(scores: dict[str, object], attacks: Sequence[str]) -> Figure:
    """Top: distribution of the agreement score s(x) on clean and adversarial inputs; bottom: ROC
    curves of flagging a low score, one panel per model. ``scores`` maps a model's name to an object
    with ``clean`` (scores of clean inputs) and ``adversarial`` (``{attack: scores}``)."""
    from ..interpret.tracing import roc_curve

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
    from ..interpret.error_detection import coverage_curve

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


def grouped_bars(table: "object", by: str, columns: dict[str, str], ylabel: str, ax: Axes | None = None) -> Figure:
    """One group of bars per value of ``by`` (e.g. the training method), one bar per column
    (name -> legend label): mean over the rows of the group (seeds), error bar one std; a zero line."""
    import pandas as pd

    assert isinstance(table, pd.DataFrame)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.6 * table[by].nunique() + 2.5, 3.4))
    groups = list(dict.fromkeys(table[by]))
    width = 0.8 / len(columns)
    for j, (col, label) in enumerate(columns.items()):
        g = table.groupby(by, sort=False)[col]
        mean, std = g.mean().reindex(groups), g.std().reindex(groups)
        ax.bar(np.arange(len(groups)) + (j - (len(columns) - 1) / 2) * width, mean.values, width,
               yerr=std.fillna(0).values, capsize=3, label=label)
    ax.axhline(0, color="#333333", lw=0.8)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_xlabel(by)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
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


def interval_forest(rows: "object", pairs: Sequence[tuple[str, str]]) -> Figure:
    """One panel per pair ``a - b``: each metric's paired difference, oriented so that right of the zero
    line means ``a`` is more interpretable, with its 95 % interval. ``rows`` has columns a, b, metric,
    diff, lo, hi, usable, primary, outcome (chapter 7's comparisons): the primary comparison is drawn
    thick; colour says the Holm-adjusted outcome of a descriptive comparison (green better, red worse,
    grey no difference); hollow points are comparisons the sanity check disqualifies."""
    import pandas as pd

    assert isinstance(rows, pd.DataFrame)
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
