"""A training run killed mid-way (SIGKILL) resumes from its last complete epoch and ends with the
same weights as an uninterrupted run; the cache never holds a partial file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from advinterp.core import cache
from advinterp.training import loop as training
from advinterp.training import objectives
from advinterp.training.loop import TrainConfig

CFG = TrainConfig(model="small_cnn", epochs=6, max_train=1500, batch_size=50)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_sigkilled_training_resumes_to_identical_weights(tmp_cache):
    folder = training.model_dir(CFG, objectives.CrossEntropy())
    script = textwrap.dedent("""
        from advinterp.training import loop as training
        from advinterp.training.loop import TrainConfig
        training.train(TrainConfig(model="small_cnn", epochs=6, max_train=1500, batch_size=50), device="cpu",
                       progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "ADVINTERP_CACHE": str(tmp_cache)})
    deadline = time.time() + 120
    while not (folder / "checkpoint.pt").exists():
        assert proc.poll() is None and time.time() < deadline, "training ended before writing a checkpoint"
        time.sleep(0.02)
    time.sleep(0.3)  # well inside a later epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (folder / "model.pt").exists(), "the run finished before it was killed; the test proves nothing"
    for path in tmp_cache.rglob("*.pt"):
        assert cache.verified_load(path) is not None, f"partial file in the cache: {path}"
    done = cache.verified_load(folder / "checkpoint.pt")["epoch"]
    resumed = training.train(CFG, device="cpu", progress=False)
    assert len(resumed.history) == CFG.epochs and resumed.history[0]["epoch"] == 0
    reference = training.train(CFG, device="cpu", progress=False, use_cache=False)
    assert _same(resumed.model, reference.model), f"resumed after epoch {done} but ended elsewhere"
    assert not (folder / "checkpoint.pt").exists()


def test_tampered_checkpoint_is_discarded_and_training_restarts(tmp_cache):
    cfg = TrainConfig(model="mlp", epochs=2, max_train=256)
    folder = training.model_dir(cfg, objectives.CrossEntropy())
    cache.atomic_save({"model": {}, "optimizer": {}, "epoch": 0, "history": "[]"}, folder / "checkpoint.pt")
    blob = bytearray((folder / "checkpoint.pt").read_bytes())
    blob[-20] ^= 0xFF
    (folder / "checkpoint.pt").write_bytes(bytes(blob))
    with pytest.warns(cache.CorruptCacheWarning):
        tm = training.train(cfg, device="cpu", progress=False)
    assert len(tm.history) == 2 and _same(tm.model, training.train(cfg, device="cpu", progress=False,
                                                                    use_cache=False).model)
