"""The training loop: loss hook, cache reuse, corruption, resumption."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from advinterp.core import cache
from advinterp.training import loop as training
from advinterp.training import objectives
from advinterp.training.loop import TrainConfig

SMALL = TrainConfig(model="mlp", epochs=3, batch_size=64, max_train=512)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


@dataclasses.dataclass(frozen=True)
class CountingCE(objectives.CrossEntropy):
    """CE that counts its calls and can simulate an interruption at a given epoch."""

    stop_after_calls: int = -1

    def __call__(self, model, x, y):
        CountingCE.calls += 1
        if CountingCE.calls == self.stop_after_calls:
            raise KeyboardInterrupt("simulated interruption")
        return super().__call__(model, x, y)

    def describe(self):
        return {"objective": "ce"}  # same key as plain CE on purpose


CountingCE.calls = 0


def test_loss_hook_is_used_and_model_is_cached(tmp_cache):
    CountingCE.calls = 0
    first = training.train(SMALL, CountingCE(), device="cpu", progress=False)
    assert CountingCE.calls == 3 * 8 and not first.from_cache
    assert len(first.history) == 3 and all(h["seconds"] > 0 for h in first.history)
    again = training.train(SMALL, CountingCE(), device="cpu", progress=False)
    assert again.from_cache and CountingCE.calls == 24 and _same_weights(first.model, again.model)
    assert again.history == first.history


def test_training_is_deterministic_and_learns(tmp_cache):
    a = training.train(SMALL, device="cpu", progress=False, use_cache=False)
    b = training.train(SMALL, device="cpu", progress=False, use_cache=False)
    assert _same_weights(a.model, b.model)
    assert a.history[-1]["loss"] < a.history[0]["loss"]


def test_interrupted_run_resumes_from_last_epoch(tmp_cache, tmp_path, monkeypatch):
    reference = training.train(SMALL, device="cpu", progress=False, use_cache=False)
    CountingCE.calls = 0
    with pytest.raises(KeyboardInterrupt):  # dies in the third epoch (calls 17..24)
        training.train(SMALL, CountingCE(stop_after_calls=20), device="cpu", progress=False)
    folder = training.model_dir(SMALL, objectives.CrossEntropy())
    assert (folder / "checkpoint.pt").exists() and not (folder / "model.pt").exists()
    CountingCE.calls = 0
    resumed = training.train(SMALL, CountingCE(), device="cpu", progress=False)
    assert CountingCE.calls == 8, "only the unfinished epoch is redone"
    assert _same_weights(resumed.model, reference.model)
    assert not (folder / "checkpoint.pt").exists()


def test_tampered_model_is_retrained_not_loaded(tmp_cache):
    first = training.train(SMALL, device="cpu", progress=False)
    path = training.model_dir(SMALL, objectives.CrossEntropy()) / "model.pt"
    blob = bytearray(path.read_bytes())
    blob[-50] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.warns(cache.CorruptCacheWarning):
        again = training.train(SMALL, device="cpu", progress=False)
    assert not again.from_cache and _same_weights(first.model, again.model)


def test_truncated_model_is_retrained(tmp_cache):
    training.train(SMALL, device="cpu", progress=False)
    path = training.model_dir(SMALL, objectives.CrossEntropy()) / "model.pt"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(cache.CorruptCacheWarning):
        assert not training.train(SMALL, device="cpu", progress=False).from_cache


def test_bad_config_values():
    with pytest.raises(ValueError, match="epochs=0"):
        TrainConfig(epochs=0).validate()
    with pytest.raises(ValueError, match="optimizer='rmsprop'"):
        TrainConfig(optimizer="rmsprop").validate()
    with pytest.raises(ValueError, match="max_train=99999"):
        training.train(dataclasses.replace(SMALL, max_train=99999), device="cpu", progress=False, use_cache=False)


def test_early_stop_on_training_accuracy(tmp_cache):
    cfg = dataclasses.replace(SMALL, epochs=5, stop_at_train_acc=0.5, stop_check_every=2)
    tm = training.train(cfg, device="cpu", progress=False)
    assert tm.history[-1].get("stopped_early") == 1.0
    assert len(tm.history) < 5 and tm.final_train_acc >= 0.5


def test_early_stop_checks_a_subset_before_the_whole_training_set(tmp_cache, monkeypatch):
    calls: list[tuple[int, float]] = []
    real = training.accuracy

    def spy(model, dataset, labels=None, *, indices=None, batch_size=512):
        acc = real(model, dataset, labels, indices=indices, batch_size=batch_size)
        calls.append((len(indices) if indices is not None else len(dataset), acc))
        return acc

    monkeypatch.setattr(training, "accuracy", spy)
    cfg = dataclasses.replace(SMALL, epochs=5, stop_at_train_acc=0.6, stop_check_every=2, stop_check_size=100)
    tm = training.train(cfg, device="cpu", progress=False)
    assert tm.history[-1].get("stopped_early") == 1.0 and tm.final_train_acc >= 0.6
    sizes = [n for n, _ in calls]
    assert set(sizes) == {100, 512}
    # the whole training set is evaluated only right after the subset estimate reached the target
    for i, (n, _) in enumerate(calls):
        if n == 512 and calls[i - 1][0] == 100:
            assert calls[i - 1][1] >= 0.6
    assert sizes.count(512) < sizes.count(100)
    with pytest.raises(ValueError, match="stop_check_size=0"):
        dataclasses.replace(cfg, stop_check_size=0).validate()


def test_augmentation_keeps_shape_and_range():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 8, 8)
    out = training.augment_batch(x, g)
    assert out.shape == x.shape and 0 <= float(out.min()) and float(out.max()) <= 1


def test_snapshots_keep_every_epoch_and_the_last_is_the_model(tmp_cache):
    config = dataclasses.replace(SMALL, snapshots=True)
    tm = training.train(config, device="cpu", progress=False)
    first, last = tm.snapshot(1), tm.snapshot(3)
    assert _same_weights(last, tm.model) and not _same_weights(first, tm.model)
    assert _same_weights(training.train(config, device="cpu", progress=False).snapshot(1), first), "kept in the cache"
    with pytest.raises(ValueError, match="^epoch=4"):
        tm.snapshot(4)
    with pytest.raises(ValueError, match="^snapshots=False"):
        training.train(SMALL, device="cpu", progress=False).snapshot(1)


def test_an_objective_monitor_is_recorded_every_epoch(tmp_cache):
    from advinterp.training.adversarial import AdversarialObjective

    config = dataclasses.replace(SMALL, model="small_cnn", epochs=2)
    tm = training.train(config, AdversarialObjective(eps=0.1, steps=1), device="cpu", progress=False)
    assert all(0 <= h["adv_acc_end"] <= h["clean_acc_end"] + 0.05 <= 1.05 for h in tm.history)


@dataclasses.dataclass(frozen=True)
class DivergingCE(objectives.CrossEntropy):
    """CE whose loss becomes NaN from a given call on, like a regulariser that diverged."""

    nan_from_call: int = 3

    def __call__(self, model, x, y):
        DivergingCE.calls += 1
        out = super().__call__(model, x, y)
        return out if DivergingCE.calls < self.nan_from_call else dataclasses.replace(out, loss=out.loss * float("nan"))

    def describe(self):
        return {"objective": "diverging-ce"}


DivergingCE.calls = 0


def test_a_diverged_loss_stops_training_and_caches_nothing(tmp_cache):
    """A NaN loss (the sensitivity regulariser at MNIST's weights on CIFAR-10 reached it within the first
    epoch) stops training with the epoch, batch and remedy, instead of training on and caching a broken model."""
    DivergingCE.calls = 0
    with pytest.raises(FloatingPointError, match=r"loss became nan at epoch 1, batch 3 .*lower the learning rate"):
        training.train(SMALL, DivergingCE(), device="cpu", progress=False)
    assert not list(tmp_cache.rglob("model.pt")), "a diverged model must not be cached"
