"""Regularising neural activation sensitivity (Moshe et al., 2022/2024; our reading).

The regulariser penalises how strongly hidden units react to small input changes:

``R = mean over layers l and a random subset S_l of units (re-drawn every step) of ||grad_x a_j(x)||^2``

averaged over the batch, and the loss is ``CE + lambda * R`` (:class:`SensitivityObjective`, a
loss hook of :func:`advinterp.training.loop.train`). Two estimators:

* ``"subset"``: the exact mean over the sampled units S, one double-backward pass per unit;
* ``"projection"``: ``||grad_x (v . a_S(x))||^2 / len(S)`` with a Rademacher vector v, one
  double-backward pass per layer. Because ``E[v_i v_j] = delta_ij`` it equals the subset mean in
  expectation (:func:`projection_estimate` is tested against :func:`exact_sensitivity`).

Random draws use the global stream, which the training loop seeds per epoch.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..core import cache
from ..core.params import choice, integer, listof, number, text
from ..models.layers import recording
from .objectives import ObjectiveOutput

ESTIMATORS = ("projection", "subset")

LAMBDA_NAS = number("lambda_nas", 10.0, 0.0, 1e6, "weight of the sensitivity term")
NAS_LAYERS = listof(text("layer", None, "a layer"), "nas_layers", ["conv2", "fc1"],
                    "layers whose units are regularised")
UNITS_PER_LAYER = integer("units_per_layer", 16, 1, 1 << 20, "units drawn per layer and step")
ESTIMATOR = choice("estimator", "projection", ESTIMATORS,
                   "projection (one double-backward per layer) | subset (one per unit)")


def _units(act: torch.Tensor) -> torch.Tensor:
    return act.flatten(1)


def exact_sensitivity(model: nn.Module, x: torch.Tensor, layer: str, units: torch.Tensor) -> torch.Tensor:
    """``sum over j in units of ||grad_x a_j(x)||^2`` per image (one backward per unit; for tests)."""
    x = x.detach().requires_grad_(True)
    with recording(model, [layer], detach=False) as acts:
        model(x)
    a = _units(acts[layer])
    total = torch.zeros(len(x))
    for j in units.tolist():
        (g,) = torch.autograd.grad(a[:, j].sum(), x, retain_graph=True)
        total += g.flatten(1).pow(2).sum(1).detach().cpu()
    return total


def projection_estimate(a: torch.Tensor, x: torch.Tensor, units: torch.Tensor, *, create_graph: bool = True) -> torch.Tensor:
    """``||grad_x (v . a_units(x))||^2`` per image for one Rademacher draw v: an unbiased
    estimate of ``sum_j ||grad_x a_j||^2`` over ``units``."""
    sub = a[:, units]
    v = torch.randint(0, 2, sub.shape, device=sub.device).float() * 2 - 1
    (g,) = torch.autograd.grad((v * sub).sum(), x, create_graph=create_graph)
    return g.flatten(1).pow(2).sum(1)


@dataclass(frozen=True)
class SensitivityObjective:
    """``CE + lambda * R`` (see the module docstring)."""

    lam: float = 0.1
    layers: tuple[str, ...] = ("conv2", "fc1")
    units: int = 16
    estimator: str = "projection"

    def __post_init__(self) -> None:
        LAMBDA_NAS.validate(self.lam)
        NAS_LAYERS.validate(list(self.layers))
        UNITS_PER_LAYER.validate(self.units)
        ESTIMATOR.validate(self.estimator)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> ObjectiveOutput:
        x = x.detach().requires_grad_(True)
        with recording(model, list(self.layers), detach=False) as acts:
            logits = model(x)
        ce = F.cross_entropy(logits, y)
        penalties = []
        for layer in self.layers:
            a = _units(acts[layer])
            units = torch.randperm(a.shape[1])[: min(self.units, a.shape[1])].to(a.device)
            if self.estimator == "projection":
                r = projection_estimate(a, x, units) / len(units)
            else:
                per = [torch.autograd.grad(a[:, j].sum(), x, create_graph=True)[0].flatten(1).pow(2).sum(1)
                       for j in units.tolist()]
                r = torch.stack(per).mean(0)
            penalties.append(r.mean())
        reg = torch.stack(penalties).mean()
        loss = ce + self.lam * reg if self.lam > 0 else ce
        return ObjectiveOutput(loss, logits, {"ce_clean": float(ce.detach()), "sensitivity": float(reg.detach())})

    def describe(self) -> dict[str, Any]:
        return {"objective": "sensitivity", **asdict(self), "code": cache.code_version(sys.modules[__name__])}
