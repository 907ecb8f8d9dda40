"""Training objectives: the loss hooks of the one training loop (:mod:`advinterp.training.loop`).

An objective is called as ``objective(model, x, y)`` on a training batch and returns an
:class:`ObjectiveOutput`: the loss to minimise, the logits on the clean batch (for the running
training accuracy) and a dict of scalar statistics logged per epoch. Its ``describe()`` is part
of the trained model's cache key, so two objectives that differ in any setting never share a
cached model. The consistent loss (:mod:`advinterp.training.adversarial`, chapter 4) and the
sensitivity regulariser (:mod:`advinterp.training.sensitivity`, chapter 7) are objectives too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ObjectiveOutput:
    loss: torch.Tensor
    logits: torch.Tensor
    stats: dict[str, float] = field(default_factory=dict)


class Objective(Protocol):
    """The loss-hook protocol of :func:`advinterp.training.loop.train`."""

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> ObjectiveOutput: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class CrossEntropy:
    """Standard training: ``CE(f(x), y)``."""

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> ObjectiveOutput:
        logits = model(x)
        return ObjectiveOutput(F.cross_entropy(logits, y), logits)

    def describe(self) -> dict[str, Any]:
        return {"objective": "ce", **asdict(self)}
