"""Predictions and accuracy: a model's logits and labels on in-memory images or a dataset, batched
on the model's device, in eval mode (mode restored)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

from ..core._helpers import chunks, eval_mode, model_device
from ..data.datasets import batches


@torch.no_grad()
def logits_of(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Logits for ``x`` on CPU, computed batch by batch on the model's device."""
    device = model_device(model)
    with eval_mode(model):
        out = [model(x[part].to(device)).float().cpu() for part in chunks(len(x), batch_size)]
    return torch.cat(out) if out else torch.empty(0)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Predicted labels for ``x`` (CPU tensor)."""
    return logits_of(model, x, batch_size).argmax(1)


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor | Dataset, labels: torch.Tensor | None = None, *,
             indices: torch.Tensor | None = None, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model``: on in-memory ``images`` with ``labels``, or on a dataset
    (``labels=None``; streamed in batches, optionally only at ``indices``). NaN for no images."""
    if isinstance(images, torch.Tensor):
        if labels is None or len(labels) != len(images):
            raise ValueError("labels: one label per image is needed for in-memory images")
        if indices is not None:
            images, labels = images[indices], labels[indices]
        return float((predict(model, images, batch_size) == labels).float().mean()) if len(labels) else float("nan")
    correct = total = 0
    device = model_device(model)
    with eval_mode(model):
        for x, y in batches(images, batch_size, indices=indices):
            correct += int((model(x.to(device)).argmax(1).cpu() == y).sum())
            total += len(y)
    return correct / total if total else float("nan")
