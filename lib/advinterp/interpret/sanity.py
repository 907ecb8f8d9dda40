"""The model-parameter randomisation test (MPRT; Adebayo et al. 2018, "Sanity checks for saliency
maps", sec. 3.1), cascading from the top.

An explanation of a trained model must depend on what the model learned: when the weights are
replaced by random ones, layer by layer from the logits down ("cascading"), the map must change.
:func:`mprt` records, after each layer is re-initialised, the Spearman rank correlation between the
absolute attribution of the original and of the randomised model, per image. A method passes
(:func:`passes`) when the correlation after every layer has been randomised is at most
:data:`THRESHOLD` on average; a method that fails is flagged and its numbers are not used for a
verdict.

Randomisation is each module's own ``reset_parameters()`` (PyTorch's default initialisation) with
torch's generator seeded ``seed + 1`` before each layer, in reverse module order: the protocol of
Quantus's ``MPRT(layer_order="top_down")`` (Hedström et al. 2023), which a test checks we agree with.
We implement it ourselves rather than depend on Quantus: Quantus is LGPL-licensed, works on NumPy
arrays (a copy to the host per batch) and pulls in OpenCV and scikit-image; ours is batched torch
on the model's device and uses the book's Captum explainers.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable

import torch
from torch import nn

from ..attacks.robustness import images_key
from ..core import cache
from ..core._helpers import eval_mode
from ..core.devices import seeded_rng
from . import attribution

#: mean Spearman correlation after full randomisation above which a method fails the check
THRESHOLD = 0.5


def rank(a: torch.Tensor) -> torch.Tensor:
    """Row-wise ranks (average ranks for ties, as ``scipy.stats.rankdata``) of an ``(N, M)`` tensor."""
    a = a.double()
    order = a.argsort(dim=1)
    sorted_a = a.gather(1, order)
    n, m = a.shape
    ranks = torch.empty_like(a)
    base = torch.arange(1, m + 1, dtype=a.dtype, device=a.device).expand(n, m)
    # average the ranks of tied runs: for each run, mean of its positions
    new_run = torch.ones_like(sorted_a, dtype=torch.bool)
    new_run[:, 1:] = sorted_a[:, 1:] != sorted_a[:, :-1]
    run_id = new_run.cumsum(1) - 1
    sums = torch.zeros(n, m, dtype=a.dtype, device=a.device).scatter_add_(1, run_id, base)
    counts = torch.zeros(n, m, dtype=a.dtype, device=a.device).scatter_add_(1, run_id, torch.ones_like(base))
    avg = sums.gather(1, run_id) / counts.gather(1, run_id)
    ranks.scatter_(1, order, avg)
    return ranks


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Spearman correlation of two ``(N, ...)`` tensors (flattened per row)."""
    ra, rb = rank(a.flatten(1)), rank(b.flatten(1))
    ra = ra - ra.mean(1, keepdim=True)
    rb = rb - rb.mean(1, keepdim=True)
    den = ra.norm(dim=1) * rb.norm(dim=1)
    return torch.where(den > 0, (ra * rb).sum(1) / den.clamp_min(1e-30), torch.zeros_like(den)).float()


def randomisable(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules MPRT re-initialises, in forward (definition) order."""
    return [(name, m) for name, m in model.named_modules() if hasattr(m, "reset_parameters")]


def mprt(model: nn.Module, x: torch.Tensor, target: torch.Tensor,
         explain: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor], *,
         seed: int = 42) -> dict[str, torch.Tensor]:
    """Cascading MPRT (top down). ``explain(model, x, target)`` returns attributions; the result
    maps ``"original"`` and each randomised layer name (in the order randomised) to the per-image
    Spearman correlation of ``|attribution|`` with the original model's."""
    with eval_mode(model):
        original = explain(model, x, target).detach().abs()
    out = {"original": spearman(original, original).cpu()}
    randomised = copy.deepcopy(model)
    for name, module in reversed(randomisable(randomised)):
        with seeded_rng(seed + 1, x.device):
            module.reset_parameters()
        with eval_mode(randomised):
            out[name] = spearman(original, explain(randomised, x, target).detach().abs()).cpu()
    return out


def last_correlation(result: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-image correlation after every layer has been randomised."""
    return list(result.values())[-1]


def passes(result: dict[str, torch.Tensor], threshold: float = THRESHOLD) -> bool:
    """Whether the method passes: mean correlation after full randomisation <= ``threshold``."""
    return bool(last_correlation(result).mean() <= threshold)


def cached_mprt(model_key: str, model: nn.Module, x: torch.Tensor, target: torch.Tensor, method: str,
                seed: int) -> dict[str, torch.Tensor]:
    """:func:`mprt` of the attribution ``method`` (:func:`advinterp.interpret.attribution.explainer`) on
    the images ``x``, run under ``seed``'s random stream, cached by the model's key, the images, the
    settings and the code of this module and of the attribution methods."""
    description = {"model": model_key, "method": method, "images": images_key(x), "seed": seed,
                   "code": cache.code_version(sys.modules[__name__], attribution)}

    def explain(m: nn.Module, xs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return attribution.explainer(m, method)(xs, target=t)

    def compute() -> dict[str, torch.Tensor]:
        device = next(model.parameters()).device
        with seeded_rng(seed, device):
            return mprt(model, x.to(device), target.to(device), explain, seed=seed)

    return cache.memoized("mprt", description, compute)

