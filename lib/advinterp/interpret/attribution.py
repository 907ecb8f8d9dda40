"""Interpretability metrics of attribution maps (chapter 7; Moshe et al.'s comparison, our choice).

Attribution methods (Captum): ``saliency`` (the input gradient of the target logit, signed),
``integrated_gradients`` (Sundararajan et al.; baseline: zeros in the model's normalised input
space, i.e. the mean image, as for conductance - a black baseline would give zero attribution to
every black pixel and make the relevance mass trivially 1 on MNIST) and ``smoothgrad`` (Smilkov et
al., saliency averaged over Gaussian-noised copies). Metrics, per image:

* ``infidelity`` - Captum's ``infidelity`` (Yeh et al. 2019) with Gaussian perturbations: how badly
  ``<attribution, I>`` predicts the output change ``f(x) - f(x - I)`` (lower is better);
* ``sens_max`` - Captum's ``sensitivity_max``: the largest change of the map under input
  perturbations of radius 0.02 (lower is better);
* ``deletion_auc`` - pixel flipping (Samek et al. 2017): delete (set to 0) pixels from most to least
  relevant, area under the target probability curve (lower is better);
* ``alignment`` - ``|<x, g>| / (||x|| ||g||)`` for the saliency map g (higher: the gradient looks
  like the image, as for robust models);
* ``relevance_mass`` - for MNIST, the share of absolute attribution on the digit (pixels > 0)
  (higher is better).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..core._helpers import eval_mode
from ..core.devices import seeded_rng
from ..core.validation import check_choice
from .conductance import zero_baseline

METHODS = ("saliency", "integrated_gradients", "smoothgrad")


def explainer(model: nn.Module, method: str, *, ig_steps: int = 32, smooth_samples: int = 16,
              smooth_std: float = 0.1) -> Callable[..., torch.Tensor]:
    """``f(inputs, target=...) -> attributions`` for one of :data:`METHODS`."""
    from captum.attr import IntegratedGradients, NoiseTunnel, Saliency

    check_choice("attribution", method, METHODS)
    if method == "saliency":
        sal = Saliency(model)
        return lambda inputs, target: sal.attribute(_leaf(inputs), target=target, abs=False)
    if method == "integrated_gradients":
        ig = IntegratedGradients(model)

        def integrated(inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            leaf = _leaf(inputs)
            first = leaf[0] if isinstance(leaf, tuple) else leaf
            return ig.attribute(leaf, baselines=zero_baseline(model, first), target=target, n_steps=ig_steps,
                                internal_batch_size=512)

        return integrated
    tunnel = NoiseTunnel(Saliency(model))
    return lambda inputs, target: tunnel.attribute(_leaf(inputs), nt_type="smoothgrad", nt_samples=smooth_samples,
                                                   stdevs=smooth_std, target=target, abs=False)


def _leaf(inputs: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """Inputs as fresh leaves that require gradients (Captum warns otherwise)."""
    if isinstance(inputs, tuple):
        return tuple(t.detach().requires_grad_() for t in inputs)
    return inputs.detach().requires_grad_()


def _gaussian_perturbation(std: float = 0.1) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    def perturb(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noise = torch.randn_like(inputs) * std
        return noise, inputs - noise

    return perturb


def infidelity(model: nn.Module, x: torch.Tensor, attributions: torch.Tensor, target: torch.Tensor, *,
               n_perturb: int = 16, std: float = 0.1) -> torch.Tensor:
    """Captum's infidelity with Gaussian perturbations of ``std`` (per image, lower is better)."""
    from captum.metrics import infidelity as captum_infidelity

    return captum_infidelity(model, _gaussian_perturbation(std), x, attributions, target=target,
                             n_perturb_samples=n_perturb, normalize=False).detach()


def sensitivity_max(explain: Callable[..., torch.Tensor], x: torch.Tensor, target: torch.Tensor, *,
                    radius: float = 0.02, n_perturb: int = 4) -> torch.Tensor:
    """Captum's ``sensitivity_max`` of an explanation function (per image, lower is better)."""
    from captum.metrics import sensitivity_max as captum_sensitivity_max

    return captum_sensitivity_max(explain, x, target=target, perturb_radius=radius,
                                  n_perturb_samples=n_perturb).detach()


@torch.no_grad()
def deletion_curve(model: nn.Module, x: torch.Tensor, attributions: torch.Tensor, target: torch.Tensor, *,
                   steps: int = 20, baseline: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Target probability as the most relevant pixels (by absolute attribution summed over channels) are
    deleted in ``steps`` equal chunks; returns ``(fractions (steps+1,), probs (N, steps+1))``."""
    n, _, h, w = x.shape
    relevance = attributions.abs().sum(1).reshape(n, -1)
    order = relevance.argsort(dim=1, descending=True)
    fractions = torch.linspace(0, 1, steps + 1)
    probs = []
    for f in fractions:
        k = int(round(float(f) * h * w))
        mask = torch.zeros(n, h * w, dtype=torch.bool)
        if k:
            mask.scatter_(1, order[:, :k], True)
        xd = torch.where(mask.view(n, 1, h, w), torch.full_like(x, baseline), x)
        p = torch.softmax(model(xd), 1).gather(1, target.view(-1, 1)).squeeze(1)
        probs.append(p.cpu())
    return fractions, torch.stack(probs, 1)


def deletion_auc(model: nn.Module, x: torch.Tensor, attributions: torch.Tensor, target: torch.Tensor,
                 steps: int = 20) -> torch.Tensor:
    """Area under the deletion curve (trapezoid over the deleted fraction; lower is better)."""
    fractions, probs = deletion_curve(model, x, attributions, target, steps=steps)
    return torch.trapezoid(probs, fractions, dim=1)


def alignment(x: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """``|<x, g>| / (||x|| ||g||)`` per image."""
    a, g = x.flatten(1), gradient.flatten(1)
    return (a * g).sum(1).abs() / (a.norm(dim=1) * g.norm(dim=1)).clamp_min(1e-12)


def relevance_mass(attributions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Share of the absolute attribution (summed over channels) inside ``mask`` ``(N, H, W)``."""
    r = attributions.abs().sum(1)
    return (r * mask).flatten(1).sum(1) / r.flatten(1).sum(1).clamp_min(1e-12)


def evaluate_attributions(model: nn.Module, x: torch.Tensor, method: str, *, digit_mask: bool = True,
                          target: torch.Tensor | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    """Every metric of the module docstring for ``method`` on images ``x`` (target: predicted).

    The noise of infidelity, sensitivity-max and SmoothGrad is drawn from torch's generator seeded
    with ``seed`` inside :func:`advinterp.core.devices.seeded_rng` (the caller's stream is untouched)."""
    with eval_mode(model), seeded_rng(seed, x.device):
        if target is None:
            with torch.no_grad():
                target = model(x).argmax(1)
        explain = explainer(model, method)
        attr = explain(x, target=target).detach()
        grad = explainer(model, "saliency")(x, target=target).detach()
        out = {
            "infidelity": infidelity(model, x, attr, target),
            "sens_max": sensitivity_max(explain, x, target),
            "deletion_auc": deletion_auc(model, x, attr, target),
            "alignment": alignment(x, grad),
        }
        if digit_mask:
            out["relevance_mass"] = relevance_mass(attr, (x.sum(1) > 0).float())
        out["attributions"] = attr
    return out
