"""Every figure of :mod:`advinterp.report.figures` (and the forest of intervals) draws from small
synthetic inputs of the shapes the chapters pass, with labelled axes."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from advinterp.report import forest
from advinterp.report.figures import budget, detection, galleries, images, neurons, style, tradeoffs

CLASSES = [str(c) for c in range(10)]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _labelled(fig) -> bool:
    """Some visible axis of ``fig`` has an x or y label."""
    return any(ax.get_xlabel() or ax.get_ylabel() for ax in fig.axes if ax.get_visible())


def test_style_and_panel_grid():
    style.setup()
    fig, axes = style.panel_grid(3, 2.0, 2.0)
    assert axes.shape == (2, 2) and not axes[1, 1].get_visible() and axes[1, 0].get_visible()
    assert set(style.PALETTE) >= {"fgsm", "illc", "pgd", "ensemble", "noise"}


def test_images():
    grey, rgb = torch.rand(1, 5, 6), torch.rand(3, 5, 6) * 2
    assert images.to_image(grey).shape == (5, 6)
    assert images.to_image(rgb).shape == (5, 6, 3) and images.to_image(rgb).max() <= 1
    fig, ax = plt.subplots()
    images.show_image(ax, rgb, "title")
    images.overlay_mask(ax, torch.zeros(5, 6, dtype=torch.bool).index_fill_(0, torch.tensor([1]), True))
    assert ax.get_title() == "title" and not ax.get_xticks().size
    assert images.diverse_indices([3, 1, 3, 2, 1], 4) == [1, 3, 0, 2]
    assert images.diverse_indices(torch.tensor([0, 0, 0]), 2) == [0, 1]


def test_galleries():
    x = torch.rand(4, 1, 8, 8)
    y, target = torch.tensor([0, 1, 2, 3]), torch.tensor([1, 2, 3, 4])
    fig = galleries.adversarial_gallery(x, (x + 0.1).clamp(0, 1), y, target, target, CLASSES, n=4)
    assert len(fig.axes) == 12
    rows = [{"images": x[:3], "titles": ["a", "b", "c"], "masks": torch.rand(3, 8, 8) > 0.5, "label": "conv1 #0"},
            {"images": x, "titles": list("abcd"), "label": "fc1 #3"}]
    assert len(galleries.neuron_rows(rows, CLASSES, 4).axes) == 8
    table = pd.DataFrame({"neuron": [5, 7], "prediction_difference": [0.4, 0.1], "concept": ["3", "1"],
                          "predicted": ["3", "3"]})
    tracer = SimpleNamespace(explain=lambda image, classes: table, real_topk=SimpleNamespace(
        indices=torch.arange(40).view(8, 5) % 4), reference_x=x)
    fig = galleries.explanations([{"title": "clean", "image": x[0], "tracer": tracer}], CLASSES, n_neurons=3,
                                 n_thumbs=2)
    assert len(fig.axes) == 7
    maps = {(m, meth): torch.randn(2, 1, 8, 8) for m in ("standard", "nas") for meth in ("saliency", "input_x_grad")}
    fig = galleries.attribution_gallery(x, maps, ["standard", "nas"], ["saliency", "input_x_grad"], n_images=2)
    assert len(fig.axes) == 15


def test_budget():
    curve = pd.DataFrame([{"attack": a, "eps": e, "success_rate": e * 2} for a in ("fgsm", "pgd", "noise")
                          for e in (0.1, 0.2, 0.3)])
    assert _labelled(budget.success_curves(curve))
    table = pd.DataFrame({"aa_acc": [0.1, 0.4], "clean_acc": [0.99, 0.95], "aa_acc_std": [0.01, 0.02],
                          "clean_acc_std": [0.0, 0.01]}, index=["standard", "nas_1"])
    assert len(budget.robustness_sweep(table).axes) == 1
    fig = budget.robustness_sweep(table, {"standard": ([0.1, 0.5], [0.3, 0.0])})
    assert len(fig.axes) == 2 and _labelled(fig)


def test_tradeoffs():
    curves = pd.DataFrame([{"seed": s, "method": m, "epoch": e, "train_acc": 0.9, "train_adv_acc": 0.5}
                           for s in (0, 1) for m in ("at", "cl") for e in (1, 2, 3)])
    assert _labelled(tradeoffs.training_curves(curves))
    table = pd.DataFrame([{"method": "standard" if lam is None else "adversarial", "lambda": lam or 0.0,
                           "seed": s, "clean_acc": 0.9, "pgd_acc": 0.4} for lam in (None, 0.0, 1.0, 10.0)
                          for s in (0, 1)])
    assert _labelled(tradeoffs.lambda_tradeoff(table, {"clean_acc": "clean accuracy", "pgd_acc": "PGD accuracy"}))
    cols = ("clean_acc", "pgd_acc", "consis_adv_true")
    lam = pd.DataFrame({"lambda": [0.0, 1.0], **{c: [0.5, 0.6] for c in cols}, **{f"{c}_std": [0.01, 0.02] for c in cols}})
    eps = pd.DataFrame({"eps": [0.1, 0.2], "consis_real": [0.5, 0.5], "consis_real_std": [0.1, 0.1],
                        "consis_adv_true": [0.4, 0.3]})
    assert len(tradeoffs.tradeoff_curves(lam, eps).axes) == 4


def test_neurons():
    table = pd.DataFrame({"layer": ["conv1"] * 6 + ["fc1"] * 6, "live": [True] * 11 + [False],
                          "target_agreement": np.linspace(0, 1, 12), "true_agreement": np.linspace(1, 0, 12)})
    assert _labelled(neurons.agreement_histograms(table))
    correct, wrong = np.random.default_rng(0).normal(size=(2, 10, 6))
    assert _labelled(neurons.conductance_patterns(correct, wrong, CLASSES))


def test_detection():
    g = torch.Generator().manual_seed(0)
    scored = SimpleNamespace(clean=torch.rand(30, generator=g),
                             adversarial={"pgd": torch.rand(20, generator=g) * 0.5, "fgsm": torch.empty(0)})
    fig = detection.detector_curves({"standard": scored, "at": scored}, ["pgd", "fgsm"])
    assert len(fig.axes) == 4 and _labelled(fig)
    rng = np.random.default_rng(0)
    wrong = rng.random(50) < 0.3
    scores = {"lcr": rng.random(50), "msp": rng.random(50)}
    assert _labelled(detection.roc_panel(wrong, scores))
    fig = detection.mutants_and_coverage([10, 100], rng.random((3, 2)), wrong, scores)
    assert len(fig.axes) == 2 and _labelled(fig)


def test_interval_forest():
    rows = pd.DataFrame([{"a": "nas", "b": "standard", "metric": m, "diff": 0.1, "lo": -0.1, "hi": 0.3,
                          "usable": m != "sparsity", "primary": m == "mprt", "outcome": o}
                         for m, o in (("mprt", "better"), ("sparsity", "no difference"), ("smoothness", "worse"))])
    fig = forest.interval_forest(rows, [("nas", "standard")])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][0] == "mprt (primary)"
