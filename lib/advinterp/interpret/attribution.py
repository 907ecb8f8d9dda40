"""Interpretability metrics of attribution maps (chapter 7; Moshe et al.'s comparison, our choice).

Attribution methods (Captum): ``saliency`` (the input gradient of the target logit, signed),
``integrated_gradients`` (Sundararajan et al.; baseline: zeros in the model's normalised input
space, i.e. the mean image, as for conductance - a black baseline would give zero attribution to
every black pixel and make the relevance mass trivially 1 on MNIST) and ``smoothgrad`` (Smilkov et
al., saliency averaged over Gaussian-noised copies).

Every metric is per image and none can be won by the scale of the logits or by confidence alone:

* ``infidelity`` - Yeh et al.'s (2019) infidelity with Gaussian perturbations, the attribution
  rescaled by the least-squares optimal factor (Captum's ``normalize=True``) and the error divided
  by the energy of the output changes, so the number measures the *shape* of the map in ``[0, 1]``
  and not the logit scale (lower is better). The un-normalised form rewarded models with small logits.
* ``infidelity_wide`` - the same at a wider noise scale (sigma 0.3 instead of 0.1): at 0.1 infidelity
  mostly rewards a model that is locally linear, the very thing smoothness regularisers buy; the
  wider scale asks whether the map also predicts larger changes.
* ``deletion_auc`` - pixel flipping (Samek et al. 2017): delete pixels from most to least relevant,
  replacing them by integrated gradients' own baseline, the mean image (:func:`attribution_baseline`;
  deleting to black scored every model on black patches, a feature of their own); area under the target-probability curve *divided by the probability on the intact
  image* ``p(x)`` (lower is better). Without the division it rewarded low confidence.
* ``deletion_random`` - the same curve deleting pixels in a random order: how sensitive the *model*
  is to occlusion, whatever the map (a baseline, never a verdict); ``deletion_gain =
  deletion_random - deletion_auc`` is what the map's order adds (higher is better), so a model that
  is merely robust (or fragile) to occlusion cannot win it.
* ``faithfulness_corr`` - faithfulness correlation (Bhatt et al. 2020): over random pixel subsets S
  (``subset`` of the pixels each), the Pearson correlation between ``sum_{i in S} a_i`` and the
  drop of the target logit when S is set to the mean image (higher is better; affine changes of the
  logits do not change it).
* ``sparseness`` - the Gini index of the absolute attribution (Chalasani et al. 2020), a
  complexity metric (higher: fewer pixels carry the explanation).
* ``relevance_mass`` - for MNIST, the share of absolute attribution on the digit (pixels > 0): a
  localisation metric (higher is better).
* ``alignment`` - ``|<x, g>| / (||x|| ||g||)`` for the saliency map g, whatever the method (higher:
  the gradient looks like the image, as for robust models).
* ``sens_max`` - Captum's ``sensitivity_max``: the largest change of the map under input
  perturbations of radius 0.02 (lower is better). **Circular** for a model trained to be
  insensitive: it is shown, never used for a verdict (:data:`CIRCULAR`).

Whether a method's numbers may be used at all is decided by the model-parameter randomisation
sanity check (:mod:`advinterp.interpret.sanity`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..attacks.robustness import images_key
from ..core import cache
from ..core._helpers import eval_mode
from ..core.devices import seeded_rng
from ..core.validation import check_choice
from .conductance import zero_baseline

METHODS = ("saliency", "integrated_gradients", "smoothgrad")
#: for each metric, whether larger values mean a more interpretable explanation
HIGHER_IS_BETTER = {"deletion_gain": True, "infidelity": False, "infidelity_wide": False, "deletion_auc": False,
                    "faithfulness_corr": True, "sparseness": True, "relevance_mass": True, "alignment": True,
                    "deletion_random": False, "sens_max": False}
#: the family of each metric
FAMILY = {"deletion_gain": "faithfulness", "infidelity": "faithfulness", "infidelity_wide": "faithfulness",
          "deletion_auc": "faithfulness", "faithfulness_corr": "faithfulness", "sparseness": "complexity",
          "relevance_mass": "localisation", "alignment": "model gradient", "deletion_random": "the model, not the map",
          "sens_max": "robustness of the map"}
#: the noise scales of infidelity and of its wide variant
INFIDELITY_STD, INFIDELITY_WIDE_STD = 0.1, 0.3
#: images on which sensitivity-max is computed (it re-explains each image several times)
SENS_MAX_IMAGES = 32
#: metrics shown but never used for a verdict: a model trained to be insensitive wins them by construction
CIRCULAR = ("sens_max",)


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


@torch.no_grad()
def infidelity(model: nn.Module, x: torch.Tensor, attributions: torch.Tensor, target: torch.Tensor, *,
               n_perturb: int = 16, std: float = 0.1) -> torch.Tensor:
    """Relative infidelity per image (lower is better): Yeh et al.'s (2019) infidelity with Gaussian
    perturbations ``I ~ N(0, std^2)``, ``d = f_t(x) - f_t(x - I)``, the attribution rescaled by the
    least-squares factor ``beta = E[<a, I> d] / E[<a, I>^2]`` (Captum's ``normalize=True``), and
    divided by ``E[d^2]``: ``E[(beta <a, I> - d)^2] / E[d^2]`` in ``[0, 1]``. The division makes it
    independent of the scale of the logits (Captum's number is in squared logit units; a test checks
    that ours times ``E[d^2]`` equals Captum's). Noise comes from torch's global stream."""
    n = len(x)
    xs = x.repeat_interleave(n_perturb, 0)
    noise = torch.randn_like(xs) * std
    t = target.repeat_interleave(n_perturb)
    clean = model(x).gather(1, target.view(-1, 1)).squeeze(1).repeat_interleave(n_perturb)  # f_t(x) once per image
    f = clean - model(xs - noise).gather(1, t.view(-1, 1)).squeeze(1)
    dot = (attributions.repeat_interleave(n_perturb, 0) * noise).flatten(1).sum(1)
    f, dot = f.view(n, n_perturb).double(), dot.view(n, n_perturb).double()
    beta = (dot * f).mean(1) / dot.pow(2).mean(1).clamp_min(1e-30)
    err = (beta[:, None] * dot - f).pow(2).mean(1)
    return (err / f.pow(2).mean(1).clamp_min(1e-30)).float().cpu()


def sensitivity_max(explain: Callable[..., torch.Tensor], x: torch.Tensor, target: torch.Tensor, *,
                    radius: float = 0.02, n_perturb: int = 4) -> torch.Tensor:
    """Captum's ``sensitivity_max`` of an explanation function (per image, lower is better).
    Captum flattens the maps with ``view``: a colour map in channels-last memory (the layout of the
    book's networks) is handed over contiguous."""
    from captum.metrics import sensitivity_max as captum_sensitivity_max

    def contiguous(inputs: Any, **kwargs: Any) -> Any:
        maps = explain(inputs, **kwargs)  # Captum passes and expects a tensor or a tuple of tensors
        return tuple(m.contiguous() for m in maps) if isinstance(maps, tuple) else maps.contiguous()

    return captum_sensitivity_max(contiguous, x, target=target, perturb_radius=radius,
                                  n_perturb_samples=n_perturb).detach()


Baseline = float | torch.Tensor


def _filled(x: torch.Tensor, baseline: Baseline) -> torch.Tensor:
    """What a deleted pixel becomes: ``baseline`` (a number, or an image broadcastable to ``x``)."""
    return torch.as_tensor(baseline, dtype=x.dtype, device=x.device).expand_as(x)


def attribution_baseline(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The image deletion and faithfulness delete to: integrated gradients' own baseline, the
    per-channel mean image (:func:`advinterp.interpret.conductance.zero_baseline`). Deleting to black
    while the map is computed against the mean image scores the map on a question it did not answer
    (and a black patch is itself a strong feature on natural images; ROAD, Rong et al. 2022)."""
    return zero_baseline(model, x)


@torch.no_grad()
def deletion_curve(model: nn.Module, x: torch.Tensor, attributions: torch.Tensor | None, target: torch.Tensor, *,
                   steps: int = 20, baseline: Baseline = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Target probability as the most relevant pixels (by absolute attribution summed over channels) are
    replaced by ``baseline`` in ``steps`` equal chunks; returns ``(fractions (steps+1,), probs (N, steps+1))``.
    ``attributions=None`` deletes the pixels in a random order (torch's global stream)."""
    n, _, h, w = x.shape
    relevance = torch.rand(n, h * w) if attributions is None else attributions.abs().sum(1).reshape(n, -1)
    order = relevance.to(x.device).argsort(dim=1, descending=True)
    fractions = torch.linspace(0, 1, steps + 1)
    probs = []
    for f in fractions:
        k = int(round(float(f) * h * w))
        mask = torch.zeros(n, h * w, dtype=torch.bool, device=x.device)
        if k:
            mask.scatter_(1, order[:, :k], True)
        xd = torch.where(mask.view(n, 1, h, w), _filled(x, baseline), x)
        p = torch.softmax(model(xd), 1).gather(1, target.view(-1, 1)).squeeze(1)
        probs.append(p.cpu())
    return fractions, torch.stack(probs, 1)


def deletion_auc(model: nn.Module, x: torch.Tensor, attributions: torch.Tensor | None, target: torch.Tensor,
                 steps: int = 20, baseline: Baseline = 0.0) -> torch.Tensor:
    """Area under the deletion curve (pixels replaced by ``baseline``) divided by the intact image's
    target probability ``p(x)`` (trapezoid over the deleted fraction; lower is better);
    ``attributions=None``: random order."""
    fractions, probs = deletion_curve(model, x, attributions, target, steps=steps, baseline=baseline)
    return torch.trapezoid(probs, fractions, dim=1) / probs[:, 0].clamp_min(1e-12)


@torch.no_grad()
def faithfulness_correlation(model: nn.Module, x: torch.Tensor, attributions: torch.Tensor, target: torch.Tensor,
                             *, n_subsets: int = 32, subset: float = 0.05, baseline: Baseline = 0.0) -> torch.Tensor:
    """Bhatt et al.'s (2020) faithfulness correlation per image (see the module docstring). Pixel
    subsets are drawn from torch's global stream (run inside :func:`~advinterp.core.devices.seeded_rng`)."""
    n, c, h, w = x.shape
    k = max(1, int(round(subset * h * w)))
    relevance = attributions.sum(1).reshape(n, -1)
    logit = model(x).gather(1, target.view(-1, 1)).squeeze(1)
    sums, drops = [], []
    for _ in range(n_subsets):
        idx = torch.rand(n, h * w).argsort(dim=1)[:, :k].to(x.device)
        mask = torch.zeros(n, h * w, dtype=torch.bool, device=x.device).scatter_(1, idx, True)
        xd = torch.where(mask.view(n, 1, h, w), _filled(x, baseline), x)
        drops.append(logit - model(xd).gather(1, target.view(-1, 1)).squeeze(1))
        sums.append((relevance * mask).sum(1))
    return pearson(torch.stack(sums, 1), torch.stack(drops, 1)).cpu()


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Pearson correlation of ``(N, M)`` tensors (0 where a row is constant)."""
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    den = (a.norm(dim=1) * b.norm(dim=1))
    return torch.where(den > 0, (a * b).sum(1) / den.clamp_min(1e-30), torch.zeros_like(den))


def sparseness(attributions: torch.Tensor) -> torch.Tensor:
    """Gini index of the absolute attribution per image (Chalasani et al. 2020; 0: uniform,
    -> 1: one pixel): ``sum_i (2i - n - 1) a_(i) / (n sum_i a_(i))`` over the sorted values."""
    a = attributions.abs().flatten(1).double().sort(dim=1).values + 1e-7
    n = a.shape[1]
    i = torch.arange(1, n + 1, dtype=a.dtype, device=a.device)
    return ((2 * i - n - 1) * a).sum(1) / (n * a.sum(1))


def alignment(x: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """``|<x, g>| / (||x|| ||g||)`` per image."""
    a, g = x.flatten(1), gradient.flatten(1)
    return (a * g).sum(1).abs() / (a.norm(dim=1) * g.norm(dim=1)).clamp_min(1e-12)


def relevance_mass(attributions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Share of the absolute attribution (summed over channels) inside ``mask`` ``(N, H, W)``."""
    r = attributions.abs().sum(1)
    return (r * mask).flatten(1).sum(1) / r.flatten(1).sum(1).clamp_min(1e-12)


def evaluate_attributions(model: nn.Module, x: torch.Tensor, method: str, *, digit_mask: bool = True,
                          target: torch.Tensor | None = None, seed: int = 0,
                          sens_max_images: int = SENS_MAX_IMAGES) -> dict[str, torch.Tensor]:
    """Every metric of the module docstring for ``method`` on images ``x`` (target: predicted).
    ``sens_max`` (the costliest, and never used for a verdict) is computed on the first
    ``sens_max_images`` images only and is NaN for the others.

    The noise of infidelity, sensitivity-max and SmoothGrad is drawn from torch's generator seeded
    with ``seed`` inside :func:`advinterp.core.devices.seeded_rng` (the caller's stream is untouched)."""
    with eval_mode(model), seeded_rng(seed, x.device):
        if target is None:
            with torch.no_grad():
                target = model(x).argmax(1)
        explain = explainer(model, method)
        attr = explain(x, target=target).detach()
        grad = explainer(model, "saliency")(x, target=target).detach()
        fill = attribution_baseline(model, x)
        deleted = deletion_auc(model, x, attr, target, baseline=fill)
        random_order = deletion_auc(model, x, None, target, baseline=fill)
        out = {
            "deletion_gain": random_order - deleted,
            "infidelity": infidelity(model, x, attr, target, std=INFIDELITY_STD),
            "infidelity_wide": infidelity(model, x, attr, target, std=INFIDELITY_WIDE_STD),
            "deletion_auc": deleted, "deletion_random": random_order,
            "faithfulness_corr": faithfulness_correlation(model, x, attr, target, baseline=fill),
            "sparseness": sparseness(attr).float(),
            "alignment": alignment(x, grad),
            "sens_max": torch.cat([sensitivity_max(explain, x[:sens_max_images], target[:sens_max_images]).cpu(),
                                   torch.full((max(0, len(x) - sens_max_images),), float("nan"))]),
        }
        if digit_mask:
            out["relevance_mass"] = relevance_mass(attr, (x.sum(1) > 0).float())
        out["attributions"] = attr
    return out


def cached_attributions(model_key: str, model: nn.Module, x: torch.Tensor, method: str, *, digit_mask: bool,
                        seed: int = 0) -> dict[str, torch.Tensor]:
    """:func:`evaluate_attributions` of one model and method on the images ``x`` (per-image metrics and
    maps, on the CPU), cached by the model's key, the images, the settings and this module's code."""
    description = {"model": model_key, "method": method, "images": images_key(x), "digit_mask": digit_mask,
                   "seed": seed, "code": cache.code_version(sys.modules[__name__])}
    device = next(model.parameters()).device

    def compute() -> dict[str, torch.Tensor]:
        out = evaluate_attributions(model, x.to(device), method, digit_mask=digit_mask, seed=seed)
        return {k: v.detach().cpu() for k, v in out.items()}

    return cache.memoized("interpretability", description, compute)

