"""Adversarial training objectives, with Dong et al.'s consistent loss (version A, sec. 5).

:class:`AdversarialObjective` is a loss hook of :func:`advinterp.training.loop.train`:

``L = w_clean * CE(f(x), y) + alpha * CE(f(x_adv), y) + lambda * C(phi(x), phi(x_adv))``

with ``x_adv`` generated on the fly against the current model by the training attack (FGSM,
FGSM-RS, ILLC or PGD; eval mode, parameters untouched) and ``phi`` the output of ``layer``.
``lambda = 0`` is plain adversarial training (Goodfellow et al.'s mixed loss, the essential
control); ``w_clean = 0, alpha = 1, lambda = 0`` is Madry et al.'s PGD training (:func:`madry`).

The consistency term ``C`` (:func:`consistency_term`, our reading; the paper's exact form is not
available to us):

* ``"cosine"`` (default): ``1 - cos(phi(x), phi(x_adv))``, averaged over the batch. It lies in
  [0, 2], is O(1) so ``lambda`` reads "relative to CE", and is invariant to rescaling phi: a ReLU
  layer whose weights are multiplied by c (and the next layer's by 1/c) computes the same
  predictions, so a term that such a rescaling lowers has a free exit that buys no consistency.
* ``"squared"``: ``||phi(x) - phi(x_adv)||^2 / d`` (d = phi's dimension), the literal reading. It
  falls as c^2 under that rescaling, and at large lambda training takes the exit: units shrink or
  die (chapter 4 shows the collapse).

``anchor_clean=True`` stops the gradient through the clean branch: phi(x) is a fixed target and
only phi(x_adv) is pulled towards it.

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
TRAIN_EPS = linf.EPS.renamed("train_eps", default=0.2, help="its L-inf budget (also the evaluation budget)")
TRAIN_STEPS = integer("train_steps", 3, 1, 1000, "its steps")
ALPHA = number("alpha", 1.0, 0.0, 100.0, "weight of CE on the adversarial batch")
LAMBDA = number("lambda", 0.0, 0.0, 1e6, "weight of the consistency term")
LAYER = text("layer", "fc1", "phi: the layer made consistent and analysed")
CLEAN_WEIGHT = number("clean_weight", 1.0, 0.0, 100.0, "weight of CE on the clean batch")
CONSISTENCY_FORMS = ("cosine", "squared")
CONSISTENCY = choice("consistency", "cosine", CONSISTENCY_FORMS, "consistency term: cosine (1 - cos, scale-free) | "
                     "squared (||phi(x) - phi(x_adv)||^2 / d, lowered by rescaling)")
ANCHOR_CLEAN = flag("anchor_clean", False, "stop the gradient through phi(x): pull only phi(x_adv) towards it")


@dataclass(frozen=True)
class AdversarialObjective:
    """Adversarial training with an optional consistency term (see the module docstring)."""

    attack: str = TRAIN_ATTACK.default
    eps: float = TRAIN_EPS.default
    steps: int = TRAIN_STEPS.default
    alpha: float = ALPHA.default
    lam: float = LAMBDA.default
    layer: str = LAYER.default
    clean_weight: float = CLEAN_WEIGHT.default
    consistency: str = CONSISTENCY.default
    anchor_clean: bool = ANCHOR_CLEAN.default
    step_size: float | None = None

    def __post_init__(self) -> None:
        TRAIN_ATTACK.validate(self.attack)
        TRAIN_EPS.validate(self.eps)
        TRAIN_STEPS.validate(self.steps)
        if self.step_size is not None:
            linf.STEP_SIZE.validate(self.step_size)
        ALPHA.validate(self.alpha)
        LAMBDA.validate(self.lam)
        LAYER.validate(self.layer)
        CLEAN_WEIGHT.validate(self.clean_weight)
        CONSISTENCY.validate(self.consistency)
        ANCHOR_CLEAN.validate(self.anchor_clean)
        if self.clean_weight == 0 and self.alpha == 0:
            fail("alpha", self.alpha, "a positive weight when clean_weight=0 (the loss would have no classification term)")

    @property
    def adversary(self) -> linf.Prepared:
        """The training attack with the settings checked at construction (not checked again per batch)."""
        return linf.Prepared(self.attack, linf.Settings(float(self.eps), self.steps, self.step_size))

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> ObjectiveOutput:
        x_adv = self.adversary([model], x, y).x_adv
        with recording(model, [self.layer], detach=False) as acts:
            logits = model(x)
            phi = acts[self.layer]
            logits_adv = model(x_adv)
            phi_adv = acts[self.layer]
        ce_clean = F.cross_entropy(logits, y)
        ce_adv = F.cross_entropy(logits_adv, y)
        consistency = consistency_term(phi.detach() if self.anchor_clean else phi, phi_adv, self.consistency)
        loss = self.clean_weight * ce_clean + self.alpha * ce_adv
        if self.lam > 0:
            loss = loss + self.lam * consistency
        with torch.no_grad():
            stats = {"ce_clean": float(ce_clean), "ce_adv": float(ce_adv), "consistency": float(consistency),
                     "adv_acc": float((logits_adv.argmax(1) == y).float().mean()),
                     "feature_dist": float(relative_distance(phi, phi_adv).mean()), "dead_fraction": dead_fraction(phi)}
        return ObjectiveOutput(loss, logits, stats)

    def monitor(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """End of an epoch (eval mode, :func:`advinterp.training.loop.train`): accuracy on ``x`` clean and
        under this objective's own attack, from the same random start every epoch (so that epoch to
        epoch the number moves only with the model)."""
        x_adv = self.adversary([model], x, y, generator=torch.Generator().manual_seed(0)).x_adv
        with torch.no_grad():
            return {"clean_acc_end": float((model(x).argmax(1) == y).float().mean()),
                    "adv_acc_end": float((model(x_adv).argmax(1) == y).float().mean())}

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


def consistency_term(phi: torch.Tensor, phi_adv: torch.Tensor, form: str = "cosine") -> torch.Tensor:
    """The batch mean of ``1 - cos(phi, phi_adv)`` (``"cosine"``; an all-zero row counts as cosine
    0) or of ``||phi - phi_adv||^2 / d`` (``"squared"``), rows flattened (see the module docstring)."""
    CONSISTENCY.validate(form)
    a, b = phi.flatten(1), phi_adv.flatten(1)
    if form == "cosine":
        return (1 - F.cosine_similarity(a, b, dim=1, eps=1e-8)).mean()
    return (a - b).pow(2).sum(1).mean() / a.shape[1]


def relative_distance(phi: torch.Tensor, phi_adv: torch.Tensor) -> torch.Tensor:
    """``||phi(x) - phi(x_adv)|| / ||phi(x)||`` per image (scale-free; 0 for an all-zero phi(x))."""
    a, b = phi.flatten(1).float(), phi_adv.flatten(1).float()
    return (a - b).norm(dim=1) / a.norm(dim=1).clamp_min(1e-12)


def dead_fraction(phi: torch.Tensor) -> float:
    """Fraction of units (channels for conv maps) of ``phi`` that are zero on the whole batch."""
    per_unit = phi.flatten(2).amax(2) if phi.ndim > 2 else phi
    return float((per_unit.amax(0) <= 0).float().mean())
