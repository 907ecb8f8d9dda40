"""Robust accuracy measured the way the field accepts it: AutoAttack's core plus gradient-masking
checks (Athalye et al. 2018; Carlini et al. 2019, "On evaluating adversarial robustness", sec. 5;
Croce and Hein 2020).

:func:`evaluate_robustness` attacks one model on fixed images under an L-inf budget ``eps`` with

* FGSM (single step), PGD (``pgd_steps`` sign steps, random start, ``restarts``; cross-entropy or
  Carlini and Wagner's margin loss, ``pgd_attack``) and AutoAttack's
  core (:func:`advinterp.attacks.apgd.autoattack`: APGD-CE then APGD-T with the targeted DLR loss);
* PGD at a grid of budgets (``eps/2, eps, 2 eps, 4 eps`` and ``0.5``, capped at 1; one random
  start at the budgets other than ``eps``): the accuracy-versus-eps curve;
* PGD examples crafted on an independently trained model (a transfer, black-box attack), given.

and reports four checks, each of which a model whose gradients are informative passes:

1. ``monotone`` - accuracy does not rise as eps grows (within ``tol``);
2. ``reaches_zero`` - at the largest budget (>= 0.5, where any image can be turned to flat grey)
   accuracy is at most ``zero_level``;
3. ``whitebox_le_transfer`` - the white-box accuracy is at most the transfer accuracy (+ ``tol``);
4. ``iterative_le_single`` - PGD and AutoAttack are at most FGSM (+ ``tol``).

``masking`` is true when any check fails: that model's robust accuracy is then not to be trusted.
The robust accuracy the book reports is the AutoAttack-core accuracy; it is never above the PGD
one for the same images (each image counts as robust only if every attack fails on it).
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from ..core import cache
from ..core._helpers import chunks
from ..core.validation import check_choice, check_int
from ..models.predict import predict
from . import apgd as apgd_module
from . import linf

#: the gradient-masking checks, by the names reports and tables use
CHECKS = ("monotone", "reaches_zero", "whitebox_le_transfer", "iterative_le_single")
#: accuracy tolerance of the masking checks (a fraction of the images)
TOL = 0.01
#: accuracy counted as "about zero" at the largest budget
ZERO_LEVEL = 0.05
#: images attacked at once
BATCH_SIZE = 250
#: the white-box PGD of the evaluation by its loss: cross-entropy (Madry et al.) or Carlini and
#: Wagner's margin (the studies' ``eval_loss``)
PGD_OF_LOSS = {"ce": "pgd", "margin": "pgd_margin"}
PGD_ATTACKS = tuple(PGD_OF_LOSS.values())


@dataclass(frozen=True)
class RobustnessReport:
    """Accuracies of one model on the same images (fractions) and the masking checks."""

    eps: float
    clean_acc: float
    fgsm_acc: float
    pgd_acc: float
    aa_acc: float
    transfer_acc: float
    eps_grid: tuple[float, ...]
    curve: tuple[float, ...]
    monotone: bool
    reaches_zero: bool
    whitebox_le_transfer: bool
    iterative_le_single: bool

    @property
    def masking(self) -> bool:
        """Whether any gradient-masking check (:data:`CHECKS`) failed."""
        return not all(getattr(self, c) for c in CHECKS)

    def row(self) -> dict[str, float]:
        """The scalar fields (checks as 0/1) for a results table."""
        out = {k: v for k, v in asdict(self).items() if k not in ("eps_grid", "curve")}
        out = {k: float(v) for k, v in out.items()}
        out["masking"] = float(self.masking)
        return out


def eps_grid(eps: float) -> tuple[float, ...]:
    """The budgets of the accuracy-versus-eps curve: ``eps/2, eps, 2 eps, 4 eps`` up to the last
    point ``max(0.5, eps)`` (where accuracy must have fallen to about 0), capped at 1."""
    return _eps_grid(linf.EPS.validate(eps))


def _eps_grid(eps: float) -> tuple[float, ...]:
    last = max(0.5, eps)
    return tuple(sorted({min(last, round(f * eps, 6)) for f in (0.5, 1.0, 2.0, 4.0)} | {last}))


def checks(*, fgsm_acc: float, pgd_acc: float, aa_acc: float, transfer_acc: float, curve: tuple[float, ...],
           tol: float = TOL, zero_level: float = ZERO_LEVEL) -> dict[str, bool]:
    """The four gradient-masking checks of the module docstring."""
    return {
        "monotone": all(b <= a + tol for a, b in zip(curve, curve[1:])),
        "reaches_zero": curve[-1] <= zero_level,
        "whitebox_le_transfer": aa_acc <= transfer_acc + tol,
        "iterative_le_single": max(pgd_acc, aa_acc) <= fgsm_acc + tol,
    }


def _accuracy_under(attack, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int,
                    device: torch.device) -> tuple[float, torch.Tensor]:
    """Fraction of images still correct after ``attack(x_batch, y_batch)``; the per-image mask."""
    correct = []
    for part in chunks(len(x), batch_size):
        xb, yb = x[part].to(device), y[part].to(device)
        adv = attack(xb, yb)
        correct.append(predict(model, adv.cpu()) == y[part])
    mask = torch.cat(correct)
    return float(mask.float().mean()), mask


def _checked(eps: float, n_iter: int, n_targets: int, pgd_steps: int, restarts: int,
             pgd_attack: str) -> tuple[float, int, int, int, int, str]:
    """The settings of :func:`evaluate_robustness`, checked once (a ``ValueError`` naming the one not allowed)."""
    return (linf.EPS.validate(eps), apgd_module.APGD_ITERS.validate(n_iter),
            apgd_module.APGD_TARGETS.validate(n_targets), check_int("pgd_steps", pgd_steps, 1),
            check_int("restarts", restarts, 1), check_choice("pgd_attack", pgd_attack, PGD_ATTACKS))


def evaluate_robustness(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                        transfer_x: torch.Tensor | None, pgd_x: torch.Tensor | None = None, n_iter: int = 100,
                        n_targets: int = 9, pgd_steps: int = 20, restarts: int = 1, seed: int = 0,
                        batch_size: int = BATCH_SIZE, pgd_attack: str = "pgd") -> RobustnessReport:
    """Every accuracy and check of the module docstring for ``model`` on ``(x, y)`` (CPU tensors).

    ``transfer_x`` are PGD examples of ``x`` crafted on an independently trained model (they do not
    depend on ``model``, so one set serves every model of a seed; None: the transfer accuracy is NaN
    and its check is skipped, i.e. passes). ``pgd_x`` are PGD examples of ``x`` already made against
    ``model`` with ``pgd_steps`` steps and ``restarts`` restarts (reused instead of attacking again;
    None: made here). ``pgd_attack`` is :data:`PGD_ATTACKS`' cross-entropy PGD (``"pgd"``) or the
    margin-loss one (``"pgd_margin"``), for the white-box attack and the accuracy-versus-eps curve.
    Attacks run on the model's device. The settings are checked here, once: the attacks of every
    batch trust them."""
    eps, n_iter, n_targets, pgd_steps, restarts, pgd_attack = _checked(eps, n_iter, n_targets, pgd_steps, restarts,
                                                                       pgd_attack)
    return _evaluate(model, x, y, eps, transfer_x, pgd_x, n_iter, n_targets, pgd_steps, restarts, seed, batch_size,
                     pgd_attack)


def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, transfer_x: torch.Tensor | None,
              pgd_x: torch.Tensor | None, n_iter: int, n_targets: int, pgd_steps: int, restarts: int, seed: int,
              batch_size: int, pgd_attack: str) -> RobustnessReport:
    """:func:`evaluate_robustness` with its settings already checked."""
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    settings = linf.Settings(eps, pgd_steps, None, restarts)
    fgsm = linf.Prepared("fgsm", settings)

    def pgd_at(e: float, n_restarts: int = 1):
        pgd = linf.Prepared(pgd_attack, replace(settings, eps=e, restarts=n_restarts))
        return lambda xb, yb: pgd([model], xb, yb, generator=gen).x_adv

    def correct_on(images: torch.Tensor) -> tuple[float, torch.Tensor]:
        mask = predict(model, images) == y
        return float(mask.float().mean()), mask

    clean = float((predict(model, x) == y).float().mean())
    fgsm_acc, _ = _accuracy_under(lambda xb, yb: fgsm([model], xb, yb).x_adv, model, x, y,
                                  batch_size=batch_size, device=device)
    if pgd_x is not None:
        pgd_acc, pgd_mask = correct_on(pgd_x)
    else:
        pgd_acc, pgd_mask = _accuracy_under(pgd_at(eps, restarts), model, x, y, batch_size=batch_size, device=device)
    # robust only if every attack failed: like AutoAttack's own sequence, its core runs only on the
    # images PGD left robust (the result is the same as attacking all and taking the intersection)
    aa_mask = pgd_mask.clone()
    still = pgd_mask.nonzero().flatten()
    if len(still):
        _, aa_mask[still] = _accuracy_under(
            lambda xb, yb: apgd_module.autoattack_prechecked(model, xb, yb, eps=eps, n_iter=n_iter,
                                                             n_targets=n_targets, generator=gen).x_adv,
            model, x[still], y[still], batch_size=batch_size, device=device)
    aa_acc = float(aa_mask.float().mean())
    grid = _eps_grid(eps)
    curve = tuple(pgd_acc if e == eps else _accuracy_under(pgd_at(e), model, x, y, batch_size=batch_size,
                                                           device=device)[0] for e in grid)
    transfer_acc = correct_on(transfer_x)[0] if transfer_x is not None else float("nan")
    return _report(eps, clean, fgsm_acc, pgd_acc, aa_acc, transfer_acc, grid, curve)


def _report(eps: float, clean: float, fgsm_acc: float, pgd_acc: float, aa_acc: float, transfer_acc: float,
            grid: tuple[float, ...], curve: tuple[float, ...]) -> RobustnessReport:
    """The report with its checks (a NaN transfer accuracy - no source model - passes its check)."""
    flags = checks(fgsm_acc=fgsm_acc, pgd_acc=pgd_acc, aa_acc=aa_acc,
                   transfer_acc=float("inf") if math.isnan(transfer_acc) else transfer_acc, curve=curve)
    return RobustnessReport(eps, clean, fgsm_acc, pgd_acc, aa_acc, transfer_acc, grid, curve, **flags)


def images_key(*tensors: torch.Tensor | None) -> str:
    """A short identity of image tensors for cache keys (None stays None)."""
    return cache.key_of([None if t is None else [float(t.sum()), float(t.pow(2).sum()), list(t.shape)]
                         for t in tensors])


def cached_robustness(model_key: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                      transfer_x: torch.Tensor | None, pgd_x: torch.Tensor | None = None, n_iter: int = 100,
                      n_targets: int = 9, pgd_steps: int = 20, restarts: int = 1, seed: int = 0,
                      pgd_attack: str = "pgd") -> RobustnessReport:
    """:func:`evaluate_robustness`, cached by the model's key, the images and every setting (checked
    here, once)."""
    eps, n_iter, n_targets, pgd_steps, restarts, pgd_attack = _checked(eps, n_iter, n_targets, pgd_steps, restarts,
                                                                       pgd_attack)
    description = {"model": model_key, "eps": eps, "n_iter": n_iter, "n_targets": n_targets,
                   "pgd_steps": pgd_steps, "restarts": restarts, "seed": seed,
                   "pgd_attack": pgd_attack,
                   "images": cache.key_of([images_key(x), y.tolist()]), "given": images_key(pgd_x, transfer_x),
                   "code": cache.code_version(apgd_module, linf, sys.modules[__name__])}

    def compute() -> dict[str, torch.Tensor]:
        r = _evaluate(model, x, y, eps, transfer_x, pgd_x, n_iter, n_targets, pgd_steps, restarts, seed, BATCH_SIZE,
                      pgd_attack)
        return {"scalars": torch.tensor([r.clean_acc, r.fgsm_acc, r.pgd_acc, r.aa_acc, r.transfer_acc],
                                        dtype=torch.float64),
                "grid": torch.tensor(r.eps_grid, dtype=torch.float64),
                "curve": torch.tensor(r.curve, dtype=torch.float64)}

    t = cache.memoized("robustness", description, compute)
    clean, fgsm_acc, pgd_acc, aa_acc, transfer_acc = (float(v) for v in t["scalars"])
    return _report(eps, clean, fgsm_acc, pgd_acc, aa_acc, transfer_acc, tuple(float(v) for v in t["grid"]),
                   tuple(float(v) for v in t["curve"]))
