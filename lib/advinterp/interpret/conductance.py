"""Layer conductance exactly as Wu et al. compute it (after Dhamdhere et al., 2019).

For a hidden unit y of a layer and the output F = pre-softmax logit of the *predicted* class,
along the straight path ``x(a) = x' + a (x - x')`` from the baseline x' (zeros in the model's
*normalised* input space, i.e. the per-channel mean image in pixel space):

``Cond_y(x) = integral_0^1 dF/dy(x(a)) * dy(x(a))/da da``

approximated with m steps as ``sum_{k=1..m} dF/dy|_{x_k} * (y(x_k) - y(x_{k-1}))``: the gradient at
the **right** end of each step (Wu et al.'s implementation). ``rule="left"`` takes it at the left
end, which is what ``captum.attr.LayerConductance(method="riemann_trapezoid")`` computes. Summed
over all units of a layer, conductance tends to ``F(x) - F(x')`` as m grows (completeness).
The m+1 path points of a batch are evaluated in one batched forward/backward pass.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from torch import nn

from ..core import cache
from ..core._helpers import chunks, eval_mode, model_device
from ..core.validation import check_choice, check_int
from ..data import datasets
from ..models.architectures import Normalize
from ..models.layers import recording


def zero_baseline(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The image whose normalised version is all zeros: the per-channel mean, in pixel space."""
    norm = next((m for m in model.modules() if isinstance(m, Normalize)), None)
    if norm is None:
        raise ValueError("the model has no Normalize layer: pass an explicit baseline")
    return norm.mean.to(x.device).expand_as(x).clone()


def layer_conductance(
    model: nn.Module,
    x: torch.Tensor,
    layer: str,
    *,
    steps: int = 10,
    target: torch.Tensor | None = None,
    baseline: torch.Tensor | None = None,
    rule: str = "right",
    reduce: str = "mean",
    batch_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Conductance of every unit of ``layer`` for every image; returns ``(conductance, target)``.

    ``target`` defaults to the predicted class. ``reduce``: ``"mean"`` (a conv channel's spatial
    mean, Wu et al.'s feature), ``"sum"`` (a channel's total) or ``"none"`` (every unit). Dense
    layers are unaffected by ``reduce``. Eval mode; the model's mode is restored.
    """
    steps = check_int("conductance_steps", steps, 1, 10_000)
    check_choice("rule", rule, ("right", "left"))
    check_choice("reduce", reduce, ("mean", "sum", "none"))
    device = model_device(model)
    alphas = torch.linspace(0, 1, steps + 1, device=device)
    outs, targets = [], []
    with eval_mode(model):
        for part in chunks(len(x), batch_size):
            xb = x[part].to(device)
            b = zero_baseline(model, xb) if baseline is None else baseline[part].to(device)
            n = len(xb)
            path = (b.unsqueeze(0) + alphas.view(-1, *[1] * xb.ndim) * (xb - b).unsqueeze(0)).reshape(-1, *xb.shape[1:])
            with torch.enable_grad(), recording(model, [layer], detach=False) as acts:
                logits = model(path)
                y = acts[layer]
                # the last path point (alpha = 1) is x itself: its prediction is the default target
                t = logits[-n:].argmax(1).detach() if target is None else target[part].to(device)
                f = logits.gather(1, t.repeat(steps + 1).view(-1, 1)).sum()
                (grad,) = torch.autograd.grad(f, y)
            y = y.detach().view(steps + 1, n, *y.shape[1:])
            grad = grad.view(steps + 1, n, *grad.shape[1:])
            dy = y[1:] - y[:-1]
            g = grad[1:] if rule == "right" else grad[:-1]
            cond = (g * dy).sum(0)  # (n, ...)
            if cond.ndim == 4 and reduce != "none":
                cond = cond.mean((2, 3)) if reduce == "mean" else cond.sum((2, 3))
            outs.append(cond.cpu())
            targets.append(t.cpu())
    return torch.cat(outs), torch.cat(targets)


@torch.no_grad()
def completeness_gap(model: nn.Module, x: torch.Tensor, layer: str, steps: int, rule: str = "right") -> torch.Tensor:
    """``|sum of a layer's conductance - (F(x) - F(x'))|`` per image (0 in the limit of many steps)."""
    cond, t = layer_conductance(model, x, layer, steps=steps, rule=rule, reduce="none")
    b = zero_baseline(model, x)
    with eval_mode(model):
        f = model(x).gather(1, t.view(-1, 1)).squeeze(1) - model(b).gather(1, t.view(-1, 1)).squeeze(1)
    return (cond.flatten(1).sum(1) - f.cpu()).abs()


def cached_features(model_key: str, data_identity: str, model: nn.Module, x_train: torch.Tensor,
                    x_test: torch.Tensor, layer: str, *, steps: int) -> dict[str, torch.Tensor]:
    """Wu et al.'s detector features (:func:`layer_conductance`) of the training and the test images with
    the model's predictions (``f_train``, ``pred_train``, ``f_test``, ``pred_test``), cached by the
    model's key, the data's identity, the layer, the steps and this module's code."""
    def compute() -> dict[str, torch.Tensor]:
        f_tr, p_tr = layer_conductance(model, x_train, layer, steps=steps)
        f_te, p_te = layer_conductance(model, x_test, layer, steps=steps)
        return {"f_train": f_tr, "pred_train": p_tr, "f_test": f_te, "pred_test": p_te}

    description = {"model": model_key, "data": data_identity, "code": cache.code_version(sys.modules[__name__], datasets),
                   "layer": layer, "steps": steps}
    return cache.memoized("conductance", description, compute)


def by_class(features: torch.Tensor, predicted: torch.Tensor, correct: torch.Tensor,
             num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean conductance feature per (predicted class, channel), for the correct and for the wrong
    predictions (NaN where a class has none)."""
    out = []
    for mask in (correct, ~correct):
        table = np.full((num_classes, features.shape[1]), np.nan)
        for c in range(num_classes):
            sel = mask & (predicted == c)
            if sel.any():
                table[c] = features[sel].mean(0).numpy()
        out.append(table)
    return out[0], out[1]

