"""Adversarial training objectives, with Dong et al.'s consistent loss (version A, sec. 5).

:class:`AdversarialObjective` is a loss hook of :func:`advinterp.training.loop.train`:

``L = w_clean * CE(f(x), y) + alpha * CE(f(x_adv), y) + lambda * ||phi(x) - phi(x_adv)||^2 / d``

with ``x_adv`` generated on the fly against the current model by the training attack (FGSM,
FGSM-RS, ILLC or PGD; eval mode, parameters untouched), ``phi`` the output of ``layer`` and ``d``
its dimension. ``lambda = 0`` is plain adversarial training (Goodfellow et al.'s mixed loss,
the essential control); ``w_clean = 0, alpha = 1, lambda = 0`` is Madry et al.'s PGD training
(:func:`madry`). ``normalize=True`` is the scale-invariant variant: phi is divided by its L2 norm
before the difference, so the term cannot be lowered by shrinking all features (the trivial
solution of the plain squared distance).

Cost per batch: the attack's ``steps`` forward+backward passes plus two forward and backward
passes (clean and adversarial), i.e. about ``steps + 2`` standard steps.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import linf
from ..core import cache
from ..core.params import choice, flag, number, integer, text
from ..core.validation import fail
from ..models.layers import recording
from .objectives import ObjectiveOutput

TRAIN_ATTACK = choice("train_attack", "pgd", linf.TRAINING_ATTACKS, "attack inside training: "
                      + " | ".join(linf.TRAINING_ATTACKS))
TRAIN_EPS = linf.EPS.renamed("train_eps", help="its L-inf budget (also the evaluation budget)")
TRAIN_STEPS = integer("train_steps", 3, 1, 1000, "its steps")
ALPHA = number("alpha", 1.0, 0.0, 100.0, "weight of CE on the adversarial batch")
LAMBDA = number("lambda", 0.0, 0.0, 1e6, "weight of the consistency term")
LAYER = text("layer", "fc1", "phi: the layer made consistent and analysed")
CLEAN_WEIGHT = number("clean_weight", 1.0, 0.0, 100.0, "weight of CE on the clean batch")
NORMALIZE = flag("normalize", False, "scale-invariant variant: compare L2-normalised features")


@dataclass(frozen=True)
class AdversarialObjective:
    """Adversarial training with an optional consistency term (see the module docstring)."""

    attack: str = "pgd"
    eps: float = 0.3
    steps: int = 3
    alpha: float = 1.0
    lam: float = 0.0
    layer: str = "fc1"
    clean_weight: float = 1.0
    normalize: bool = False
    step_size: float | None = None

    def __post_init__(self) -> None:
        TRAIN_ATTACK.validate(self.attack)
        TRAIN_EPS.validate(self.eps)
        TRAIN_STEPS.validate(self.steps)
        ALPHA.validate(self.alpha)
        LAMBDA.validate(self.lam)
        LAYER.validate(self.layer)
        CLEAN_WEIGHT.validate(self.clean_weight)
        NORMALIZE.validate(self.normalize)
        if self.clean_weight == 0 and self.alpha == 0:
            fail("alpha", self.alpha, "a positive weight when clean_weight=0 (the loss would have no classification term)")

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> ObjectiveOutput:
        x_adv = linf.run(self.attack, [model], x, y, eps=self.eps, steps=self.steps, step_size=self.step_size,
                         allowed=linf.TRAINING_ATTACKS, param="train_attack").x_adv
        with recording(model, [self.layer], detach=False) as acts:
            logits = model(x)
            phi = acts[self.layer]
            logits_adv = model(x_adv)
            phi_adv = acts[self.layer]
        ce_clean = F.cross_entropy(logits, y)
        ce_adv = F.cross_entropy(logits_adv, y)
        consistency = consistency_term(phi, phi_adv, self.normalize)
        loss = self.clean_weight * ce_clean + self.alpha * ce_adv
        if self.lam > 0:
            loss = loss + self.lam * consistency
        with torch.no_grad():
            dead = dead_fraction(phi)
        return ObjectiveOutput(loss, logits, {"ce_clean": float(ce_clean.detach()), "ce_adv": float(ce_adv.detach()),
                                              "consistency": float(consistency.detach()), "dead_fraction": dead})

    def with_lambda(self, lam: float) -> "AdversarialObjective":
        """The same training with consistency weight ``lam`` (0: plain adversarial training)."""
        return replace(self, lam=lam)

    def describe(self) -> dict[str, Any]:
        return {"objective": "adversarial", **asdict(self),
                "code": cache.code_version(linf, sys.modules[__name__])}


def madry(eps: float, steps: int, layer: str = "fc1", step_size: float | None = None,
          attack: str = "pgd") -> AdversarialObjective:
    """Madry et al.'s PGD adversarial training: ``CE(f(x_adv), y)`` only (``attack="fgsm_rs"``
    gives Wong et al.'s fast FGSM training with a random start)."""
    return AdversarialObjective(attack=attack, eps=eps, steps=steps, alpha=1.0, lam=0.0, layer=layer,
                                clean_weight=0.0, step_size=step_size)


def consistency_term(phi: torch.Tensor, phi_adv: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """``mean over the batch of ||phi(x) - phi(x_adv)||^2 / d`` (rows L2-normalised first if asked)."""
    a, b = phi.flatten(1), phi_adv.flatten(1)
    if normalize:
        a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    return (a - b).pow(2).sum(1).mean() / a.shape[1]


def dead_fraction(phi: torch.Tensor) -> float:
    """Fraction of units (channels for conv maps) of ``phi`` that are zero on the whole batch."""
    per_unit = phi.flatten(2).amax(2) if phi.ndim > 2 else phi
    return float((per_unit.amax(0) <= 0).float().mean())
