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
from ..core.validation import check_choice, check_int, check_optional_int
from ..data.datasets import DatasetBundle, take
from . import linf

#: images attacked at once
BATCH_SIZE = 250


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
    batch_size: int = BATCH_SIZE,
    restarts: int = 1,
) -> AdversarialSet:
    """Attack ``x`` with ``attack`` (one of :data:`advinterp.attacks.linf.PROBE_SETS`: an evaluation
    attack, a study's internal one or a control).

    Single-model attacks use ``attacked[0]``; ``"ensemble"`` uses all of ``attacked`` and aims at
    a random target ``y* != y`` drawn from ``seed``. ``steps`` is ignored by FGSM; ``steps=None``
    gives each attack's default (ILLC: Kurakin's schedule; PGD and ensemble: 20 steps).
    ``restarts`` applies to PGD (each image keeps its strongest restart). The settings are checked
    here, once: the attack of every batch trusts them.
    """
    return _attack_set(_prepared(attack, eps, steps, restarts), attacked, x, y, num_classes=num_classes, seed=seed,
                       indices=indices, device=device, batch_size=batch_size)


def _prepared(attack: str, eps: float, steps: int | None, restarts: int) -> linf.Prepared:
    """Probe-set attack ``attack`` with its settings checked, under the names the chapters use."""
    check_choice("attack", attack, linf.PROBE_SETS)
    return linf.Prepared(attack, linf.Settings(linf.EPS.validate(eps), check_optional_int("attack_steps", steps, 1),
                                               None, check_int("restarts", restarts, 1)))


def _attack_set(attack: linf.Prepared, attacked: Sequence[torch.nn.Module], x: torch.Tensor, y: torch.Tensor, *,
                num_classes: int, seed: int, indices: torch.Tensor | None, device: str | torch.device,
                batch_size: int) -> AdversarialSet:
    """:func:`make_adversarial_set` with its settings already checked."""
    dev = resolve_device(device)
    g = generator(derive_seed(seed, attack.name, "random"))
    spec = linf.ATTACKS[attack.name]
    members = list(attacked) if spec.multi_model else list(attacked[:1])
    target = linf.random_targets(y, num_classes, g) if spec.draws_target else None

    def one_batch(xb: torch.Tensor, yb: torch.Tensor, *tb: torch.Tensor) -> linf.AttackOutput:
        return attack(members, xb, yb, generator=g, target=tb[0] if tb else None)

    tensors = (x, y) if target is None else (x, y, target)
    out = linf.in_batches(one_batch, *tensors, batch_size=batch_size, device=dev)
    idx = indices if indices is not None else torch.arange(len(y))
    return AdversarialSet(attack.name, attack.settings.eps, x.cpu(), out.x_adv, y.cpu(), out.target.cpu(), idx)


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
    """:func:`make_adversarial_set` on the test images at ``indices``, cached on disk (the settings
    checked here, once)."""
    prepared = _prepared(attack, eps, steps, restarts)
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
        adv = _attack_set(prepared, [m.model for m in members], x, y, num_classes=bundle.num_classes, seed=seed,
                          indices=indices, device=device, batch_size=BATCH_SIZE)
        cache.save_tensors(path, {"x": adv.x, "x_adv": adv.x_adv, "y": adv.y, "target": adv.target,
                                  "indices": adv.indices})
        return adv
    return AdversarialSet(attack, eps, found["x"], found["x_adv"], found["y"], found["target"], found["indices"])
