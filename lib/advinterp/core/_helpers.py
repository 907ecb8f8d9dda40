"""Small private helpers shared by every layer: eval mode, a model's device, batching.

One shape per concept: every function that runs a model "in eval mode, mode restored" uses
:func:`eval_mode`, and every batched pass over a tensor uses :func:`chunks`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def eval_mode(*models: nn.Module) -> Iterator[None]:
    """Switch ``models`` to eval mode inside the block and restore each sub-module's exact mode
    afterwards (also on error): a model whose dropout was in train mode and batch norm in eval
    mode comes back that way."""
    saved = [[(m, m.training) for m in model.modules()] for model in models]
    for model in models:
        model.eval()
    try:
        yield
    finally:
        for modes in saved:
            for module, training in modes:
                module.training = training


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (or buffer); CPU for a model with neither."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def chunks(n: int, size: int) -> Iterator[slice]:
    """Slices ``[0:size], [size:2 size], ...`` covering ``range(n)``."""
    if size < 1:
        raise ValueError(f"batch_size={size!r} is not allowed: a positive integer")
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))
