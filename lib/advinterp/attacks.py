"""Adversarial attacks under an L-infinity budget (pixel units, images in ``[0, 1]``).

* :func:`fgsm` - Goodfellow et al. (2015): ``x + eps * sign(grad_x CE(f(x), y))``.
* :func:`illc` - Kurakin et al. (2017), iterative least-likely class:
  ``x_{t+1} = clip_{x,eps}(x_t - a * sign(grad_x CE(f(x_t), y_LL)))``, ``y_LL = argmin_y p(y|x)``.
* :func:`pgd` - Madry et al. (2018): sign-gradient steps from a random start in the eps-ball,
  projected back after each step; untargeted (ascend CE on y) or targeted (descend CE on y*),
  with random restarts keeping each image's strongest result.
* :func:`ensemble_attack` - Liu et al. (2017) ensemble optimisation as used by Dong et al.
  (version A, sec. 3): minimise ``-log( mean_i softmax(f_i(x'))[y*] )`` over k models with
  sign-gradient steps, random target ``y* != y``, L-inf bound ``eps`` (our reading; see
  ``papers.md``).

Every attack is batched and device-agnostic, returns images in ``[0, 1]`` with
``||x_adv - x||_inf <= eps``, and leaves each model's train/eval mode, ``requires_grad``
flags and parameter ``.grad`` exactly as it found them (gradients are taken with respect to
the input only, with the models in eval mode).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .validation import check_choice, check_int, check_number

ATTACKS: tuple[str, ...] = ("fgsm", "illc", "pgd", "ensemble")
#: attacks usable inside training (generated on the fly against the model being trained)
TRAINING_ATTACKS: tuple[str, ...] = ("fgsm", "fgsm_rs", "illc", "pgd")


@contextmanager
def frozen(models: Sequence[nn.Module]) -> Iterator[None]:
    """Eval mode and ``requires_grad=False`` for every parameter inside the block; the exact
    previous state is restored afterwards (also on error)."""
    saved = [(m, m.training, [(p, p.requires_grad) for p in m.parameters()]) for m in models]
    for m in models:
        m.eval()
        for p in m.parameters():
            p.requires_grad_(False)
    try:
        yield
    finally:
        for m, training, flags in reversed(saved):
            m.train(training)
            for p, flag in flags:
                p.requires_grad_(flag)


@dataclass(frozen=True)
class LinfBall:
    """The L-infinity ball of radius ``eps`` around ``x0`` intersected with the image box [0,1]
    (the *project / step / random start* decomposition of MadryLab's ``robustness``)."""

    x0: torch.Tensor
    eps: float

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return torch.min(torch.max(x, self.x0 - self.eps), self.x0 + self.eps).clamp(0.0, 1.0)

    def step(self, x: torch.Tensor, grad: torch.Tensor, step_size: float) -> torch.Tensor:
        """Ascend ``grad`` by one sign step of ``step_size`` and project."""
        return self.project(x + step_size * grad.sign())

    def random_start(self, generator: torch.Generator | None) -> torch.Tensor:
        noise = torch.empty(self.x0.shape, dtype=self.x0.dtype).uniform_(-self.eps, self.eps, generator=generator)
        return self.project(self.x0 + noise.to(self.x0.device))


def _check_eps(eps: float) -> float:
    return check_number("eps", eps, 0.0, 1.0)


def _input_grad(objective: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = objective(x)
        (grad,) = torch.autograd.grad(loss, x)
    return grad


def iterate(
    objective: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    eps: float,
    step_size: float,
    steps: int,
    *,
    random_start: bool,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Maximise ``objective`` (a sum over the batch, so images do not interact) by ``steps``
    projected sign-gradient steps inside the eps-ball around ``x``."""
    ball = LinfBall(x.detach(), eps)
    x_adv = ball.random_start(generator) if random_start else x.detach().clone()
    for _ in range(steps):
        x_adv = ball.step(x_adv, _input_grad(objective, x_adv), step_size)
    return x_adv.detach()


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, random_start: bool = False,
         step_size: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2015), untargeted, clipped to [0, 1].

    ``random_start=True`` is Wong et al.'s (2020) FGSM-RS: start uniformly in the eps-ball and step
    ``step_size`` (default ``1.25 * eps``), then project.
    """
    eps = _check_eps(eps)
    ball = LinfBall(x.detach(), eps)
    start = ball.random_start(generator) if random_start else x.detach()
    step = (1.25 * eps if random_start else eps) if step_size is None else step_size
    with frozen([model]):
        grad = _input_grad(lambda z: F.cross_entropy(model(z), y, reduction="sum"), start)
    return ball.step(start, grad, step)


def illc_defaults(eps: float) -> tuple[int, float]:
    """Kurakin et al.'s schedule: step ``a = 1/255`` and ``T = min(eps*255 + 4, 1.25*eps*255)`` steps."""
    steps = int(min(eps * 255 + 4, 1.25 * eps * 255))
    return max(steps, 1), 1.0 / 255


def illc(
    model: nn.Module,
    x: torch.Tensor,
    eps: float,
    steps: int | None = None,
    step_size: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Iterative least-likely class method; returns ``(x_adv, y_ll)``.

    ``steps=None`` uses Kurakin et al.'s schedule (:func:`illc_defaults`); given ``steps``
    without ``step_size``, the step is ``2.5 * eps / steps`` (as for :func:`pgd`).
    """
    eps = _check_eps(eps)
    if steps is None:
        steps, default_step = illc_defaults(eps)
        step_size = default_step if step_size is None else step_size
    steps = check_int("steps", steps, 1)
    step_size = 2.5 * eps / steps if step_size is None else check_number("step_size", step_size, 0.0, 1.0)
    with frozen([model]), torch.no_grad():
        y_ll = model(x).argmin(dim=1)
    with frozen([model]):
        x_adv = iterate(lambda z: -F.cross_entropy(model(z), y_ll, reduction="sum"), x, eps, step_size, steps,
                        random_start=False)
    return x_adv, y_ll


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int = 20,
    step_size: float | None = None,
    *,
    random_start: bool = True,
    targeted: bool = False,
    restarts: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Projected gradient descent under L-inf (Madry et al. 2018).

    Untargeted: ascend ``CE(f(x'), y)``. Targeted (``y`` holds the targets): descend
    ``CE(f(x'), y)``. ``step_size`` defaults to ``2.5 * eps / steps``. With ``restarts > 1``
    each image keeps the restart that succeeds (or, failing all, the one of highest objective).
    """
    eps = _check_eps(eps)
    steps = check_int("steps", steps, 1)
    restarts = check_int("restarts", restarts, 1)
    step_size = 2.5 * eps / steps if step_size is None else check_number("step_size", step_size, 0.0, 1.0)
    sign = -1.0 if targeted else 1.0
    best = x.detach().clone()
    best_score = torch.full((len(x),), -float("inf"), device=x.device)
    with frozen([model]):
        for _ in range(restarts):
            x_adv = iterate(lambda z: sign * F.cross_entropy(model(z), y, reduction="sum"), x, eps, step_size,
                            steps, random_start=random_start, generator=generator)
            with torch.no_grad():
                logits = model(x_adv)
                loss = sign * F.cross_entropy(logits, y, reduction="none")
                success = (logits.argmax(1) == y) if targeted else (logits.argmax(1) != y)
                score = loss + success.float() * 1e6  # success first, then objective
                better = score > best_score
                best[better] = x_adv[better]
                best_score = torch.where(better, score, best_score)
    return best


def random_targets(y: torch.Tensor, num_classes: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A uniformly random target ``y* != y`` for each label."""
    offset = torch.randint(1, num_classes, y.shape, generator=generator).to(y.device)
    return (y + offset) % num_classes


def ensemble_attack(
    models: Sequence[nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int = 20,
    step_size: float | None = None,
    *,
    target: torch.Tensor | None = None,
    num_classes: int | None = None,
    weights: Sequence[float] | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Targeted ensemble-optimisation attack (Liu et al. 2017; Dong et al. version A).

    Minimises ``-log(sum_i w_i softmax(f_i(x'))[y*])`` (equal weights by default) with
    ``steps`` sign-gradient steps of ``step_size`` (default ``2.5 * eps / steps``) from ``x``,
    projected onto the eps-ball. ``target=None`` draws ``y* != y`` uniformly (``num_classes``
    needed then). Returns ``(x_adv, target)``.
    """
    eps = _check_eps(eps)
    steps = check_int("steps", steps, 1)
    if len(models) < 1:
        raise ValueError("models=[] is not allowed: at least one model")
    step_size = 2.5 * eps / steps if step_size is None else check_number("step_size", step_size, 0.0, 1.0)
    if target is None:
        if num_classes is None:
            raise ValueError("num_classes=None is not allowed: give num_classes (or target) to draw random targets")
        target = random_targets(y, num_classes, generator)
    w = torch.full((len(models),), 1.0 / len(models)) if weights is None else torch.tensor(weights, dtype=torch.float)
    if len(w) != len(models) or (w < 0).any() or not torch.isclose(w.sum(), torch.tensor(1.0)):
        raise ValueError(f"weights={weights!r} is not allowed: {len(models)} non-negative numbers summing to 1")
    w = w.to(x.device)

    def objective(z: torch.Tensor) -> torch.Tensor:
        probs = sum(wi * F.softmax(m(z), dim=1) for wi, m in zip(w, models))
        return torch.log(probs.gather(1, target.view(-1, 1)).clamp_min(1e-12)).sum()  # ascend log p(y*)

    with frozen(models):
        x_adv = iterate(objective, x, eps, step_size, steps, random_start=False)
    return x_adv, target


def in_batches(
    fn: Callable[..., torch.Tensor | tuple[torch.Tensor, ...]],
    *tensors: torch.Tensor,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """Apply an attack ``fn(*batch_tensors)`` batch by batch on ``device``; results on CPU."""
    parts: list[tuple[torch.Tensor, ...]] = []
    for i in range(0, len(tensors[0]), batch_size):
        out = fn(*(t[i:i + batch_size].to(device) for t in tensors))
        parts.append(tuple(o.cpu() for o in (out if isinstance(out, tuple) else (out,))))
    cat = tuple(torch.cat(p) for p in zip(*parts))
    return cat if len(cat) > 1 else cat[0]


def check_attack(name: str) -> str:
    """``name`` must be one of :data:`ATTACKS`."""
    return check_choice("attack", name, ATTACKS)


def training_attack(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int,
                    step_size: float | None = None) -> torch.Tensor:
    """The adversarial batch of a training objective: one of :data:`TRAINING_ATTACKS` against
    ``model`` (random starts draw from the global stream, which the training loop seeds per epoch)."""
    check_choice("train_attack", name, TRAINING_ATTACKS)
    if name == "fgsm":
        return fgsm(model, x, y, eps)
    if name == "fgsm_rs":
        return fgsm(model, x, y, eps, random_start=True, step_size=step_size)
    if name == "illc":
        return illc(model, x, eps, steps, step_size)[0]
    return pgd(model, x, y, eps, steps, step_size)
