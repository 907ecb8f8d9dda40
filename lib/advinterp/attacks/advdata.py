"""Adversarial datasets: a probe set, its adversarial versions and their labels, cached.

Dong et al. build an *adversarial dataset* with the ensemble-optimisation attack so that what
neurons do on it is not an artefact of attacking the very network being dissected (version A,
sec. 3). Chapters 2-7 reuse the sets through :func:`cached_adversarial_set`, keyed by the
attack, its settings, the attacked models' cache keys, the probe indices and the seed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from ..core import cache, paths
from ..core.devices import derive_seed, generator, resolve_device
from ..core.validation import check_choice, check_int
from ..data.datasets import DatasetBundle, take
from . import linf


class CachedModel(Protocol):
    """A model with its cache key (e.g. :class:`advinterp.training.loop.TrainedModel`)."""

    model: torch.nn.Module
    key: str


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
    """Attack ``x`` with ``attack`` (one of :data:`advinterp.attacks.linf.PROBE_SETS`: an evaluation
    attack, a study's internal one or a control).

    Single-model attacks use ``attacked[0]``; ``"ensemble"`` uses all of ``attacked`` and aims at
    a random target ``y* != y`` drawn from ``seed``. ``steps`` is ignored by FGSM; ``steps=None``
    gives each attack's default (ILLC: Kurakin's schedule; PGD and ensemble: 20 steps).
    ``restarts`` applies to PGD (each image keeps its strongest restart).
    """
    check_choice("attack", attack, linf.PROBE_SETS)
    eps = linf.EPS.validate(eps)
    if steps is not None:
        check_int("attack_steps", steps, 1)
    dev = resolve_device(device)
    g = generator(derive_seed(seed, attack, "random"))
    spec = linf.ATTACKS[attack]
    members = list(attacked) if spec.multi_model else list(attacked[:1])
    target = linf.random_targets(y, num_classes, g) if spec.draws_target else None

    def one_batch(xb: torch.Tensor, yb: torch.Tensor, *tb: torch.Tensor) -> linf.AttackOutput:
        return linf.run(attack, members, xb, yb, eps=eps, steps=steps, generator=g, restarts=restarts,
                        target=tb[0] if tb else None)

    tensors = (x, y) if target is None else (x, y, target)
    out = linf.in_batches(one_batch, *tensors, batch_size=batch_size, device=dev)
    idx = indices if indices is not None else torch.arange(len(y))
    return AdversarialSet(attack, eps, x.cpu(), out.x_adv, y.cpu(), out.target.cpu(), idx)


def cached_adversarial_set(
    attack: str,
    attacked: Sequence[CachedModel],
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
    check_choice("attack", attack, linf.PROBE_SETS)
    members = attacked if linf.ATTACKS[attack].multi_model else attacked[:1]
    key = cache.key_of({
        "attack": attack, "eps": eps, "steps": steps, "seed": seed, "restarts": restarts,
        "models": [m.key for m in members],
        "data": bundle.identity(), "indices": cache.key_of(indices.tolist()),
        "code": cache.code_version(linf, sys.modules[__name__]),
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
