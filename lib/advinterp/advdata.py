"""Adversarial datasets: a probe set, its adversarial versions and their labels, cached.

Dong et al. build an *adversarial dataset* with the ensemble-optimisation attack so that what
neurons do on it is not an artefact of attacking the very network being dissected (version A,
sec. 3). Chapters 2-5 reuse chapter 1's sets through :func:`cached_adversarial_set`, keyed by the
attack, its settings, the attacked models' cache keys, the probe indices and the seed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from . import attacks, cache, paths
from .data import DatasetBundle, take
from .devices import derive_seed, generator, resolve_device
from .training import TrainedModel
from .validation import check_int, check_number


@dataclass
class AdversarialSet:
    """Clean probes ``x`` with true labels ``y``, their adversarial versions ``x_adv`` and the
    attack's intended ``target`` (the random y* of the ensemble attack, the least-likely class of
    ILLC; ``-1`` for untargeted FGSM / PGD, whose "target" is whatever the model predicts)."""

    attack: str
    eps: float
    x: torch.Tensor
    x_adv: torch.Tensor
    y: torch.Tensor
    target: torch.Tensor
    indices: torch.Tensor

    @property
    def targeted(self) -> bool:
        return bool((self.target >= 0).all())

    @property
    def max_linf(self) -> float:
        """Largest ``||x_adv - x||_inf`` over the set."""
        return float((self.x_adv - self.x).abs().amax()) if len(self.x) else 0.0

    def __len__(self) -> int:
        return len(self.y)


def make_adversarial_set(
    attack: str,
    attacked: Sequence[torch.nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    steps: int | None,
    num_classes: int,
    seed: int,
    indices: torch.Tensor | None = None,
    device: str | torch.device = "auto",
    batch_size: int = 250,
    restarts: int = 1,
) -> AdversarialSet:
    """Attack ``x`` with ``attack`` (one of :data:`advinterp.attacks.ATTACKS`).

    Single-model attacks use ``attacked[0]``; ``"ensemble"`` uses all of ``attacked``.
    ``steps`` is ignored by FGSM; ``steps=None`` gives ILLC Kurakin's schedule and PGD /
    ensemble 20 steps. ``restarts`` applies to PGD (each image keeps its strongest restart).
    """
    attacks.check_attack(attack)
    eps = check_number("eps", eps, 0.0, 1.0)
    if steps is not None:
        check_int("attack_steps", steps, 1)
    dev = resolve_device(device)
    g = generator(derive_seed(seed, attack, "random"))
    model = attacked[0]
    target = torch.full_like(y, -1)
    if attack == "fgsm":
        x_adv = attacks.in_batches(lambda a, b: attacks.fgsm(model, a, b, eps), x, y, batch_size=batch_size, device=dev)
    elif attack == "pgd":
        x_adv = attacks.in_batches(lambda a, b: attacks.pgd(model, a, b, eps, steps or 20, generator=g,
                                                                 restarts=restarts), x, y,
                                   batch_size=batch_size, device=dev)
    elif attack == "illc":
        x_adv, target = attacks.in_batches(lambda a: attacks.illc(model, a, eps, steps), x, batch_size=batch_size,
                                           device=dev)
    else:
        target = attacks.random_targets(y, num_classes, g)
        x_adv, _ = attacks.in_batches(
            lambda a, b, t: attacks.ensemble_attack(attacked, a, b, eps, steps or 20, target=t), x, y, target,
            batch_size=batch_size, device=dev)
    assert isinstance(x_adv, torch.Tensor)
    idx = indices if indices is not None else torch.arange(len(y))
    return AdversarialSet(attack, eps, x.cpu(), x_adv, y.cpu(), target.cpu(), idx)


def cached_adversarial_set(
    attack: str,
    attacked: Sequence[TrainedModel],
    bundle: DatasetBundle,
    indices: torch.Tensor,
    *,
    eps: float,
    steps: int | None,
    seed: int,
    device: str | torch.device = "auto",
    restarts: int = 1,
) -> AdversarialSet:
    """:func:`make_adversarial_set` on the test images at ``indices``, cached on disk."""
    members = attacked if attack == "ensemble" else attacked[:1]
    key = cache.key_of({
        "attack": attack, "eps": eps, "steps": steps, "seed": seed, "restarts": restarts,
        "models": [m.key for m in members],
        "data": bundle.identity(), "indices": cache.key_of(indices.tolist()),
        "code": cache.code_version(attacks, sys.modules[__name__]),
    })
    path = paths.cache_dir() / "adversarial" / f"{attack}-{key}.pt"
    found = cache.load_tensors(path)
    if found is None:
        x, y = take(bundle.test, indices)
        adv = make_adversarial_set(attack, [m.model for m in members], x, y, eps=eps, steps=steps,
                                   num_classes=bundle.num_classes, seed=seed, indices=indices, device=device,
                                   restarts=restarts)
        cache.save_tensors(path, {"x": adv.x, "x_adv": adv.x_adv, "y": adv.y, "target": adv.target,
                                  "indices": adv.indices})
        return adv
    return AdversarialSet(attack, eps, found["x"], found["x_adv"], found["y"], found["target"], found["indices"])
