"""The core helpers: eval mode restored exactly, batching, random streams left as found."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from advinterp.core._helpers import chunks, eval_mode, model_device
from advinterp.core.devices import seeded_rng
from advinterp.interpret.error_detection import ErrorDetector


def _mixed() -> nn.Sequential:
    net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.BatchNorm1d(4))
    net.train()
    net[2].eval()  # a frozen batch norm inside a model in training mode
    return net


def test_eval_mode_restores_every_submodule_exactly_also_on_error():
    net = _mixed()
    before = [m.training for m in net.modules()]
    with eval_mode(net):
        assert not any(m.training for m in net.modules())
    assert [m.training for m in net.modules()] == before
    with pytest.raises(RuntimeError), eval_mode(net):
        raise RuntimeError("boom")
    assert [m.training for m in net.modules()] == before


def test_chunks_cover_the_range_and_refuse_a_bad_size():
    assert [(s.start, s.stop) for s in chunks(7, 3)] == [(0, 3), (3, 6), (6, 7)]
    assert list(chunks(0, 3)) == []
    with pytest.raises(ValueError, match="batch_size=0"):
        list(chunks(5, 0))
    assert model_device(nn.Linear(2, 2)) == torch.device("cpu") and model_device(nn.ReLU()).type == "cpu"


def test_seeded_rng_is_deterministic_and_leaves_the_callers_stream_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with seeded_rng(7):
        a = torch.rand(2)
    after = torch.rand(3)
    with seeded_rng(7):
        b = torch.rand(2)
    assert torch.equal(a, b) and torch.equal(after, expected)


def test_library_randomness_does_not_touch_the_global_streams():
    """The error detector draws its initialisation and dropout inside seeded_rng: the caller's torch
    and NumPy streams continue as if nothing happened, and two fits agree."""
    g = torch.Generator().manual_seed(0)
    f, wrong = torch.rand(40, 3, generator=g), torch.rand(40, generator=g) > 0.5
    torch.manual_seed(5)
    np.random.seed(5)
    expected_t, expected_n = torch.rand(2), np.random.rand(2)
    torch.manual_seed(5)
    np.random.seed(5)
    p1 = ErrorDetector(epochs=2, seed=1).fit(f, wrong).predict_proba(f)
    p2 = ErrorDetector(epochs=2, seed=1).fit(f, wrong).predict_proba(f)
    assert torch.equal(p1, p2)
    assert torch.equal(torch.rand(2), expected_t) and np.array_equal(np.random.rand(2), expected_n)


def test_describe_machine_names_the_cpu_its_cores_and_torch():
    import os

    import torch

    from advinterp.core.devices import cpu_model, describe_machine

    text = describe_machine()
    assert cpu_model() and cpu_model() in text
    assert f"{os.cpu_count()} CPU cores" in text and f"torch {torch.__version__}" in text
