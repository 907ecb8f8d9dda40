"""Gradient-norm clipping as a loss hook's own step (Pascanu, Mikolov & Bengio 2013, "On the
difficulty of training recurrent neural networks", Sec. 3.2).

:func:`clip_gradient` returns a *surrogate* of a loss: a tensor whose value is the loss's value
and whose gradient with respect to the model's parameters is the loss's gradient rescaled to a
global L2 norm of at most ``max_norm`` (``g * min(1, max_norm / ||g||)``, what
:func:`torch.nn.utils.clip_grad_norm_` does after a backward pass; tested against it). An objective
(:mod:`advinterp.training.objectives`) that needs clipping returns the surrogate as its loss, so the
one training loop stays as it is and the clipping enters the trained model's cache key through the
objective's ``describe()`` only.
"""

from __future__ import annotations

import torch
from torch import nn


def clip_gradient(loss: torch.Tensor, model: nn.Module, max_norm: float) -> tuple[torch.Tensor, float]:
    """``(surrogate, norm)``: the surrogate of the scalar ``loss`` (see the module docstring) and the
    gradient's global norm before clipping. Parameters the loss does not reach get a zero gradient."""
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    factor = (max_norm / (norm + 1e-6)).clamp(max=1.0)
    linear = sum((p * (g * factor).detach()).sum() for p, g in zip(params, grads))
    return loss.detach() + linear - linear.detach(), float(norm)
