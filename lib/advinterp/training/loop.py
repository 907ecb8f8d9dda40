"""The one training loop: loss hooks, caching, resumption, progress bars.

:func:`train` trains ``config.model`` on ``config.dataset`` with a loss hook
(:mod:`advinterp.training.objectives`) and caches the result under a key of everything that
determines the weights: the :class:`TrainConfig`, the objective's ``describe()``, the dataset's
identity and a digest of the training code (:func:`training_code_version`). The device is not
part of the key: a model trained on a GPU is reused on a CPU.

* **Atomic and verified**: weights are saved with :func:`advinterp.core.cache.atomic_save` and
  loaded with ``weights_only=True`` after a checksum check; a corrupt file is retrained. The
  weights are written before ``meta.json``, so a model counts as cached only once both exist.
* **Once across processes**: loading and training a model hold its cache entry's lock
  (:func:`advinterp.core.cache.exclusive`); a second process that wants the same model waits, then loads it.
* **Resumable**: after every epoch a checkpoint (weights, optimiser state, history) is saved;
  an interrupted run resumes from the last complete epoch. Every epoch seeds its own random
  streams (shuffling, random starts, dropout) from ``(seed, epoch)``, so a resumed run ends with
  the same weights as an uninterrupted one on CPU. Training runs inside
  :func:`advinterp.core.devices.seeded_rng`, so it never disturbs the caller's random stream.
* **Fine-tuning** (``init_from``): training starts from the weights of another cached model of
  the same architecture, named by its key (part of this model's key).
* **End-of-epoch monitor**: an objective with a ``monitor(model, x, y)`` method (adversarial
  training: the accuracy under its own attack) is evaluated after every epoch, in eval mode, on a
  fixed subset of :data:`MONITOR_SIZE` training images; the history records it, so a chapter can
  say whether training has converged from numbers that are not running averages over the epoch.
* **Early stop on training accuracy** (``stop_at_train_acc``): Wu et al.'s detector learns
  from the classifier's training-set errors, so chapter 6 deliberately stops short of convergence.
  Every ``stop_check_every`` steps the accuracy (eval mode) is estimated on a fixed subset of
  ``stop_check_size`` training images; only when the estimate reaches the target is the whole
  training set evaluated, and training stops when *that* accuracy reaches it. (Evaluating all
  50,000 CIFAR-10 images every few steps made an H100 epoch six times slower.)
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core import cache, paths
from ..core.devices import derive_seed, generator, resolve_device, seeded_rng
from ..core.params import integer
from ..core.progress import bar as tqdm
from ..core.validation import check_bool, check_choice, check_int, check_number, fail
from ..data import datasets as data
from ..data.probes import probe_indices
from ..models import architectures as models
from ..models.predict import accuracy
from . import objectives

OPTIMIZERS = ("adam", "sgd")
#: training images an objective's end-of-epoch monitor is evaluated on
MONITOR_SIZE = 1000
SCHEDULES = ("constant", "cosine")

EPOCHS = integer("epochs", None, 1, 10_000, "None: the dataset's recipe in advinterp.training.recipes.RECIPES",
                 optional=True)
MAX_TRAIN = integer("max_train", None, 1, None, "train on this many training images only (None: all)", optional=True)
SEED = integer("seed", 0, 0, 2**31 - 1, "seeds model initialisation, probe choice, targets, random starts")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model, apart from the objective."""

    dataset: str = "mnist5k"
    data_root: str | None = None
    image_size: int | None = None
    model: str = "small_cnn"
    epochs: int = 4
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    augment: bool = False
    max_train: int | None = None
    stop_at_train_acc: float | None = None
    stop_check_every: int = 5
    stop_check_size: int = 1024
    seed: int = 0
    amp: bool = False
    channels_last: bool = False
    #: the cache key of a trained model of the same architecture to start from (fine-tuning)
    init_from: str | None = None
    #: keep the weights after every epoch (``epoch-NNN.pt`` beside the model; :meth:`TrainedModel.snapshot`)
    snapshots: bool = False

    def validate(self) -> "TrainConfig":
        check_choice("dataset", self.dataset, data.DATASETS)
        check_choice("model", self.model, models.MODELS)
        EPOCHS.validate(self.epochs)
        check_int("batch_size", self.batch_size, 1, 1 << 16)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_number("lr", self.lr, 0.0, 10.0, lo_open=True)
        check_number("momentum", self.momentum, 0.0, 1.0, hi_open=True)
        check_number("weight_decay", self.weight_decay, 0.0, 1.0)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_bool("augment", self.augment)
        MAX_TRAIN.validate(self.max_train)
        if self.stop_at_train_acc is not None:
            check_number("stop_at_train_acc", self.stop_at_train_acc, 0.0, 1.0, lo_open=True)
        check_int("stop_check_every", self.stop_check_every, 1)
        check_int("stop_check_size", self.stop_check_size, 1)
        SEED.validate(self.seed)
        check_bool("amp", self.amp)
        check_bool("channels_last", self.channels_last)
        check_bool("snapshots", self.snapshots)
        return self


@dataclass
class TrainedModel:
    """A trained (or loaded) model and what is known about its training."""

    model: nn.Module
    config: TrainConfig
    objective: dict[str, Any]
    key: str
    history: list[dict[str, float]] = field(default_factory=list)
    from_cache: bool = False

    @property
    def epoch_seconds(self) -> float:
        """Mean wall time of a training epoch, as measured when the model was trained."""
        times = [h["seconds"] for h in self.history]
        return sum(times) / len(times) if times else float("nan")

    @property
    def final_train_acc(self) -> float:
        return self.history[-1]["train_acc"] if self.history else float("nan")

    def snapshot(self, epoch: int) -> nn.Module:
        """The model as it was after ``epoch`` (1-based) epochs, in eval mode (trained with
        ``snapshots=True``; the last epoch is the model itself)."""
        if not self.config.snapshots:
            fail("snapshots", False, "True in the training config to keep the weights of every epoch")
        check_int("epoch", epoch, 1, len(self.history))
        state = cache.verified_load(snapshot_path(self.config, self.key, epoch),
                                    map_location=next(self.model.parameters()).device)
        if state is None:
            fail("epoch", epoch, f"an epoch whose weights were kept ({snapshot_path(self.config, self.key, epoch)} is missing)")
        model = build_for(self.config).to(next(self.model.parameters()).device)
        model.load_state_dict(state)
        return model.eval()


def training_code_version() -> str:
    """Digest of the code that determines every trained model's weights (data, models, the base
    objectives, this loop); editing any of them invalidates every cached model. Code that only
    some objectives use (attacks, regularisers) enters through the objective's ``describe()``."""
    return cache.code_version(data, models, objectives, sys.modules[__name__])


def snapshot_path(config: TrainConfig, key: str, epoch: int) -> Path:
    """Where the weights after ``epoch`` (1-based) of a model trained with ``snapshots=True`` are kept."""
    return paths.cache_dir() / "models" / f"{config.model}-{key}" / f"epoch-{epoch:03d}.pt"


def bundle_for(config: TrainConfig) -> data.DatasetBundle:
    return data.cached_bundle(config.dataset, config.data_root, config.image_size)


def model_key(config: TrainConfig, objective: objectives.Objective) -> str:
    """The cache key of the model ``train(config, objective)`` produces."""
    bundle = bundle_for(config)
    return cache.key_of({"config": asdict(config), "objective": objective.describe(),
                         "data": bundle.identity(), "code": training_code_version()})


def model_dir(config: TrainConfig, objective: objectives.Objective) -> Path:
    return paths.cache_dir() / "models" / f"{config.model}-{model_key(config, objective)}"


def build_for(config: TrainConfig) -> nn.Sequential:
    """An untrained model of ``config.model`` shaped for ``config.dataset``."""
    b = bundle_for(config)
    return models.build_model(config.model, b.input_shape, b.num_classes, b.mean, b.std)


def _learning_rate(config: TrainConfig, epoch: int) -> float:
    if config.schedule == "cosine":
        return config.lr * 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))
    return config.lr


def _optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay, nesterov=config.momentum > 0)


def augment_batch(x: torch.Tensor, g: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop with ``pad`` pixels of zero padding and random horizontal flip (CIFAR standard)."""
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (pad, pad, pad, pad))
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=g)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=g)
    rows = (dy.view(n, 1) + torch.arange(h).view(1, h)).to(x.device)
    cols = (dx.view(n, 1) + torch.arange(w).view(1, w)).to(x.device)
    out = padded[torch.arange(n, device=x.device).view(n, 1, 1, 1), torch.arange(x.shape[1], device=x.device)
                 .view(1, -1, 1, 1), rows.view(n, 1, h, 1), cols.view(n, 1, 1, w)]
    flip = (torch.rand(n, generator=g) < 0.5).to(x.device)
    return torch.where(flip.view(n, 1, 1, 1), out.flip(3), out)


def train(
    config: TrainConfig,
    objective: objectives.Objective | None = None,
    *,
    device: str | torch.device = "auto",
    use_cache: bool = True,
    progress: bool = True,
    desc: str | None = None,
) -> TrainedModel:
    """Train (or load from the cache) ``config.model`` with loss hook ``objective`` (default
    :class:`~advinterp.training.objectives.CrossEntropy`). See the module docstring for the guarantees."""
    config.validate()
    objective = objective or objectives.CrossEntropy()
    if not use_cache:
        return _train(config, objective, resolve_device(device), None, progress, desc)
    folder = model_dir(config, objective)
    with cache.exclusive(folder):  # another process training this model: wait for it, then load
        return _train(config, objective, resolve_device(device), folder, progress, desc)


def _train(config: TrainConfig, objective: objectives.Objective, dev: torch.device, folder: Path | None,
           progress: bool, desc: str | None) -> TrainedModel:
    """:func:`train`'s body: load ``folder``'s model, or train (resuming from its checkpoint) and save
    it there; ``folder`` None: train without the cache."""
    use_cache = folder is not None
    key = model_key(config, objective)
    folder = folder or model_dir(config, objective)
    final, meta_path, ckpt = folder / "model.pt", folder / "meta.json", folder / "checkpoint.pt"
    if use_cache:
        loaded = _load_final(config, objective, key, final, meta_path, dev)
        if loaded is not None:
            return loaded

    bundle = bundle_for(config)
    with seeded_rng(derive_seed(config.seed, "init"), dev):
        model = build_for(config).to(dev)
    if config.init_from is not None:
        start = cache.verified_load(paths.cache_dir() / "models" / f"{config.model}-{config.init_from}" / "model.pt",
                                    map_location=dev)
        if start is None:
            fail("init_from", config.init_from, f"the cache key of a trained {config.model} in {paths.cache_dir()} "
                 "(train the starting model first)")
        model.load_state_dict(start)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = _optimizer(config, model)
    history: list[dict[str, float]] = []
    start_epoch = 0
    if use_cache:
        state = cache.verified_load(ckpt, map_location=dev)
        if state is not None:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            history = [dict(h) for h in json.loads(state["history"])]
            start_epoch = int(state["epoch"]) + 1

    train_idx = None
    if config.max_train is not None:
        n_train = len(bundle.train)  # type: ignore[arg-type]
        if config.max_train > n_train:
            fail("max_train", config.max_train, f"at most the training-set size {n_train}")
        train_idx = probe_indices(bundle.train, config.max_train, derive_seed(config.seed, "subset"))
    check_idx = _stop_check_indices(config, bundle, train_idx)
    stopped = bool(history) and bool(history[-1].get("stopped_early"))
    label = desc or f"{config.model} on {config.dataset}"
    epochs = tqdm(range(start_epoch, config.epochs), desc=label, disable=not progress or stopped,
                  initial=start_epoch, total=config.epochs)
    scaler = torch.amp.GradScaler(dev.type, enabled=config.amp and dev.type == "cuda")
    for epoch in epochs:
        if stopped:
            break
        with seeded_rng(derive_seed(config.seed, "epoch", epoch), dev):  # random starts, dropout, mutations...
            record = _run_epoch(model, opt, scaler, objective, bundle, config, epoch, dev, train_idx, check_idx,
                                progress)
            record.update(_monitor(model, objective, bundle, config, dev, train_idx))
        history.append(record)
        stopped = bool(record.get("stopped_early"))
        if use_cache and config.snapshots:
            cache.atomic_save({k: v.detach().contiguous() for k, v in model.state_dict().items()},
                              snapshot_path(config, key, epoch + 1))
        epochs.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['train_acc']:.3f}")
        if use_cache and epoch + 1 < config.epochs and not stopped:
            cache.atomic_save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                               "history": json.dumps(history)}, ckpt)
    model.eval()
    if use_cache:
        cache.atomic_save(model.state_dict(), final)
        meta = {"key": key, "config": asdict(config), "objective": objective.describe(), "history": history}
        cache.atomic_write_text(json.dumps(meta, indent=1, default=str), meta_path)
        cache.discard(ckpt)
    return TrainedModel(model, config, objective.describe(), key, history, from_cache=False)


def _run_epoch(model: nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
               objective: objectives.Objective, bundle: data.DatasetBundle, config: TrainConfig,
               epoch: int, dev: torch.device, train_idx: torch.Tensor | None, check_idx: torch.Tensor | None,
               progress: bool) -> dict[str, float]:
    g = generator(derive_seed(config.seed, "epoch", epoch))  # shuffling and augmentation
    for group in opt.param_groups:
        group["lr"] = _learning_rate(config, epoch)
    model.train()
    t0 = time.perf_counter()
    loss_sum = correct = seen = 0.0
    stats_sum: dict[str, float] = {}
    n = len(train_idx) if train_idx is not None else len(bundle.train)  # type: ignore[arg-type]
    bar = tqdm(total=math.ceil(n / config.batch_size), desc=f"epoch {epoch + 1}", leave=False, disable=not progress)
    stopped_at: float | None = None  # whole-training-set accuracy when early stopping fired
    # on a GPU the (uint8) training set is held on the device and batches are made and augmented
    # there: copying every batch from host memory, not the GPU, limited a CIFAR-10 epoch
    resident = dev if dev.type == "cuda" else None
    for step, (x, y) in enumerate(data.batches(bundle.train, config.batch_size, shuffle=True, generator=g,
                                               indices=train_idx, device=resident), start=1):
        if config.augment:
            x = augment_batch(x, g)
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        if config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, enabled=config.amp and dev.type == "cuda"):
            out = objective(model, x, y)
        loss_value = float(out.loss.detach())
        if not math.isfinite(loss_value):  # diverged: stop, rather than train (and cache) a broken model
            raise FloatingPointError(
                f"the training loss became {loss_value} at epoch {epoch + 1}, batch {step} "
                f"(objective {objective.describe()}, learning rate {opt.param_groups[0]['lr']:g}): lower the "
                "learning rate or the objective's weights")
        opt.zero_grad(set_to_none=True)
        scaler.scale(out.loss).backward()
        scaler.step(opt)
        scaler.update()
        loss_sum += loss_value * len(y)
        correct += float((out.logits.argmax(1) == y).sum())
        seen += len(y)
        for k, v in out.stats.items():
            stats_sum[k] = stats_sum.get(k, 0.0) + float(v) * len(y)
        bar.update(1)
        if config.stop_at_train_acc is not None and step % config.stop_check_every == 0:
            acc = _whole_set_accuracy(model, bundle, dev, config.stop_at_train_acc, train_idx, check_idx)
            if acc is not None and acc >= config.stop_at_train_acc:
                stopped_at = acc
                break
    bar.close()
    record = {"epoch": epoch, "loss": loss_sum / seen, "train_acc": correct / seen,
              "seconds": time.perf_counter() - t0, **{k: v / seen for k, v in stats_sum.items()}}
    if stopped_at is not None:
        record["stopped_early"] = 1.0
        record["train_acc"] = stopped_at
    return record


def _monitor(model: nn.Module, objective: objectives.Objective, bundle: data.DatasetBundle, config: TrainConfig,
             dev: torch.device, train_idx: torch.Tensor | None) -> dict[str, float]:
    """The objective's end-of-epoch ``monitor`` on :data:`MONITOR_SIZE` fixed training images (eval
    mode; the model's mode is restored); nothing for an objective without one."""
    monitor = getattr(objective, "monitor", None)
    if monitor is None:
        return {}
    pool = train_idx if train_idx is not None else torch.arange(len(bundle.train))  # type: ignore[arg-type]
    g = generator(derive_seed(config.seed, "monitor"))
    idx = pool[torch.randperm(len(pool), generator=g)[:MONITOR_SIZE]].sort().values
    x, y = data.take(bundle.train, idx)
    was_training = model.training
    model.eval()
    try:
        return {k: float(v) for k, v in monitor(model, x.to(dev), y.to(dev)).items()}
    finally:
        model.train(was_training)


def _stop_check_indices(config: TrainConfig, bundle: data.DatasetBundle,
                        train_idx: torch.Tensor | None) -> torch.Tensor | None:
    """The fixed training images whose accuracy decides when to look at the whole training set.

    ``None`` when early stopping is off or the training set is no larger than ``stop_check_size``
    (then the whole set is checked directly)."""
    if config.stop_at_train_acc is None:
        return None
    pool = train_idx if train_idx is not None else torch.arange(len(bundle.train))  # type: ignore[arg-type]
    if len(pool) <= config.stop_check_size:
        return None
    g = generator(derive_seed(config.seed, "stop-check"))
    return pool[torch.randperm(len(pool), generator=g)[:config.stop_check_size]].sort().values


def _whole_set_accuracy(model: nn.Module, bundle: data.DatasetBundle, dev: torch.device, target: float,
                        train_idx: torch.Tensor | None, check_idx: torch.Tensor | None) -> float | None:
    """The training accuracy (eval mode, whole training set), or ``None`` while the estimate on
    ``check_idx`` is still below ``target`` (then the whole set is not evaluated)."""
    if check_idx is not None and accuracy(model, bundle.train, indices=check_idx) < target:
        return None
    return accuracy(model, bundle.train, indices=train_idx)


def _load_final(config: TrainConfig, objective: objectives.Objective, key: str, final: Path, meta_path: Path,
                dev: torch.device) -> TrainedModel | None:
    """The cached model, or ``None`` when absent or unusable (then it is removed and retrained)."""
    if not meta_path.exists():
        cache.discard(final)  # weights without metadata: an interrupted save
        return None
    meta = json.loads(meta_path.read_text())
    state = cache.verified_load(final, map_location=dev) if meta.get("key") == key else None
    if state is None:
        meta_path.unlink(missing_ok=True)
        return None
    model = build_for(config).to(dev)
    model.load_state_dict(state)
    model.eval()
    return TrainedModel(model, config, objective.describe(), key, meta["history"], from_cache=True)
