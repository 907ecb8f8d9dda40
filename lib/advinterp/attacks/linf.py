"""Adversarial attacks under an L-infinity budget (pixel units, images in ``[0, 1]``).

* :func:`fgsm` - Goodfellow et al. (2015): ``x + eps * sign(grad_x CE(f(x), y))``.
* :func:`fgsm_rs` - Wong et al. (2020): FGSM from a uniform random start in the eps-ball, step
  ``1.25 * eps`` (fast adversarial training).
* :func:`illc` - Kurakin et al. (2017), iterative least-likely class:
  ``x_{t+1} = clip_{x,eps}(x_t - a * sign(grad_x CE(f(x_t), y_LL)))``, ``y_LL = argmin_y p(y|x)``.
* :func:`pgd` - Madry et al. (2018): sign-gradient steps from a random start in the eps-ball,
  projected back after each step, ascending ``CE(f(x'), y)``, with random restarts keeping each
  image's strongest result.
* :func:`ensemble` - Liu et al. (2017) ensemble optimisation as used by Dong et al. (version A,
  sec. 3): minimise ``-log( mean_i softmax(f_i(x'))[y*] )`` over k models with sign-gradient
  steps, random target ``y* != y``, L-inf bound ``eps`` (our reading; see ``docs/papers.md``).
* :func:`ensemble_logp` - :func:`ensemble` with the sum of the members' own log-probabilities of
  y* (each member's targeted cross-entropy), the studies' ``ensemble_loss="log_probabilities"``.
* :func:`pgd_margin` - :func:`pgd` ascending Carlini and Wagner's margin loss instead of
  cross-entropy (the robustness evaluation's option ``eval_loss="margin"``).
* :func:`pgd_ensemble` - untargeted PGD against several models at once, ascending
  ``-log( mean_i softmax(f_i(x'))[y] )``: one set of images for comparing models on the same inputs
  (chapter 4 keeps the images that fool every model).
* :func:`random_sign` - not an attack: the **control** of equal budget, a random corner of the
  eps-ball. What an attack does to a network beyond what this does is the attack's doing; what
  this does too is the doing of any perturbation that large (:data:`CONTROLS`).

**One calling convention.** Every attack is ``attack(models, x, y, *, eps, steps, step_size,
generator, restarts, target) -> AttackOutput(x_adv, target)``; single-model attacks use
``models[0]``; ``target`` is the label the attack aims at (ILLC's least-likely class, the
ensemble's y*) or ``-1`` for untargeted attacks. :data:`ATTACKS` registers them by name and
:func:`run` calls one by name: the names are written only there.

**Settings checked once.** A public attack (and :func:`run`) checks ``eps``, ``steps``,
``step_size`` and ``restarts`` on each call. A loop over batches checks them once instead:
:func:`prepare` returns a :class:`Prepared` attack whose algorithm (the registry's ``core``) trusts
its :class:`Settings`, and a caller that has checked the values under its own parameter names
(``train_eps``, ``attack_steps``) builds :class:`Settings` directly. ``steps=None`` and
``step_size=None`` take each attack's documented default (:func:`default_step_size` for the
iterative ones). Every attack is batched and device-agnostic, returns images in ``[0, 1]`` with
``||x_adv - x||_inf <= eps``, and leaves each model's train/eval mode, ``requires_grad`` flags
and parameter ``.grad`` exactly as it found them (gradients are taken with respect to the input
only, with the models in eval mode).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from ..core._helpers import chunks, eval_mode
from ..core.params import number
from ..core.validation import check_choice, check_int, fail

EPS = number("eps", 0.3, 0.0, 1.0, "L-inf budget in pixel units (images in [0, 1])", lo_open=True)
STEP_SIZE = number("step_size", None, 0.0, 1.0, "size of one sign step in pixel units (None: the attack's default)")


class AttackOutput(NamedTuple):
    """Adversarial images and the label each one aims at (``-1``: untargeted)."""

    x_adv: torch.Tensor
    target: torch.Tensor


class AttackFn(Protocol):
    def __call__(self, models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor, *, eps: float,
                 steps: int | None = None, step_size: float | None = None,
                 generator: torch.Generator | None = None, restarts: int = 1,
                 target: torch.Tensor | None = None) -> AttackOutput: ...


class AttackCore(Protocol):
    """An attack's algorithm (:attr:`Attack.core`): checks nothing, trusts ``s``."""

    def __call__(self, models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor, s: Settings,
                 generator: torch.Generator | None, target: torch.Tensor | None) -> AttackOutput: ...


@dataclass(frozen=True)
class Settings:
    """What every batch of one attack run shares. Built unchecked: :func:`check_settings` builds it
    checked, once (so does a caller that has checked the values under its own parameter names), and
    the attack cores trust it, so a run over many batches checks its settings once."""

    eps: float
    #: None: the attack's default
    steps: int | None = None
    #: None: the attack's default
    step_size: float | None = None
    restarts: int = 1


def check_settings(eps: float, steps: int | None = None, step_size: float | None = None,
                   restarts: int = 1) -> Settings:
    """The settings, checked: ``eps`` in (0, 1] (:data:`EPS`), ``steps`` None or >= 1, ``step_size``
    None or in [0, 1] (:data:`STEP_SIZE`), ``restarts`` >= 1; else the ``ValueError`` naming the one
    that is not allowed."""
    return Settings(EPS.validate(eps), None if steps is None else check_int("steps", steps, 1),
                    None if step_size is None else STEP_SIZE.validate(step_size), check_int("restarts", restarts, 1))


@contextmanager
def frozen(models: Sequence[nn.Module]) -> Iterator[None]:
    """Eval mode and ``requires_grad=False`` for every parameter inside the block; the exact
    previous state is restored afterwards (also on error)."""
    flags = [(p, p.requires_grad) for m in models for p in m.parameters()]
    with eval_mode(*models):
        for p, _ in flags:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p, flag in reversed(flags):
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


def default_step_size(eps: float, steps: int) -> float:
    """The step of the iterative attacks when none is given: ``2.5 * eps / steps`` (Madry et al.)."""
    return 2.5 * eps / steps


def illc_defaults(eps: float) -> tuple[int, float]:
    """Kurakin et al.'s schedule: step ``a = 1/255`` and ``T = min(eps*255 + 4, 1.25*eps*255)`` steps."""
    steps = int(min(eps * 255 + 4, 1.25 * eps * 255))
    return max(steps, 1), 1.0 / 255


def _schedule(s: Settings, default_steps: int) -> tuple[int, float]:
    """``steps`` and ``step_size`` of an iterative attack, each attack's default where None."""
    steps = default_steps if s.steps is None else s.steps
    return steps, default_step_size(s.eps, steps) if s.step_size is None else s.step_size


def _input_grad(objective: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = objective(x)
        (grad,) = torch.autograd.grad(loss, x)
    return grad


def iterate(objective: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, eps: float, step_size: float,
            steps: int, *, random_start: bool, generator: torch.Generator | None = None) -> torch.Tensor:
    """Maximise ``objective`` (a sum over the batch, so images do not interact) by ``steps``
    projected sign-gradient steps inside the eps-ball around ``x``."""
    ball = LinfBall(x.detach(), eps)
    x_adv = ball.random_start(generator) if random_start else x.detach().clone()
    for _ in range(steps):
        x_adv = ball.step(x_adv, _input_grad(objective, x_adv), step_size)
    return x_adv.detach()


def _untargeted(y: torch.Tensor) -> torch.Tensor:
    return torch.full_like(y, -1)


# ----------------------------------------------------------------------------- attack cores
# Each core takes checked Settings and checks nothing: the public attacks below, prepare() and the
# callers that check the values under their own names check them once, before any batch.


def _fgsm(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor, s: Settings,
          generator: torch.Generator | None, target: torch.Tensor | None) -> AttackOutput:
    """Fast gradient sign method (Goodfellow et al. 2015), untargeted, one step of ``eps``
    (``steps`` and ``restarts`` do not apply)."""
    model = models[0]
    ball = LinfBall(x.detach(), s.eps)
    with frozen([model]):
        grad = _input_grad(lambda z: F.cross_entropy(model(z), y, reduction="sum"), x)
    return AttackOutput(ball.step(x.detach(), grad, s.eps if s.step_size is None else s.step_size), _untargeted(y))


def _fgsm_rs(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor, s: Settings,
             generator: torch.Generator | None, target: torch.Tensor | None) -> AttackOutput:
    """Wong et al.'s (2020) FGSM-RS: a uniform random start in the eps-ball, one step of
    ``step_size`` (default ``1.25 * eps``), projected."""
    model = models[0]
    ball = LinfBall(x.detach(), s.eps)
    start = ball.random_start(generator)
    with frozen([model]):
        grad = _input_grad(lambda z: F.cross_entropy(model(z), y, reduction="sum"), start)
    return AttackOutput(ball.step(start, grad, 1.25 * s.eps if s.step_size is None else s.step_size), _untargeted(y))


def _illc(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor, s: Settings,
          generator: torch.Generator | None, target: torch.Tensor | None) -> AttackOutput:
    """Iterative least-likely class method; its target is ``y_LL`` (``y`` is not used).

    ``steps=None`` uses Kurakin et al.'s schedule (:func:`illc_defaults`); given ``steps``
    without ``step_size``, the step is :func:`default_step_size`.
    """
    if s.steps is None:
        steps, kurakin_step = illc_defaults(s.eps)
        step_size = kurakin_step if s.step_size is None else s.step_size
    else:
        steps, step_size = _schedule(s, s.steps)
    model = models[0]
    with frozen([model]), torch.no_grad():
        y_ll = model(x).argmin(dim=1)
    with frozen([model]):
        x_adv = iterate(lambda z: -F.cross_entropy(model(z), y_ll, reduction="sum"), x, s.eps, step_size, steps,
                        random_start=False)
    return AttackOutput(x_adv, y_ll)


def margin_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Carlini and Wagner's margin, per image: the largest other logit minus the true class's
    (positive once the image is misclassified). Unlike cross-entropy it does not saturate on
    confident predictions, the weakness AutoAttack's DLR loss also addresses (Croce and Hein 2020)."""
    true = logits.gather(1, y.view(-1, 1)).squeeze(1)
    other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), -float("inf")).amax(1)
    return other - true


def _pgd_with(loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], doc: str) -> AttackCore:
    """Untargeted L-inf PGD ascending the per-image ``loss(logits, y)`` from a random start
    (``steps`` default 20); with ``restarts > 1`` each image keeps the restart that succeeds (or,
    failing all, the one of highest loss). ``doc`` is the attack's docstring."""

    def core(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor, s: Settings,
             generator: torch.Generator | None, target: torch.Tensor | None) -> AttackOutput:
        steps, step_size = _schedule(s, 20)
        model = models[0]
        best = x.detach().clone()
        best_score = torch.full((len(x),), -float("inf"), device=x.device)
        with frozen([model]):
            for _ in range(s.restarts):
                x_adv = iterate(lambda z: loss(model(z), y).sum(), x, s.eps, step_size, steps,
                                random_start=True, generator=generator)
                with torch.no_grad():
                    logits = model(x_adv)
                    score = loss(logits, y) + (logits.argmax(1) != y).float() * 1e6  # success first, then loss
                    better = score > best_score
                    best[better] = x_adv[better]
                    best_score = torch.where(better, score, best_score)
        return AttackOutput(best, _untargeted(y))

    core.__doc__ = doc
    return core


_pgd = _pgd_with(lambda logits, y: F.cross_entropy(logits, y, reduction="none"), """Projected gradient descent
    under L-inf (Madry et al. 2018), untargeted: ascend ``CE(f(x'), y)`` from a random start (``steps``
    default 20). With ``restarts > 1`` each image keeps the restart that succeeds (or, failing all, the
    one of highest loss).""")
_pgd_margin = _pgd_with(margin_loss, """PGD (see :func:`pgd`) ascending Carlini and Wagner's margin
    (:func:`margin_loss`) instead of cross-entropy: the robustness evaluation's PGD where cross-entropy
    saturates (on the CPU tier's robust small_cnn, PGD-20 with cross-entropy left robust accuracy 4.8
    points above AutoAttack's core on the same images, with the margin 2.6).""")


def random_targets(y: torch.Tensor, num_classes: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A uniformly random target ``y* != y`` for each label."""
    offset = torch.randint(1, num_classes, y.shape, generator=generator).to(y.device)
    return (y + offset) % num_classes


def _ensemble_attack(models: Sequence[nn.Module], x: torch.Tensor, s: Settings, target: torch.Tensor | None,
                     log_p: Callable[[Sequence[torch.Tensor], torch.Tensor], torch.Tensor]) -> AttackOutput:
    """Targeted sign-gradient ascent of ``log_p(member logits, y*)`` (per image) from ``x`` within
    the eps-ball (``steps`` default 20)."""
    steps, step_size = _schedule(s, 20)
    if len(models) < 1:
        fail("models", list(models), "at least one model")
    if target is None:
        fail("target", None, "the target labels y* of the ensemble attack (see random_targets)")
    assert target is not None

    def objective(z: torch.Tensor) -> torch.Tensor:
        return log_p([m(z) for m in models], target).sum()

    with frozen(models):
        x_adv = iterate(objective, x, s.eps, step_size, steps, random_start=False)
    return AttackOutput(x_adv, target)


def _log_mean_probability(logits: Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """``log(mean_i softmax(z_i)[y*])``: Liu et al.'s ensemble loss (equal weights)."""
    probs = sum(F.softmax(z, dim=1) for z in logits) / len(logits)
    return torch.log(probs.gather(1, target.view(-1, 1)).squeeze(1).clamp_min(1e-12))


def _sum_log_probability(logits: Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """``sum_i log softmax(z_i)[y*]``: every member's own targeted cross-entropy."""
    return sum(F.log_softmax(z, dim=1).gather(1, target.view(-1, 1)).squeeze(1) for z in logits)


def _ensemble(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor, s: Settings,
              generator: torch.Generator | None, target: torch.Tensor | None) -> AttackOutput:
    """Targeted ensemble-optimisation attack (Liu et al. 2017; Dong et al. version A) on every
    model of ``models`` with equal weights.

    Minimises ``-log(mean_i softmax(f_i(x'))[y*])`` with ``steps`` (default 20) sign-gradient steps
    from ``x``, projected onto the eps-ball. ``target`` (y*) is required: draw it with
    :func:`random_targets` (as :func:`advinterp.attacks.advdata.make_adversarial_set` does).
    """
    return _ensemble_attack(models, x, s, target, _log_mean_probability)


def _ensemble_logp(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor, s: Settings,
                   generator: torch.Generator | None, target: torch.Tensor | None) -> AttackOutput:
    """:func:`_ensemble` minimising ``-sum_i log softmax(f_i(x'))[y*]``, each member's own targeted
    cross-entropy, instead of the log of the averaged probabilities. Averaging probabilities lets a
    member that already puts y* first carry the gradient while a member far from y* (its
    probability, and so its gradient, near 0) is left behind; with every member's own log-probability
    none saturates. On the MNIST default (seed 2) Liu et al.'s loss reached y* on 85 % of small_cnn's
    images, this one on 94 %."""
    return _ensemble_attack(models, x, s, target, _sum_log_probability)


def _pgd_ensemble(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor, s: Settings,
                  generator: torch.Generator | None, target: torch.Tensor | None) -> AttackOutput:
    """Untargeted PGD on every model of ``models`` at once: ascend ``-log(mean_i softmax(f_i(x'))[y])``
    (the untargeted form of :func:`ensemble`'s loss: once a model is fooled its probability of ``y``
    is near 0 and the models still correct carry the gradient), from a random start; with
    ``restarts > 1`` each image keeps the restart that fools the most models (then the highest loss)."""
    steps, step_size = _schedule(s, 20)
    if len(models) < 1:
        fail("models", list(models), "at least one model")

    def per_image(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = [m(z) for m in models]
        probs = sum(F.softmax(lg, dim=1) for lg in logits) / len(models)
        loss = -torch.log(probs.gather(1, y.view(-1, 1)).squeeze(1).clamp_min(1e-12))
        n_fooled = sum((lg.argmax(1) != y).float() for lg in logits)
        return loss, n_fooled

    best = x.detach().clone()
    best_score = torch.full((len(x),), -float("inf"), device=x.device)
    with frozen(models):
        for _ in range(s.restarts):
            x_adv = iterate(lambda z: per_image(z)[0].sum(), x, s.eps, step_size, steps, random_start=True,
                            generator=generator)
            with torch.no_grad():
                loss, n_fooled = per_image(x_adv)
                score = loss + n_fooled * 1e6  # fooling more models first, then loss
                better = score > best_score
                best[better] = x_adv[better]
                best_score = torch.where(better, score, best_score)
    return AttackOutput(best, _untargeted(y))


def _random_sign(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor, s: Settings,
                 generator: torch.Generator | None, target: torch.Tensor | None) -> AttackOutput:
    """``x + eps * s`` with independent uniformly random signs ``s``, clipped to [0, 1]: a perturbation
    as large as the attacks' in L-inf that uses no model (``models``, ``steps`` do not apply)."""
    signs = torch.randint(0, 2, x.shape, generator=generator).to(x.device, x.dtype) * 2 - 1
    return AttackOutput(LinfBall(x.detach(), s.eps).project(x.detach() + s.eps * signs), _untargeted(y))


@dataclass(frozen=True)
class Attack:
    """A registered attack and what it is for."""

    #: the algorithm, trusting its :class:`Settings` (run it through :func:`prepare` or :func:`run`)
    core: AttackCore
    #: aims at a label of its own (ILLC's least-likely class, the ensemble's y*)
    targeted: bool
    #: attacks every model it is given (else the first)
    multi_model: bool
    #: usable inside training (generated against the model being trained)
    training: bool
    #: usable to build an adversarial probe set
    evaluation: bool
    #: needs a random target y* != y drawn by the caller (``target=``)
    draws_target: bool = False
    #: a control of equal budget, not an attack (builds a probe set; never an option of ``attack``)
    control: bool = False
    #: builds probe sets inside a study (never an option of ``attack``)
    internal: bool = False


ATTACKS: dict[str, Attack] = {
    "fgsm": Attack(_fgsm, targeted=False, multi_model=False, training=True, evaluation=True),
    "fgsm_rs": Attack(_fgsm_rs, targeted=False, multi_model=False, training=True, evaluation=False),
    "illc": Attack(_illc, targeted=True, multi_model=False, training=True, evaluation=True),
    "pgd": Attack(_pgd, targeted=False, multi_model=False, training=True, evaluation=True),
    "ensemble": Attack(_ensemble, targeted=True, multi_model=True, training=False, evaluation=True,
                       draws_target=True),
    "ensemble_logp": Attack(_ensemble_logp, targeted=True, multi_model=True, training=False, evaluation=False,
                            draws_target=True, internal=True),
    "pgd_margin": Attack(_pgd_margin, targeted=False, multi_model=False, training=False, evaluation=False,
                         internal=True),
    "pgd_ensemble": Attack(_pgd_ensemble, targeted=False, multi_model=True, training=False, evaluation=False,
                           internal=True),
    "noise": Attack(_random_sign, targeted=False, multi_model=False, training=False, evaluation=False, control=True),
}
#: attacks that build adversarial probe sets (chapters 1-5)
EVAL_ATTACKS: tuple[str, ...] = tuple(n for n, a in ATTACKS.items() if a.evaluation)
#: controls of equal budget that build probe sets too (chapters 1-3)
CONTROLS: tuple[str, ...] = tuple(n for n, a in ATTACKS.items() if a.control)
#: everything that builds a cached probe set (:mod:`advinterp.attacks.advdata`)
PROBE_SETS: tuple[str, ...] = tuple(n for n, a in ATTACKS.items() if a.evaluation or a.control or a.internal)
#: attacks usable inside training (generated on the fly against the model being trained)
TRAINING_ATTACKS: tuple[str, ...] = tuple(n for n, a in ATTACKS.items() if a.training)


@dataclass(frozen=True)
class Prepared:
    """Registered attack ``name`` with its settings checked once: call it on batch after batch
    (built by :func:`prepare`, or directly by a caller that has checked ``settings`` itself)."""

    name: str
    settings: Settings

    def __call__(self, models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor, *,
                 generator: torch.Generator | None = None, target: torch.Tensor | None = None) -> AttackOutput:
        return ATTACKS[self.name].core(models, x, y, self.settings, generator, target)


def prepare(name: str, *, eps: float, steps: int | None = None, step_size: float | None = None, restarts: int = 1,
            allowed: Sequence[str] | None = None, param: str = "attack") -> Prepared:
    """Registered attack ``name`` (one of ``allowed``, default every attack; a bad name is a
    ``ValueError`` naming ``param``) with its settings checked (:func:`check_settings`), once."""
    check_choice(param, name, tuple(ATTACKS) if allowed is None else tuple(allowed))
    return Prepared(name, check_settings(eps, steps, step_size, restarts))


def run(name: str, models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor, *, eps: float,
        steps: int | None = None, step_size: float | None = None, generator: torch.Generator | None = None,
        restarts: int = 1, target: torch.Tensor | None = None, allowed: Sequence[str] | None = None,
        param: str = "attack") -> AttackOutput:
    """Run registered attack ``name`` once (:func:`prepare`, then the attack on ``x``)."""
    return prepare(name, eps=eps, steps=steps, step_size=step_size, restarts=restarts, allowed=allowed,
                   param=param)(models, x, y, generator=generator, target=target)


def _public(name: str) -> AttackFn:
    """The public form of registered attack ``name``: the calling convention of the module docstring,
    its settings checked on each call, the core's docstring."""
    core = ATTACKS[name].core

    def attack(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor, *, eps: float,
               steps: int | None = None, step_size: float | None = None, generator: torch.Generator | None = None,
               restarts: int = 1, target: torch.Tensor | None = None) -> AttackOutput:
        return core(models, x, y, check_settings(eps, steps, step_size, restarts), generator, target)

    attack.__name__ = attack.__qualname__ = name
    attack.__doc__ = core.__doc__
    return attack


fgsm = _public("fgsm")
fgsm_rs = _public("fgsm_rs")
illc = _public("illc")
pgd = _public("pgd")
pgd_margin = _public("pgd_margin")
ensemble = _public("ensemble")
ensemble_logp = _public("ensemble_logp")
pgd_ensemble = _public("pgd_ensemble")
random_sign = _public("noise")


def in_batches(fn: Callable[..., AttackOutput], *tensors: torch.Tensor, batch_size: int = 256,
               device: torch.device | str = "cpu") -> AttackOutput:
    """Apply an attack ``fn(*batch_tensors)`` batch by batch on ``device``; results on CPU."""
    parts = [fn(*(t[part].to(device) for t in tensors)) for part in chunks(len(tensors[0]), batch_size)]
    return AttackOutput(torch.cat([p.x_adv.cpu() for p in parts]), torch.cat([p.target.cpu() for p in parts]))


def untargeted_success(pred_clean: torch.Tensor, pred_adv: torch.Tensor, y: torch.Tensor) -> float:
    """Among images classified correctly before the attack, the fraction misclassified after
    (Kurakin et al.'s and Madry et al.'s convention)."""
    ok = pred_clean == y
    return float((pred_adv[ok] != y[ok]).float().mean()) if ok.any() else float("nan")


def targeted_success(pred_clean: torch.Tensor, pred_adv: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> float:
    """Among images classified correctly before the attack, the fraction classified as ``target`` after."""
    ok = pred_clean == y
    return float((pred_adv[ok] == target[ok]).float().mean()) if ok.any() else float("nan")
