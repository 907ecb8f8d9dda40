"""Regularising neural activation sensitivity (Moshe et al., 2022/2024; our reading) together with
the input-Jacobian penalty of its predecessor (arXiv 2009.11349, same group).

The loss is ``CE + lambda * R + lambda_jac * J`` (:class:`SensitivityObjective`, a loss hook of
:func:`advinterp.training.loop.train`).

**The sensitivity term R.** The paper penalises how strongly hidden units react to small input
changes, ``||grad_x a_j(x)||^2``. Read literally (``normalization="none"``) this has a free exit in
a ReLU network: multiplying a layer's weights and bias by ``c > 0`` and the next layer's weights by
``1/c`` leaves every prediction (and the model's real input sensitivity) unchanged and divides the
term by ``c^2``, so the cheapest way to lower it is to shrink the layer. Our default
(``normalization="rms"``) measures each unit's sensitivity *relative to its own scale*:

``R = mean over layers l, units j in S_l of ||grad_x a_j(x)||^2 / s_j^2``,
``s_j^2 = mean_batch a_j^2 + 0.01 * mean_{j'} mean_batch a_{j'}^2``

(``s_j`` is the unit's root-mean-square activation on the batch, with a floor of 1 % of the layer's
mean square (:data:`FLOOR`). The floor matters: a ReLU unit that fires on one image of the batch has
a mean square near 0 but a full input gradient on that image, so without a floor its ratio is
unbounded; on CIFAR-10 a floor of 1e-6 let one such unit carry a ratio of ~6e5 against a median of
~80, and its gradient wrecked the network within 15 steps. A unit nearly silent on the batch has no
scale of its own to be relative to, so it is measured against 1 % of its layer's.) Both numerator and denominator scale by ``c^2``, so R is
invariant to the rescaling (tested), gradient included (``s_j`` is differentiated through). We
chose a per-unit scale rather than normalising the whole layer's output because the paper's
object is the individual neuron. ``S_l`` is a random subset of ``units`` units re-drawn every step.

**The Jacobian term J** (Hoffman et al. 2019, "Robust learning with Jacobian regularization"):
``||J(x)||_F^2`` of the logits with respect to the input, estimated with one random projection
``J ~= C ||grad_x (v . z(x))||^2`` with ``v`` uniform on the unit sphere of ``R^C`` (unbiased since
``E[v v^T] = I / C``; tested against the exact Jacobian). It is what the 2020 predecessor pairs with
the per-neuron term; it is not scale-free, but rescaling the logits changes the cross-entropy, so it
has no free exit.

Estimators: ``"subset"`` is the exact mean over S (one double-backward pass per unit) and logs R
and J separately; ``"projection"`` (the default) estimates ``lambda R + lambda_jac J`` at once from
one double-backward pass: the squared input-gradient norm of ``sum_l w_l . a_S(x) + u . z(x)`` with
``w_j`` proportional to ``v_j / s_j`` for a Rademacher ``v`` and ``u`` on the unit sphere. The
random vectors are independent, so cross terms vanish in expectation and the estimate is unbiased
(:func:`projection_estimate` is tested against :func:`exact_sensitivity`, :func:`jacobian_estimate`
against :func:`exact_jacobian_norm`, the joint form against both); it logs the total penalty.

**Clipping.** The penalty's gradient is steep where training starts (fine-tuning a standard
CIFAR-10 model at ``lambda = 0.3``: a penalty 250 times the cross-entropy and a gradient norm of
~170), and a single step along it can wreck the network. The objective's gradient is therefore
clipped to a global norm of ``max_grad_norm`` (:mod:`advinterp.training.clipping`; 10 by default,
0: off); the fraction of steps it clipped is logged per epoch (``clipped``) with the mean norm
before clipping (``grad_norm``). Steps whose gradient is below the bound are untouched.

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
from . import clipping
from .objectives import ObjectiveOutput

ESTIMATORS = ("projection", "subset")
NORMALIZATIONS = ("rms", "none")

LAMBDA_NAS = number("lambda_nas", 1.0, 0.0, 1e6, "weight of the sensitivity term")
LAMBDA_JAC = number("lambda_jac", 0.1, 0.0, 1e6, "weight of the input-Jacobian term (0: off)")
NAS_LAYERS = listof(text("layer", None, "a layer"), "nas_layers", ["conv2", "fc1"],
                    "layers whose units are regularised")
UNITS_PER_LAYER = integer("units_per_layer", 16, 1, 1 << 20, "units drawn per layer and step")
ESTIMATOR = choice("estimator", "projection", ESTIMATORS,
                   "projection (one double-backward for both terms) | subset (one per unit)")
NORMALIZATION = choice("normalization", "rms", NORMALIZATIONS,
                       "rms (each unit's sensitivity relative to its RMS activation: rescaling-invariant) | "
                       "none (the literal ||grad a_j||^2)")
MAX_GRAD_NORM = number("nas_max_grad_norm", 10.0, 0.0, 1e6,
                       "clip the regularised models' gradient to this global norm (0: off)")
#: the floor of s_j^2 relative to the layer's mean square activation (see the module docstring)
FLOOR = 1e-2


def _units(act: torch.Tensor) -> torch.Tensor:
    return act.flatten(1)


def unit_scale(a: torch.Tensor, normalization: str) -> torch.Tensor:
    """``s_j`` of every unit of ``a`` ``(N, units)`` (ones for ``normalization="none"``)."""
    if normalization == "none":
        return torch.ones(a.shape[1], device=a.device, dtype=a.dtype)
    ms = a.pow(2).mean(0)
    return (ms + FLOOR * ms.mean()).clamp_min(1e-30).sqrt()


def exact_sensitivity(model: nn.Module, x: torch.Tensor, layer: str, units: torch.Tensor,
                      normalization: str = "none") -> torch.Tensor:
    """``sum over j in units of ||grad_x a_j(x)||^2 / s_j^2`` per image (one backward per unit; for
    tests). ``s_j`` is computed on the batch ``x`` (see the module docstring)."""
    NORMALIZATION.validate(normalization)
    x = x.detach().requires_grad_(True)
    with recording(model, [layer], detach=False) as acts:
        model(x)
    a = _units(acts[layer])
    scale = unit_scale(a, normalization).detach()
    total = torch.zeros(len(x))
    for j in units.tolist():
        (g,) = torch.autograd.grad(a[:, j].sum(), x, retain_graph=True)
        total += (g.flatten(1).pow(2).sum(1) / scale[j] ** 2).detach().cpu()
    return total


def projection_estimate(a: torch.Tensor, x: torch.Tensor, units: torch.Tensor, *, scale: torch.Tensor | None = None,
                        create_graph: bool = True) -> torch.Tensor:
    """``||grad_x (w . a_units(x))||^2`` per image, ``w_j = v_j / scale_j`` for one Rademacher draw
    v: an unbiased estimate of ``sum_j ||grad_x a_j||^2 / scale_j^2`` over ``units``. ``scale`` is
    differentiated through (``grad_outputs`` of a graph-building backward)."""
    sub = a[:, units]
    v = torch.randint(0, 2, sub.shape, device=sub.device).to(sub.dtype) * 2 - 1
    w = v if scale is None else v / scale[units]
    (g,) = torch.autograd.grad(sub, x, grad_outputs=w, create_graph=create_graph)
    return g.flatten(1).pow(2).sum(1)


def jacobian_estimate(logits: torch.Tensor, x: torch.Tensor, *, n_proj: int = 1,
                      create_graph: bool = True) -> torch.Tensor:
    """Hoffman et al.'s (2019) random-projection estimate of ``||d logits / d x||_F^2`` per image:
    ``C / n_proj * sum_p ||grad_x (v_p . z)||^2`` with ``v_p`` uniform on the unit sphere (unbiased)."""
    c = logits.shape[1]
    total = torch.zeros(len(x), device=x.device, dtype=x.dtype)
    for _ in range(n_proj):
        v = torch.randn_like(logits)
        v = v / v.norm(dim=1, keepdim=True)
        (g,) = torch.autograd.grad(logits, x, grad_outputs=v, create_graph=create_graph, retain_graph=True)
        total = total + g.flatten(1).pow(2).sum(1)
    return total * c / n_proj


def exact_jacobian_norm(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``||d logits / d x||_F^2`` per image, one backward per class (for tests)."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    total = torch.zeros(len(x))
    for k in range(logits.shape[1]):
        (g,) = torch.autograd.grad(logits[:, k].sum(), x, retain_graph=True)
        total += g.flatten(1).pow(2).sum(1).detach().cpu()
    return total


@dataclass(frozen=True)
class SensitivityObjective:
    """``CE + lambda * R + lambda_jac * J`` (see the module docstring)."""

    lam: float = 1.0
    layers: tuple[str, ...] = ("conv2", "fc1")
    units: int = 16
    estimator: str = "projection"
    normalization: str = "rms"
    lam_jac: float = 0.1
    max_grad_norm: float = 10.0

    def __post_init__(self) -> None:
        LAMBDA_NAS.validate(self.lam)
        LAMBDA_JAC.validate(self.lam_jac)
        NAS_LAYERS.validate(list(self.layers))
        UNITS_PER_LAYER.validate(self.units)
        ESTIMATOR.validate(self.estimator)
        NORMALIZATION.validate(self.normalization)
        MAX_GRAD_NORM.validate(self.max_grad_norm)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> ObjectiveOutput:
        out = self._objective(model, x, y)
        if self.max_grad_norm <= 0:
            return out
        loss, norm = clipping.clip_gradient(out.loss, model, self.max_grad_norm)
        return ObjectiveOutput(loss, out.logits, {**out.stats, "grad_norm": norm,
                                                  "clipped": float(norm > self.max_grad_norm)})

    def _objective(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> ObjectiveOutput:
        x = x.detach().requires_grad_(True)
        with recording(model, list(self.layers), detach=False) as acts:
            logits = model(x)
        ce = F.cross_entropy(logits, y)
        if self.estimator == "projection":
            penalty = self._joint_projection(acts, logits, x)
            loss = ce + penalty.mean()
            return ObjectiveOutput(loss, logits, {"ce_clean": float(ce.detach()), "penalty": float(penalty.mean().detach())})
        penalties = []
        for layer in self.layers:
            a = _units(acts[layer])
            units = torch.randperm(a.shape[1])[: min(self.units, a.shape[1])].to(a.device)
            scale = unit_scale(a, self.normalization)
            per = [torch.autograd.grad(a[:, j].sum(), x, create_graph=True)[0].flatten(1).pow(2).sum(1)
                   / scale[j] ** 2 for j in units.tolist()]
            penalties.append(torch.stack(per).mean(0).mean())
        reg = torch.stack(penalties).mean()
        loss = ce + self.lam * reg if self.lam > 0 else ce
        stats = {"ce_clean": float(ce.detach()), "sensitivity": float(reg.detach())}
        if self.lam_jac > 0:
            jac = jacobian_estimate(logits, x).mean()
            loss = loss + self.lam_jac * jac
            stats["jacobian"] = float(jac.detach())
        stats["penalty"] = float((loss - ce).detach())
        return ObjectiveOutput(loss, logits, stats)

    def _joint_projection(self, acts: dict[str, torch.Tensor], logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``lambda R + lambda_jac J`` per image from ONE double-backward pass: the gradient of
        ``sum_l (w_l . a_l) + (u . z)`` with independent random vectors, ``w_l = sqrt(lambda / (L |S_l|))
        v_l / s`` (Rademacher ``v_l`` on the sampled units) and ``u = sqrt(lambda_jac C)`` times a
        unit vector. The cross terms between layers and logits vanish in expectation, so its squared
        norm is an unbiased estimate of the sum of the two terms (tested)."""
        outputs, weights = [], []
        for layer in self.layers if self.lam > 0 else ():
            a = _units(acts[layer])
            units = torch.randperm(a.shape[1])[: min(self.units, a.shape[1])].to(a.device)
            scale = unit_scale(a, self.normalization)
            v = torch.randint(0, 2, (len(a), len(units)), device=a.device).to(a.dtype) * 2 - 1
            outputs.append(a[:, units])
            weights.append(v / scale[units] * (self.lam / (len(self.layers) * len(units))) ** 0.5)
        if self.lam_jac > 0:
            u = torch.randn_like(logits)
            outputs.append(logits)
            weights.append(u / u.norm(dim=1, keepdim=True) * (self.lam_jac * logits.shape[1]) ** 0.5)
        if not outputs:
            return torch.zeros(len(x), device=x.device)
        grads = torch.autograd.grad(outputs, x, grad_outputs=weights, create_graph=True)
        return grads[0].flatten(1).pow(2).sum(1)

    def describe(self) -> dict[str, Any]:
        return {"objective": "sensitivity", **asdict(self),
                "code": cache.code_version(sys.modules[__name__], clipping)}
