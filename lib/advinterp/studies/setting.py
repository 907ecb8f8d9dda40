"""The book's shared experimental setting, the parameters every chapter shares, and the one way a
chapter turns its parameters into what it studies.

An :class:`Experiment` is one seed of the chapter-1 setting: the data, the dissected model, the
other ensemble members, the held-out model, the attack budget and the probe set. Its methods return
cached objects: the trained networks (:mod:`advinterp.training.recipes`), the probe images and the
adversarial sets (:mod:`advinterp.attacks.advdata`). Because every chapter builds the same
``Experiment`` from the same parameters, chapter 2 dissects exactly chapter 1's networks on exactly
chapter 1's adversarial dataset, without recomputing them.

A chapter keeps its parameters and its state apart: its study's ``validate`` checks the parameters (no
data loaded: :func:`advinterp.studies.default_validate`), and :func:`setup` loads the data and returns
a frozen :class:`Setup` (the data, the class affinity, the layers, one ``Experiment`` per seed); the
parameters are never written to.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import torch

from ..attacks import linf
from ..attacks.advdata import AdversarialSet, cached_adversarial_set
from ..core import progress
from ..core.devices import resolve_device, seed_everything
from ..core.params import ChapterParams, Param, choice, flag, integer, listof, seeds, text
from ..core.validation import fail
from ..data.datasets import DATA_ROOT, DATASET, IMAGE_SIZE, DatasetBundle, cached_bundle, take
from ..data.probes import probe_indices
from ..interpret import affinity
from ..models.architectures import MODEL, MODELS, TORCHVISION_MODELS, analysed_layers, check_fits, check_layer
from ..models.predict import predict
from ..training import recipes
from ..training.loop import EPOCHS, MAX_TRAIN, TrainedModel
from ..training.objectives import Objective

T = TypeVar("T")


def _device(name: str, value: Any) -> Any:
    resolve_device(value)
    return value


def _results_dir(name: str, value: Any) -> str:
    text(name, None, "").validate(value, name)
    if Path(value).is_file():
        fail(name, value, "a folder path (this is an existing file)")
    return value


# ----------------------------------------------------------------------------- shared parameters

ENSEMBLE = listof(MODEL, "ensemble", ["wide_cnn", "mlp"], "the other ensemble members", min_len=0)
#: the ensemble attack's loss (:mod:`advinterp.attacks.linf`): Liu et al.'s log of the averaged
#: probabilities, or the sum of the members' own log-probabilities of the target
ENSEMBLE_ATTACK = {"probabilities": "ensemble", "log_probabilities": "ensemble_logp"}
ENSEMBLE_LOSS = choice("ensemble_loss", "log_probabilities", tuple(ENSEMBLE_ATTACK),
                       "ensemble attack's loss: probabilities (Liu et al.) | log_probabilities (each member's own)")
HELDOUT = MODEL.renamed("heldout", default="small_resnet", help="never attacked: measures transfer")
PRETRAINED = flag("pretrained", False, "torchvision ImageNet weights (" + " / ".join(TORCHVISION_MODELS) + " only)")
EPS = linf.EPS
ATTACK_STEPS = integer("attack_steps", 20, 1, 1000, "steps of ILLC, PGD and the ensemble attack")
N_PROBE = integer("n_probe", 500, 1, None, "test images attacked and dissected (class-balanced)")
ATTACK = choice("attack", "ensemble", linf.EVAL_ATTACKS, "which adversarial set: " + " | ".join(linf.EVAL_ATTACKS))
ATTACKS = listof(ATTACK, "attacks", list(linf.EVAL_ATTACKS), "adversarial sets compared")
K = integer("k", 20, 1, None, "top-K images per neuron")
N_REFERENCE = integer("n_reference", 2000, 10, None, "real training images for class means, neighbours, concepts")
#: display sizes of the neuron galleries (chapters 2 and 4)
N_SHOW = integer("n_show", 3, 1, 50, "neurons shown per layer in the galleries")
K_SHOW = integer("k_show", 8, 1, None, "top images shown per neuron")
N_BOOT = integer("n_boot", 200, 20, 100_000, "bootstrap resamples of the images behind each interval")
SEEDS = seeds()
DEVICE = Param("device", _device, "auto", "auto | cpu | cuda | cuda:N", "auto | cpu | cuda | cuda:N | mps")
RESULTS_DIR = Param("results_dir", _results_dir, "results", "<results_dir>/<chapter>.json", "a folder path")

LAYERS = listof(text("layer", None, "a layer"), "layers", None, "None: the default layers of `model`",
                optional=True)
#: the data and training recipe of every chapter
DATA = (DATASET, DATA_ROOT, IMAGE_SIZE, MODEL)
#: chapter 1's setting, shared by chapters 1-3
EXPERIMENT = (*DATA, ENSEMBLE, ENSEMBLE_LOSS, EPOCHS, MAX_TRAIN, PRETRAINED, EPS, ATTACK_STEPS, N_PROBE)


def check_setting(P: ChapterParams) -> None:
    """Relations between the shared parameters that need no data."""
    if P.dataset == "mnist5k" and P.data_root is not None:
        fail("data_root", P.data_root, "None for dataset='mnist5k' (the embedded sample needs no files)")
    if P.dataset == "imagefolder" and P.data_root is None:
        fail("data_root", None, "dataset='imagefolder' needs data_root, a folder with one sub-folder "
             "of images per class (optionally inside train/ and test/)")
    pretrained = P.get("pretrained", False)
    if "pretrained" not in P and MODELS[P.model].torchvision:
        fail("model", P.model, "a model this chapter trains from scratch (not a torchvision ImageNet model)")
    if pretrained and not MODELS[P.model].torchvision:
        fail("pretrained", pretrained, f"False for model={P.model!r}: only {', '.join(TORCHVISION_MODELS)} have weights")
    if "ensemble" in P and P.model in P.ensemble:
        fail("ensemble", P.ensemble, "the other members, without model (it is always a member)")
    if "heldout" in P and (P.heldout == P.model or P.heldout in P.get("ensemble", ())):
        fail("heldout", P.heldout, "an architecture that is not an ensemble member (model or ensemble)")


def check_layers(name: str, layers: Sequence[str] | None, model: str) -> None:
    """Each named layer must be one of ``model``'s analysed layers."""
    for i, layer in enumerate(layers or ()):
        check_layer(f"{name}[{i}]" if not isinstance(layers, str) else name, layer, model)


# ----------------------------------------------------------------------------- setup

@dataclass(frozen=True)
class Setup:
    """What a chapter's ``setup`` derives from its validated parameters ``P`` (which stay as given):
    the data, the class affinity ``A``, the analysed ``layers`` and one :class:`Experiment` per seed."""

    P: ChapterParams
    bundle: DatasetBundle
    experiments: dict[int, Experiment]
    A: torch.Tensor | None = None
    layers: tuple[str, ...] = ()
    #: the seconds the study spent on each seed (``"0"``, ``"1"``, ...) and on work of its own (e.g.
    #: ``"selection seed 3"``), as :func:`timed`, :func:`each_seed` and :func:`over_seeds` measure them
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def seeds(self) -> list[int]:
        return list(self.experiments)

    @property
    def first(self) -> Experiment:
        """The first seed's experiment (galleries and controls run on it)."""
        return self.experiments[self.seeds[0]]

    @property
    def classes(self) -> tuple[str, ...]:
        return self.bundle.classes


def load(P: ChapterParams) -> DatasetBundle:
    """Load the chapter's data, check what depends on it (sizes, image shapes) and seed every
    generator with the first seed."""
    b = cached_bundle(P.dataset, P.data_root, P.image_size)
    pretrained = P.get("pretrained", False)
    check_fits("model", P.model, b.input_shape, pretrained)
    for i, m in enumerate(P.get("ensemble", ())):
        check_fits(f"ensemble[{i}]", m, b.input_shape, pretrained)
    if P.get("heldout") is not None:
        check_fits("heldout", P.heldout, b.input_shape, pretrained)
    if "n_probe" in P:
        integer("n_probe", None, 1, len(b.test), "").validate(P.n_probe)  # type: ignore[arg-type]
    if P.get("max_train") is not None:
        integer("max_train", None, 1, len(b.train), "").validate(P.max_train)  # type: ignore[arg-type]
    if "n_reference" in P:
        integer("n_reference", None, 10, len(b.train), "").validate(P.n_reference)  # type: ignore[arg-type]
    seed_everything(seed_list(P)[0])
    return b


def setup(P: ChapterParams, *, with_affinity: bool = False, layers: str | None = None,
          **changes: Any) -> Setup:
    """:func:`load`, then the class affinity (``with_affinity``, from ``P.affinity`` when declared),
    the layers (``P.layers`` when given, else ``model``'s ``layers`` = ``"deepest"`` | ``"all"``
    analysed layers) and one experiment per seed (``changes`` override its fields, e.g. ``eps``)."""
    bundle = load(P)
    A = affinity.for_dataset(bundle, P.get("affinity", "auto")) if with_affinity else None
    chosen = tuple(P.get("layers") or analysed_layers(P.model, layers)) if layers else ()
    experiments = {s: Experiment.from_params(P, seed=s, **changes) for s in seed_list(P)}
    return Setup(P, bundle, experiments, A, chosen)


def seed_list(P: ChapterParams) -> list[int]:
    """The chapter's seeds: ``seeds``, or ``[seed]`` for a one-seed chapter."""
    return list(P["seeds"]) if "seeds" in P else [P["seed"]]


@contextmanager
def timed(setup: Setup, label: str | int) -> Iterator[None]:
    """Add the seconds the block takes to ``setup.seconds[str(label)]`` (a seed, or a named piece of
    work): the per-seed cost a recorded tier reports (including the models a seed trains on first use)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        key = str(label)
        setup.seconds[key] = setup.seconds.get(key, 0.0) + time.perf_counter() - start


def each_seed(setup: Setup, desc: str = "seeds") -> Iterator[tuple[int, Experiment]]:
    """``(seed, experiment)`` for every seed of the chapter, with a progress bar; the loop body's
    seconds are added to the seed's (:func:`timed`)."""
    for s in progress.bar(setup.seeds, desc=desc, min_total=2):
        with timed(setup, s):
            yield s, setup.experiments[s]


def over_seeds(setup: Setup, fn: Callable[[int, Experiment], T], desc: str = "seeds") -> dict[int, T]:
    """``{seed: fn(seed, experiment)}`` for every seed of the chapter (:func:`each_seed`: a progress
    bar, each seed's seconds)."""
    return {s: fn(s, exp) for s, exp in each_seed(setup, desc)}


@dataclass
class Experiment:
    """One seed of the chapter-1 setting (built by :meth:`from_params`; ``ensemble`` lists the members
    other than ``model``; ``heldout`` None: no held-out network)."""

    dataset: str
    model: str
    ensemble: tuple[str, ...]
    heldout: str | None
    eps: float
    attack_steps: int
    n_probe: int
    seed: int
    data_root: str | None
    image_size: int | None
    epochs: int | None
    max_train: int | None
    pretrained: bool
    device: str
    ensemble_loss: str
    _models: dict[Any, TrainedModel] = field(default_factory=dict, repr=False)

    @classmethod
    def from_params(cls, P: Mapping[str, Any], seed: int | None = None, **changes: Any) -> Experiment:
        """Build from a chapter's validated parameters; a field the chapter does not declare takes its
        declared default (an absent ``ensemble`` or ``heldout`` means none)."""
        defaults = {p.name: p.default for p in (*EXPERIMENT, HELDOUT, DEVICE)}
        names = [f for f in cls.__dataclass_fields__ if not f.startswith("_")]
        kw = {n: P[n] if n in P else defaults.get(n) for n in names if n != "seed"}
        kw["ensemble"] = tuple(P.get("ensemble", ()))
        kw["heldout"] = P.get("heldout")
        kw["seed"] = seed if seed is not None else seed_list(P)[0]  # type: ignore[arg-type]
        kw.update(changes)
        return cls(**kw)

    @property
    def bundle(self) -> DatasetBundle:
        return cached_bundle(self.dataset, self.data_root, self.image_size)

    def trained(self, name: str, objective: Objective | None = None, *,
                stop_at_train_acc: float | None = None) -> TrainedModel:
        """The network ``name`` of this setting, trained with ``objective`` (default: standard
        cross-entropy) once, then cached; ``stop_at_train_acc``: training stops once the training
        accuracy reaches it (chapter 6's classifier, kept short of convergence). Adversarially trained
        variants start from scratch with the same recipe and seed."""
        key = (name, objective, stop_at_train_acc)
        if key not in self._models:
            if objective is not None and self.pretrained:
                raise ValueError("pretrained=True is not allowed with a training objective: pretrained "
                                 "ImageNet models are used as they are")
            stop = {} if stop_at_train_acc is None else {"stop_at_train_acc": stop_at_train_acc}
            self._models[key] = recipes.standard_model(
                self.dataset, name, self.seed, data_root=self.data_root, image_size=self.image_size,
                device=self.device, pretrained=self.pretrained, epochs=self.epochs, max_train=self.max_train,
                objective=objective, **stop)
        return self._models[key]

    def finetuned(self, name: str, objective: Objective, epochs: int, *, schedule: str | None = None,
                  lr: float | None = None, snapshots: bool = False) -> TrainedModel:
        """The network ``name`` of this setting fine-tuned for ``epochs`` epochs with ``objective`` (the
        recipe's learning rate and schedule unless ``lr`` / ``schedule`` are given; ``snapshots``: keep
        every epoch's weights), starting from its standard (cross-entropy) weights, then cached."""
        key = (name, objective, epochs, schedule, lr, snapshots, "finetuned")
        if key not in self._models:
            start = self.trained(name)
            self._models[key] = recipes.standard_model(
                self.dataset, name, self.seed, data_root=self.data_root, image_size=self.image_size,
                device=self.device, epochs=epochs, max_train=self.max_train, objective=objective,
                init_from=start.key, schedule=schedule, lr=lr, snapshots=snapshots or None,
                desc=f"{name} fine-tuned (seed {self.seed})")
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

    def held(self) -> TrainedModel:
        """The held-out network (never attacked)."""
        if self.heldout is None:
            fail("heldout", None, "a held-out architecture (this chapter needs one)")
        return self.trained(self.heldout)  # type: ignore[arg-type]

    @cached_property
    def probe_index(self) -> torch.Tensor:
        return probe_indices(self.bundle.test, self.n_probe, self.seed)

    def probes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The clean probe images and their labels."""
        return take(self.bundle.test, self.probe_index)

    def attacked(self, attack: str) -> dict[str, TrainedModel]:
        """The networks ``attack`` is made against: every member for a multi-model attack (the
        ensemble), else ``model`` alone (the ``"noise"`` control uses none, but is keyed by it)."""
        return self.members() if linf.ATTACKS[attack].multi_model else {self.model: self.trained(self.model)}

    def adversarial(self, attack: str) -> AdversarialSet:
        """The adversarial version of the probe set: ``"ensemble"`` attacks all members (Dong et
        al.'s adversarial dataset); ``"fgsm"``, ``"illc"``, ``"pgd"`` attack ``model`` alone;
        ``"noise"`` is the random-sign control of the same budget (it uses no model). The ensemble's
        loss is ``ensemble_loss`` (:data:`ENSEMBLE_ATTACK`)."""
        attacked = list(self.attacked(attack).values())
        name = ENSEMBLE_ATTACK[self.ensemble_loss] if attack == "ensemble" else attack
        return cached_adversarial_set(name, attacked, self.bundle, self.probe_index, eps=self.eps,
                                      steps=self.attack_steps, seed=self.seed, device=self.device)

    def reference(self, n_reference: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n_reference`` real training images (class-balanced) for class means, neighbours and
        concepts."""
        idx = probe_indices(self.bundle.train, min(n_reference, len(self.bundle.train)), self.seed)  # type: ignore[arg-type]
        return take(self.bundle.train, idx)

    def target_labels(self, adv: AdversarialSet, model: torch.nn.Module | None = None) -> torch.Tensor:
        """The label an adversarial image is meant to carry: the attack's target (ensemble y*,
        ILLC's least-likely class) or, for untargeted FGSM / PGD, ``model``'s prediction."""
        if adv.targeted:
            return adv.target
        return predict(model if model is not None else self.net, adv.x_adv)
