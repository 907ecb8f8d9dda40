"""Predictions, accuracy and attack success rates on in-memory tensors.

Success rates follow the convention of Kurakin et al. and Madry et al.: they are measured on
the images the model classifies correctly before the attack (an image already misclassified is
not an adversarial success).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from . import progress

if TYPE_CHECKING:
    import pandas as pd


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Predicted labels for ``x`` (CPU tensor), eval mode, mode restored."""
    return logits_of(model, x, batch_size).argmax(1)


@torch.no_grad()
def logits_of(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Logits for ``x`` on CPU, computed batch by batch on the model's device."""
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    try:
        out = [model(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    finally:
        model.train(was)
    return torch.cat(out)


def accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``pred == y``."""
    return float((pred == y).float().mean()) if len(y) else float("nan")


def untargeted_success(pred_clean: torch.Tensor, pred_adv: torch.Tensor, y: torch.Tensor) -> float:
    """Among images classified correctly before the attack, the fraction misclassified after."""
    ok = pred_clean == y
    return float((pred_adv[ok] != y[ok]).float().mean()) if ok.any() else float("nan")


def targeted_success(pred_clean: torch.Tensor, pred_adv: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> float:
    """Among images classified correctly before the attack, the fraction classified as ``target`` after."""
    ok = pred_clean == y
    return float((pred_adv[ok] == target[ok]).float().mean()) if ok.any() else float("nan")


def success_vs_eps(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps_grid: list[float],
    *,
    steps: int,
    seed: int,
    num_classes: int,
    device: str | torch.device = "cpu",
    attack_names: tuple[str, ...] = ("fgsm", "illc", "pgd"),
) -> "pd.DataFrame":
    """Untargeted success rate of each single-model attack at each eps (chapter 1's curve).

    For ILLC the rate counted is "no longer the true class" (its aim is y_LL; reaching y_LL is
    reported separately as ``target_rate``)."""
    import pandas as pd
    from .advdata import make_adversarial_set

    pred_clean = predict(model, x)
    rows = []
    for eps in progress.bar(sorted(eps_grid), desc="attacks x eps", leave=False):
        for name in attack_names:
            adv = make_adversarial_set(name, [model], x, y, eps=eps, steps=steps, num_classes=num_classes,
                                       seed=seed, device=device)
            pred = predict(model, adv.x_adv)
            rows.append({"attack": name, "eps": eps, "success_rate": untargeted_success(pred_clean, pred, y),
                         "target_rate": targeted_success(pred_clean, pred, y, adv.target) if adv.targeted else None,
                         "max_linf": adv.max_linf})
    return pd.DataFrame(rows)


def transfer_table(adv_x: torch.Tensor, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor,
                   models: dict[str, nn.Module]) -> "pd.DataFrame":
    """For each named model: clean accuracy, targeted success (reaches ``target``) and untargeted
    success (leaves the true class) of one adversarial set."""
    import pandas as pd

    rows = []
    for name, m in models.items():
        pc, pa = predict(m, x), predict(m, adv_x)
        rows.append({"model": name, "clean_acc": accuracy(pc, y),
                     "targeted_success": targeted_success(pc, pa, y, target),
                     "untargeted_success": untargeted_success(pc, pa, y)})
    return pd.DataFrame(rows).set_index("model")


def test_accuracies(models: dict[str, nn.Module], test_set: "torch.utils.data.Dataset", batch_size: int = 512) -> dict[str, float]:
    """Top-1 accuracy of each model on a whole test split (streamed in batches)."""
    from .data import batches

    correct = {n: 0 for n in models}
    total = 0
    for x, y in batches(test_set, batch_size):
        total += len(y)
        for n, m in models.items():
            correct[n] += int((predict(m, x) == y).sum())
    return {n: c / max(total, 1) for n, c in correct.items()}
