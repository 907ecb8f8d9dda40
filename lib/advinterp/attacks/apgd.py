"""AutoAttack's core under L-infinity: APGD-CE and APGD-T with the targeted DLR loss
(Croce and Hein, ICML 2020, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks", Algorithm 1 and eq. 7), implemented from the paper.

APGD is projected sign-gradient ascent with momentum whose step size needs no tuning:

* start ``x_0`` uniformly at random in the eps-ball, step ``eta = 2 eps``, momentum ``alpha = 0.75``;
* ``z_{k+1} = P(x_k + eta sign(grad f(x_k)))``,
  ``x_{k+1} = P(x_k + alpha (z_{k+1} - x_k) + (1 - alpha)(x_k - x_{k-1}))`` (``x_1 = z_1``);
* at the checkpoints ``w_j = p_j N`` with ``p_0 = 0, p_1 = 0.22,
  p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)`` the step is halved and the iterate restarted
  from the best point so far when (1) the loss went up in fewer than ``rho = 0.75`` of the steps
  since the last checkpoint, or (2) the step was not halved at the last checkpoint and the best
  loss has not improved since;
* every quantity is per image (a batch runs independent attacks); each image returns the first
  point that is misclassified, else its highest-loss point. Every returned image lies in the
  eps-ball intersected with ``[0, 1]``.

Losses: cross-entropy (``"ce"``), the untargeted difference of logits ratio
``DLR(x, y) = -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3)`` and the targeted one
``DLR_t(x, y, t) = -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)`` (``pi`` sorts the logits in
decreasing order; eq. 7). DLR is invariant to shifting and rescaling the logits, which is why
AutoAttack uses it against models whose cross-entropy gradients are uninformative.

:func:`autoattack` runs APGD-CE on every image and then APGD-T against each of the
``n_targets`` most likely wrong classes on the images still classified correctly (the order and
the early exit of AutoAttack's "standard" version, without its FAB-T and Square members).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..core.params import integer
from ..core.validation import check_choice, check_int, fail
from .linf import EPS, AttackOutput, LinfBall, frozen

LOSSES = ("ce", "dlr", "dlr_targeted")
APGD_ITERS = integer("aa_iters", 100, 1, 100_000, "iterations of each APGD run (AutoAttack: 100)")
APGD_TARGETS = integer("aa_targets", 9, 1, 1_000, "target classes of APGD-T (AutoAttack: 9)")

RHO = 0.75
ALPHA = 0.75


def checkpoints(n_iter: int) -> list[int]:
    """The iterations ``w_j``, ``j >= 1``, at which APGD may halve its step: ``p_j n_iter`` in integer
    steps, ``w_1 = 0.22 N`` and then gaps shrinking by ``0.03 N`` down to ``0.06 N`` (the rounding of
    the authors' implementation)."""
    first, decrease, least = max(int(0.22 * n_iter), 1), max(int(0.03 * n_iter), 1), max(int(0.06 * n_iter), 1)
    marks, gap = [first], first
    while True:
        gap = max(gap - decrease, least)
        if marks[-1] + gap > n_iter:
            return marks
        marks.append(marks[-1] + gap)


def dlr_loss(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image DLR loss (eq. 7; untargeted when ``target`` is None). Needs >= 4 classes for the
    targeted form, >= 3 for the untargeted one."""
    z, _ = logits.sort(dim=1, descending=True)
    z_y = logits.gather(1, y.view(-1, 1)).squeeze(1)
    if target is None:
        others = logits.clone()
        others.scatter_(1, y.view(-1, 1), -float("inf"))
        return -(z_y - others.max(1).values) / (z[:, 0] - z[:, 2] + 1e-12)
    z_t = logits.gather(1, target.view(-1, 1)).squeeze(1)
    return -(z_y - z_t) / (z[:, 0] - (z[:, 2] + z[:, 3]) / 2 + 1e-12)


def _loss(name: str, logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    if name == "ce":
        return F.cross_entropy(logits, y, reduction="none")
    return dlr_loss(logits, y, target if name == "dlr_targeted" else None)


def _checked(eps: float, n_iter: int, n_targets: int = 1) -> tuple[float, int, int]:
    """The settings of the public functions, checked once (the ``ValueError`` naming the one not allowed)."""
    return EPS.validate(eps), check_int("n_iter", n_iter, 1), check_int("n_targets", n_targets, 1)


def apgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, n_iter: int = 100,
         loss: str = "ce", target: torch.Tensor | None = None,
         generator: torch.Generator | None = None) -> torch.Tensor:
    """One APGD run (Algorithm 1) on every image of ``x``; returns the adversarial images."""
    eps, n_iter, _ = _checked(eps, n_iter)
    check_choice("loss", loss, LOSSES)
    if loss == "dlr_targeted" and target is None:
        fail("target", None, "target labels for the targeted DLR loss")
    return _apgd(model, x, y, eps, n_iter, loss, target, generator)


def _apgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, n_iter: int, loss: str,
          target: torch.Tensor | None, generator: torch.Generator | None) -> torch.Tensor:
    """:func:`apgd` with its arguments already checked."""
    ball = LinfBall(x.detach(), eps)
    n = len(x)
    shape = (n,) + (1,) * (x.dim() - 1)

    def value_and_grad(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = z.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = model(z)
            values = _loss(loss, logits, y, target)
            (g,) = torch.autograd.grad(values.sum(), z)
        return values.detach(), g.detach(), logits.detach().argmax(1)

    with frozen([model]):
        x_adv = ball.random_start(generator)
        values, grad, pred = value_and_grad(x_adv)
        best_loss, x_best, grad_best = values.clone(), x_adv.clone(), grad.clone()
        found = pred != y
        x_found = torch.where(found.view(shape), x_adv, x.detach())
        eta = torch.full((n,), 2 * eps, device=x.device, dtype=x.dtype)
        x_prev = x_adv.clone()
        prev_values = values.clone()
        increases = torch.zeros(n, device=x.device)
        loss_at_check = best_loss.clone()
        reduced_last = torch.ones(n, dtype=torch.bool, device=x.device)
        marks = set(checkpoints(n_iter))
        last_mark = 0
        for k in range(n_iter):
            z = ball.project(x_adv + eta.view(shape) * grad.sign())
            if k > 0:
                z = ball.project(x_adv + ALPHA * (z - x_adv) + (1 - ALPHA) * (x_adv - x_prev))
            x_prev, x_adv = x_adv, z
            values, grad, pred = value_and_grad(x_adv)
            newly = (pred != y) & ~found
            x_found = torch.where(newly.view(shape), x_adv, x_found)
            found |= newly
            increases += (values > prev_values).float()
            prev_values = values
            improved = values > best_loss
            x_best = torch.where(improved.view(shape), x_adv, x_best)
            grad_best = torch.where(improved.view(shape), grad, grad_best)
            best_loss = torch.where(improved, values, best_loss)
            if k + 1 in marks:
                few_increases = increases < RHO * (k + 1 - last_mark)
                stalled = ~reduced_last & (best_loss <= loss_at_check)
                reduce = few_increases | stalled
                eta = torch.where(reduce, eta / 2, eta)
                x_adv = torch.where(reduce.view(shape), x_best, x_adv)
                grad = torch.where(reduce.view(shape), grad_best, grad)
                reduced_last = reduce
                increases.zero_()
                loss_at_check = best_loss.clone()
                last_mark = k + 1
    return ball.project(torch.where(found.view(shape), x_found, x_best)).detach()


def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with frozen([model]), torch.no_grad():
        return model(x)


def apgd_ce(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor, *, eps: float, n_iter: int = 100,
            generator: torch.Generator | None = None) -> AttackOutput:
    """APGD with the cross-entropy loss, untargeted (AutoAttack's first member)."""
    eps, n_iter, _ = _checked(eps, n_iter)
    return AttackOutput(_apgd(models[0], x, y, eps, n_iter, "ce", None, generator), torch.full_like(y, -1))


def apgd_t(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor, *, eps: float, n_iter: int = 100,
           n_targets: int = 9, generator: torch.Generator | None = None) -> AttackOutput:
    """APGD-T: targeted DLR against each of the ``n_targets`` classes the model ranks highest after
    its prediction on the clean image; an image keeps the first target run that fools the model."""
    eps, n_iter, n_targets = _checked(eps, n_iter, n_targets)
    return _run_targets(models[0], x, y, x.detach().clone(), eps=eps, n_iter=n_iter, n_targets=n_targets,
                        generator=generator)


def _run_targets(model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_out: torch.Tensor, *, eps: float,
                 n_iter: int, n_targets: int, generator: torch.Generator | None) -> AttackOutput:
    logits = _predict(model, x)
    n_classes = logits.shape[1]
    if n_classes < 4:
        fail("n_classes", n_classes, "at least 4 classes for the targeted DLR loss")
    n_targets = min(n_targets, n_classes - 1)
    ranked = logits.argsort(dim=1, descending=True)
    robust = _predict(model, x_out).argmax(1) == y
    for i in range(1, n_targets + 1):
        idx = robust.nonzero().flatten()
        if len(idx) == 0:
            break
        t = ranked[idx, i]
        adv = _apgd(model, x[idx], y[idx], eps, n_iter, "dlr_targeted", t, generator)
        fooled = _predict(model, adv).argmax(1) != y[idx]
        x_out[idx[fooled]] = adv[fooled]
        robust[idx[fooled]] = False
    return AttackOutput(x_out, torch.full_like(y, -1))


def autoattack(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor, *, eps: float, n_iter: int = 100,
               n_targets: int = 9, generator: torch.Generator | None = None) -> AttackOutput:
    """AutoAttack's core (see the module docstring): APGD-CE, then APGD-T on what it left robust."""
    eps, n_iter, n_targets = _checked(eps, n_iter, n_targets)
    return autoattack_prechecked(models[0], x, y, eps=eps, n_iter=n_iter, n_targets=n_targets, generator=generator)


def autoattack_prechecked(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, n_iter: int,
                          n_targets: int, generator: torch.Generator | None) -> AttackOutput:
    """:func:`autoattack` on ``model`` with settings its caller has checked, once for every batch
    (:func:`advinterp.attacks.robustness.evaluate_robustness` does): checks nothing itself."""
    x_out = x.detach().clone()
    robust = _predict(model, x).argmax(1) == y
    idx = robust.nonzero().flatten()
    if len(idx):
        x_out[idx] = _apgd(model, x[idx], y[idx], eps, n_iter, "ce", None, generator)
    return _run_targets(model, x, y, x_out, eps=eps, n_iter=n_iter, n_targets=n_targets, generator=generator)
