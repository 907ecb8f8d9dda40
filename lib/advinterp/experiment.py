"""The book's shared experimental setting for one seed (chapters 1-5).

An :class:`Experiment` names the data, the dissected model, the other ensemble members, the
held-out model, the attack budget and the probe set. Its methods return cached objects: the
trained networks (:mod:`advinterp.zoo`), the probe images and the adversarial sets
(:mod:`advinterp.advdata`). Because every chapter builds the same ``Experiment`` from the same
parameters, chapter 2 dissects exactly chapter 1's networks on exactly chapter 1's adversarial
dataset, without recomputing them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch

from . import zoo
from .advdata import AdversarialSet, cached_adversarial_set
from .data import DatasetBundle, probe_indices, take
from .evaluation import predict
from .objectives import Objective
from .training import TrainedModel, cached_bundle


@dataclass
class Experiment:
    """One seed of the chapter-1 setting. ``ensemble`` lists the members other than ``model``."""

    dataset: str = "mnist5k"
    model: str = "small_cnn"
    ensemble: tuple[str, ...] = ("wide_cnn", "mlp")
    heldout: str | None = "small_resnet"
    eps: float = 0.3
    attack_steps: int = 20
    n_probe: int = 500
    seed: int = 0
    data_root: str | None = None
    image_size: int | None = None
    epochs: int | None = None
    max_train: int | None = None
    pretrained: bool = False
    device: str = "auto"
    _models: dict[Any, TrainedModel] = field(default_factory=dict, repr=False)

    @classmethod
    def from_params(cls, P: dict[str, Any], seed: int | None = None, **changes: Any) -> Experiment:
        """Build from a chapter's validated parameters (keys that are not fields are ignored)."""
        names = {f for f in cls.__dataclass_fields__ if not f.startswith("_")}
        kw = {k: v for k, v in P.items() if k in names}
        kw["ensemble"] = tuple(kw.get("ensemble", ()))
        if seed is not None:
            kw["seed"] = seed
        kw.update(changes)
        return cls(**kw)

    @property
    def bundle(self) -> DatasetBundle:
        return cached_bundle(self.dataset, self.data_root, self.image_size)

    def trained(self, name: str, objective: Objective | None = None) -> TrainedModel:
        """The network ``name`` of this setting, trained with ``objective`` (default: standard
        cross-entropy) once, then cached. Adversarially trained variants start from scratch with
        the same recipe and seed."""
        key = (name, objective)
        if key not in self._models:
            if objective is not None and self.pretrained:
                raise ValueError("pretrained=True is not allowed with a training objective: pretrained "
                                 "ImageNet models are used as they are")
            self._models[key] = zoo.standard_model(
                self.dataset, name, self.seed, data_root=self.data_root, image_size=self.image_size,
                device=self.device, pretrained=self.pretrained, epochs=self.epochs, max_train=self.max_train,
                objective=objective)
        return self._models[key]

    @property
    def member_names(self) -> list[str]:
        return [self.model, *self.ensemble]

    def members(self) -> dict[str, TrainedModel]:
        return {n: self.trained(n) for n in self.member_names}

    @property
    def net(self) -> torch.nn.Module:
        """The dissected network."""
        return self.trained(self.model).model

    @cached_property
    def probe_index(self) -> torch.Tensor:
        return probe_indices(self.bundle.test, self.n_probe, self.seed)

    def probes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The clean probe images and their labels."""
        return take(self.bundle.test, self.probe_index)

    def adversarial(self, attack: str) -> AdversarialSet:
        """The adversarial version of the probe set: ``"ensemble"`` attacks all members (Dong et
        al.'s adversarial dataset); ``"fgsm"``, ``"illc"``, ``"pgd"`` attack ``model`` alone."""
        attacked = list(self.members().values()) if attack == "ensemble" else [self.trained(self.model)]
        return cached_adversarial_set(attack, attacked, self.bundle, self.probe_index, eps=self.eps,
                                      steps=self.attack_steps, seed=self.seed, device=self.device)

    def target_labels(self, adv: AdversarialSet, model: torch.nn.Module | None = None) -> torch.Tensor:
        """The label an adversarial image is meant to carry: the attack's target (ensemble y*,
        ILLC's least-likely class) or, for untargeted FGSM / PGD, ``model``'s prediction."""
        if adv.targeted:
            return adv.target
        return predict(model if model is not None else self.net, adv.x_adv)
