"""The book's standard training recipes, in one place for every chapter.

A chapter asks for "the standard ``small_cnn`` on ``mnist5k`` with seed 0" through
:func:`standard_model`; because the recipe lives here and models are cached by a key of
their full configuration, chapter 1's model *is* chapter 2's model, and a rerun loads it.
"""

from __future__ import annotations

from typing import Any

import torch

from ..core.devices import resolve_device
from ..core.validation import fail
from ..models.architectures import build_model
from .loop import TrainConfig, TrainedModel, bundle_for, train
from .objectives import CrossEntropy, Objective

#: Per-dataset training recipes (overridable per call, e.g. ``epochs``).
RECIPES: dict[str, dict[str, Any]] = {
    # 4,000 digits: Adam converges in a few epochs (~1 s each on 2 CPU cores)
    "mnist5k": dict(epochs=4, batch_size=64, optimizer="adam", lr=1e-3),
    "mnist": dict(epochs=4, batch_size=128, optimizer="adam", lr=1e-3),
    # He et al.'s CIFAR schedule, shortened: SGD + Nesterov, cosine decay, crop/flip augmentation
    "cifar10": dict(epochs=30, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4,
                    schedule="cosine", augment=True),
    "imagefolder": dict(epochs=30, batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4,
                        schedule="cosine", augment=True),
}

#: datasets whose recipes switch on mixed precision when trained on CUDA
GPU_FAST_PATH = ("cifar10", "imagefolder")


def recipe(dataset: str, model: str, seed: int = 0, *, data_root: str | None = None,
           image_size: int | None = None, **overrides: Any) -> TrainConfig:
    """The :class:`TrainConfig` of ``model`` on ``dataset``; ``None`` overrides are ignored."""
    if dataset not in RECIPES:
        fail("dataset", dataset, f"one of {sorted(RECIPES)}")
    base = dict(RECIPES[dataset])
    base.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(dataset=dataset, data_root=data_root, image_size=image_size, model=model, seed=seed,
                       **base).validate()


def standard_model(dataset: str, model: str, seed: int = 0, *, data_root: str | None = None,
                   image_size: int | None = None, device: str | torch.device = "auto",
                   pretrained: bool = False, objective: Objective | None = None,
                   progress: bool = True, desc: str | None = None, **overrides: Any) -> TrainedModel:
    """A trained model of the book's recipe (cached), or torchvision's pretrained weights.

    ``pretrained=True`` (alexnet / vgg16 / resnet18 / resnet50 only) returns the ImageNet model untrained
    by us; its ``history`` is empty.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    # channels-last memory speeds up convolutional training on CPUs (about 20 % on 2 cores) and GPUs
    # alike; mixed precision helps on GPUs (both are part of the cache key)
    fast = {"channels_last": True, **({"amp": True} if resolve_device(device).type == "cuda"
                                     and dataset in GPU_FAST_PATH else {})}
    overrides = {**fast, **given}
    cfg = recipe(dataset, model, seed, data_root=data_root, image_size=image_size, **overrides)
    if pretrained:
        b = bundle_for(cfg)
        net = build_model(model, b.input_shape, b.num_classes, b.mean, b.std, pretrained=True)
        net = net.to(resolve_device(device)).eval()
        return TrainedModel(net, cfg, {"objective": "torchvision-pretrained"}, f"{model}-pretrained", [], True)
    return train(cfg, objective or CrossEntropy(), device=device, progress=progress,
                 desc=desc or f"{model} (seed {seed})")
