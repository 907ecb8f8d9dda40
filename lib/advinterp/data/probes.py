"""Probe sets: the deterministic, class-balanced test images that chapters attack and dissect."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ..core.validation import fail
from .datasets import labels_of


def probe_indices(dataset: Dataset, n: int, seed: int, *, stratified: bool = True) -> torch.Tensor:
    """``n`` deterministic test-set indices, balanced over classes when ``stratified``.

    Probe sets are what chapters attack and dissect; the same ``(n, seed)`` gives the same set.
    """
    total = len(dataset)  # type: ignore[arg-type]
    if not 1 <= n <= total:
        fail("n_probe", n, f"an integer in [1, {total}] (the size of the test split)")
    rng = np.random.default_rng(seed)
    if not stratified:
        return torch.from_numpy(np.sort(rng.choice(total, n, replace=False)))
    lab = labels_of(dataset).numpy()
    classes = np.unique(lab)
    per_class = [rng.permutation(np.flatnonzero(lab == c)) for c in classes]
    # round-robin over classes keeps the set balanced for any n
    order = [int(idx[i]) for i in range(max(map(len, per_class))) for idx in per_class if i < len(idx)]
    return torch.tensor(sorted(order[:n]))
