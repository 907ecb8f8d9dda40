"""Loaders, including torchvision's MNIST / CIFAR-10 paths, tested on files generated here."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from advinterp.data import datasets as data
from advinterp.data.probes import probe_indices


def test_mnist5k_split_is_deterministic_balanced_and_in_range(mnist5k):
    assert len(mnist5k.train) == 4000 and len(mnist5k.test) == 1000
    for split, per_class in ((mnist5k.train, 400), (mnist5k.test, 100)):
        assert torch.bincount(split.labels, minlength=10).tolist() == [per_class] * 10
    again = data.load_dataset("mnist5k")
    assert torch.equal(again.train.images, mnist5k.train.images)
    x, _ = mnist5k.test.batch(torch.arange(50))
    assert x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1 and x.shape[1:] == (1, 28, 28)
    # no image is in both splits
    tr = {bytes(im.numpy().tobytes()) for im in mnist5k.train.images}
    assert not any(bytes(im.numpy().tobytes()) in tr for im in mnist5k.test.images)


def _write_idx(path: Path, array: np.ndarray) -> None:
    dims = array.shape
    code = 0x08  # unsigned byte
    header = bytes([0, 0, code, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_mnist_loader_reads_torchvision_layout(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 12)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    b = data.load_dataset("mnist", str(tmp_path), download=False)
    assert (len(b.train), len(b.test), b.num_classes, b.input_shape) == (30, 12, 10, (1, 28, 28))
    x, y = b.test.batch(torch.arange(12))
    assert y.tolist() == [i % 10 for i in range(12)] and 0 <= float(x.min()) and float(x.max()) <= 1


def test_absent_mnist_offline_says_where_and_how(tmp_path):
    with pytest.raises(data.DatasetUnavailable, match=r"MNIST is not in .*MNIST/raw.*train-images-idx3-ubyte"):
        data.load_dataset("mnist", str(tmp_path), download=False)


def test_cifar10_loader_reads_torchvision_layout(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in [*((f"data_batch_{i}", 4) for i in range(1, 6)), ("test_batch", 6)]:
        entry = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": list(range(n))}
        (folder / name).write_bytes(pickle.dumps(entry))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": list(data.CIFAR10_CLASSES)}))
    # generated files cannot match the official MD5 sums; everything after the check is real
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)
    b = data.load_dataset("cifar10", str(tmp_path), download=False)
    assert (len(b.train), len(b.test), b.input_shape, b.classes) == (20, 6, (3, 32, 32), data.CIFAR10_CLASSES)
    x, y = b.train.batch(torch.arange(4))
    assert x.shape == (4, 3, 32, 32) and y.tolist() == [0, 1, 2, 3]


def test_absent_cifar10_offline_says_where_and_how(tmp_path):
    with pytest.raises(data.DatasetUnavailable, match="CIFAR-10 is not in .*cifar-10-batches-py"):
        data.load_dataset("cifar10", str(tmp_path), download=False)


def _image_tree(root: Path, classes: list[str], per_class: int, size: int = 12) -> None:
    rng = np.random.default_rng(1)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / c / f"{i}.png")


def test_imagefolder_with_train_and_test(tmp_path, tmp_cache):
    _image_tree(tmp_path / "train", ["n02084071", "n02121808"], 5)
    _image_tree(tmp_path / "test", ["n02084071", "n02121808"], 2)
    b = data.load_dataset("imagefolder", str(tmp_path))
    assert (len(b.train), len(b.test), b.input_shape) == (10, 4, (3, 12, 12))
    assert b.class_ids == ("n02084071", "n02121808")
    x, y = data.take(b.test, [0, 3])
    assert x.shape == (2, 3, 12, 12) and y.tolist() == [0, 1] and float(x.max()) <= 1


def test_imagefolder_single_tree_is_split_and_resized(tmp_path, tmp_cache):
    _image_tree(tmp_path, ["a", "b", "c"], 10, size=20)
    b = data.load_dataset("imagefolder", str(tmp_path), image_size=16)
    assert len(b.train) + len(b.test) == 30 and len(b.test) == 6
    assert b.input_shape == (3, 16, 16)
    assert torch.bincount(data.labels_of(b.test)).tolist() == [2, 2, 2]


@pytest.mark.parametrize("root,match", [(None, "data_root=None is not allowed"),
                                        ("/no/such/folder", "data_root='/no/such/folder' is not allowed")])
def test_imagefolder_needs_an_existing_root(root, match):
    with pytest.raises(ValueError, match=match):
        data.load_dataset("imagefolder", root)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="dataset='nope' is not allowed"):
        data.load_dataset("nope")


def test_probe_indices_balanced_and_deterministic(mnist5k):
    a = probe_indices(mnist5k.test, 50, 3)
    assert torch.equal(a, probe_indices(mnist5k.test, 50, 3))
    assert torch.bincount(mnist5k.test.labels[a], minlength=10).tolist() == [5] * 10
    assert not torch.equal(a, probe_indices(mnist5k.test, 50, 4))
    with pytest.raises(ValueError, match="n_probe=1001"):
        probe_indices(mnist5k.test, 1001, 0)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))])
def test_resident_batches_equal_host_batches(device):
    """Training on a GPU holds the uint8 training set on the device; its batches (and their order
    under the same generator) are those of the host path."""
    from advinterp.data.datasets import TensorImageDataset, batches

    g = torch.Generator().manual_seed(0)
    ds = TensorImageDataset(torch.randint(0, 256, (37, 3, 8, 8), generator=g, dtype=torch.uint8),
                            torch.randint(0, 10, (37,), generator=g))
    dev = torch.device(device)
    host = list(batches(ds, 8, shuffle=True, generator=torch.Generator().manual_seed(1)))
    held = list(batches(ds, 8, shuffle=True, generator=torch.Generator().manual_seed(1), device=dev))
    assert len(host) == len(held) == 5
    for (xh, yh), (xd, yd) in zip(host, held):
        assert xd.device.type == dev.type and torch.equal(xh, xd.cpu()) and torch.equal(yh, yd.cpu())
    assert ds.resident(dev) is ds.resident(dev)  # copied once


def test_a_records_data_is_told_apart_by_the_digest_of_its_listing(tmp_path):
    """The provenance of a recorded tier names its images by the SHA-256 of their listing (paths and
    sizes): the same tree gives the same digest wherever it lies, a changed or added file another."""
    def tree(root, extra=b""):
        for split, label, name in (("train", "cat", "0.jpg"), ("train", "dog", "1.jpg"), ("test", "cat", "2.jpg")):
            (root / split / label).mkdir(parents=True, exist_ok=True)
            (root / split / label / name).write_bytes(b"x" * 10 + (extra if name == "2.jpg" else b""))
        return data.tree_digest(root)

    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert a["files"] == 3 and a["sha256"] == b["sha256"] and len(a["sha256"]) == 64 and a["root"] != b["root"]
    assert tree(tmp_path / "c", extra=b"y")["sha256"] != a["sha256"]
    (tmp_path / "b" / "test" / "cat" / "3.jpg").write_bytes(b"x")
    assert data.tree_digest(tmp_path / "b")["sha256"] != a["sha256"]
    with pytest.raises(ValueError, match="data_root="):
        data.tree_digest(tmp_path / "missing")
