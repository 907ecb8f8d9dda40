"""Shared fixtures. Unit tests that train use the book's recipes and the default cache
(``data/cache``), so they warm it for the chapters that run after them; tests about the cache
itself use a temporary ``ADVINTERP_CACHE``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TQDM_DISABLE", "1")

@pytest.fixture
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, empty cache for this test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("ADVINTERP_CACHE", str(folder))
    return folder


@pytest.fixture(scope="session")
def mnist5k():
    from advinterp.data.datasets import cached_bundle

    return cached_bundle("mnist5k", None, None)


@pytest.fixture(scope="session")
def zoo_models():
    """The four chapter-1 networks on the embedded default, seed 0 (cached in data/cache)."""
    from advinterp.training import recipes as zoo

    return {name: zoo.standard_model("mnist5k", name, 0, device="cpu", progress=False)
            for name in ("small_cnn", "wide_cnn", "mlp", "small_resnet")}


@pytest.fixture(scope="session")
def probes(mnist5k):
    """300 class-balanced test images and labels."""
    from advinterp.data.datasets import take
    from advinterp.data.probes import probe_indices

    idx = probe_indices(mnist5k.test, 300, 0)
    return take(mnist5k.test, idx)


@pytest.fixture
def no_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Point cache and results at empty folders and check afterwards that nothing was written."""
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("ADVINTERP_CACHE", str(cache_dir))
    yield tmp_path
    assert not cache_dir.exists() or not any(cache_dir.rglob("*")), "a failed run wrote to the cache"
