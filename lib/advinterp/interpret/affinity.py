"""Class-affinity matrices ``A`` for the neuron-consistency metric (Dong et al., version B).

``A[i, j]`` says how related classes i and j are; always symmetric, ``A_ii = 1`` and
``0 <= A_ij <= 1``. Dong et al. build it from WordNet distances; our reading is the path
similarity ``1 / (1 + shortest path length)`` between the classes' noun synsets (nltk's
``path_similarity``). ``A = I`` makes ``consis`` the plain purity ``sum_c p_c^2``.

* ``identity`` - MNIST digits have no WordNet meaning.
* ``cifar10``  - the stored WordNet 3.0 distances of ``data/affinity/cifar10_wordnet_path.json``.
* ``wordnet``  - computed with nltk for ImageNet wnid folder names (``n02084071`` ...), from
  nltk's own WordNet corpus or, offline, Debian's ``wordnet-base`` package.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core import paths
from ..core.params import choice
from ..core.validation import check_choice, fail
from ..data.datasets import CIFAR10_CLASSES, DatasetBundle

AFFINITIES = ("auto", "identity", "cifar10", "wordnet")
AFFINITY = choice("affinity", "auto", AFFINITIES, "class affinity A: auto | identity | cifar10 | wordnet")
WNID = re.compile(r"^n\d{8}$")
DEBIAN_WORDNET = Path("/usr/share/wordnet")
WORDNET_HINT = ("WordNet 3.0 is needed for ImageNet class affinities. Offline: `apt-get install wordnet-base` "
                "(Debian/Ubuntu; files in /usr/share/wordnet) or pass wordnet_root=<folder with data.noun, "
                "index.noun ...>; online: `python -c \"import nltk; nltk.download('wordnet')\"`.")


def check_affinity(A: torch.Tensor) -> torch.Tensor:
    """Assert the contract of an affinity matrix and return it."""
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"an affinity matrix must be square, got shape {tuple(A.shape)}")
    if not torch.allclose(A, A.T) or not torch.all(A.diagonal() == 1) or A.min() < 0 or A.max() > 1:
        raise ValueError("an affinity matrix must be symmetric with unit diagonal and entries in [0, 1]")
    return A


def identity(num_classes: int) -> torch.Tensor:
    return torch.eye(num_classes)


def path_similarity(distances: np.ndarray | Sequence[Sequence[float]]) -> torch.Tensor:
    """``A = 1 / (1 + d)`` from shortest-path lengths, symmetrised, diagonal forced to 1."""
    d = torch.as_tensor(np.asarray(distances, dtype=np.float64), dtype=torch.float32)
    A = 1.0 / (1.0 + d)
    A = 0.5 * (A + A.T)
    A.fill_diagonal_(1.0)
    return check_affinity(A)


@lru_cache(maxsize=1)
def _cifar10_record() -> dict[str, Any]:
    return json.loads(paths.package_data("affinity/cifar10_wordnet_path.json").read_text())


def cifar10() -> torch.Tensor:
    """The CIFAR-10 path-similarity matrix in class order airplane ... truck (cat-dog = 0.2)."""
    return path_similarity(_cifar10_record()["distances"])


def cifar10_synsets() -> list[str]:
    return list(_cifar10_record()["synsets"])


def _prepared_debian_root(source: Path) -> Path:
    """Debian's wordnet-base lacks ``lexnames``; nltk needs it, and refuses paths outside its data
    roots. Copy the database into the cache once and write ``lexnames`` from the package's own
    lexnames(5WN) manual page."""
    target = paths.cache_dir() / "wordnet-3.0"
    if (target / "lexnames").is_file() and (target / "data.noun").is_file():
        return target
    import gzip
    import shutil

    target.mkdir(parents=True, exist_ok=True)
    for f in source.iterdir():
        if f.is_file():
            shutil.copyfile(f, target / f.name)
    man = Path("/usr/share/man/man5/lexnames.5WN.gz")
    lines = []
    if man.is_file():
        category = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
        for line in gzip.open(man, "rt", errors="replace"):
            m = re.match(r"^(\d\d)\t(\S+)", line)
            if m:
                lines.append(f"{m.group(1)}\t{m.group(2)}\t{category[m.group(2).split('.')[0]]}")
    if len(lines) != 45:
        fail("wordnet_root", str(source), "a complete WordNet 3.0 folder (its lexnames file is missing). "
             + WORDNET_HINT)
    (target / "lexnames").write_text("\n".join(lines) + "\n")
    return target


def load_wordnet(wordnet_root: str | Path | None = None) -> Any:
    """An nltk WordNet reader: ``wordnet_root`` if given, else nltk's corpus, else Debian's.

    Raises ``FileNotFoundError`` with installation instructions when none is available.
    """
    import warnings

    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class _WordNet30(WordNetCorpusReader):  # type: ignore[misc]
        def map_wn(self, version: str = "wordnet") -> None:  # no cross-version (OMW) mapping needed
            return None

    candidates: list[Path] = []
    if wordnet_root is not None:
        candidates.append(Path(wordnet_root))
    else:
        try:
            return nltk.corpus.wordnet.ensure_loaded() or nltk.corpus.wordnet
        except LookupError:
            pass
        candidates.append(DEBIAN_WORDNET)
    for root in candidates:
        if (root / "data.noun").is_file():
            root = root if (root / "lexnames").is_file() else _prepared_debian_root(root)
            if str(root) not in nltk.data.path:
                nltk.data.path.append(str(root))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "multilingual functions are not available"
                return _WordNet30(str(root), None)
    raise FileNotFoundError(f"no WordNet database found (looked in {[str(c) for c in candidates]}). "
                            + WORDNET_HINT)


def wordnet_affinity(wnids: Sequence[str], wordnet_root: str | Path | None = None) -> torch.Tensor:
    """Path similarity between the noun synsets of ImageNet wnids (``n`` + 8-digit offset)."""
    bad = [w for w in wnids if not WNID.match(w)]
    if bad:
        fail("class folders", bad[:5], "ImageNet wnids such as 'n02084071' for WordNet affinity")
    wn = load_wordnet(wordnet_root)
    synsets = [wn.synset_from_pos_and_offset("n", int(w[1:])) for w in wnids]
    n = len(synsets)
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            dist = synsets[i].shortest_path_distance(synsets[j])
            d[i, j] = d[j, i] = np.inf if dist is None else dist
    return path_similarity(d)


def for_dataset(bundle: DatasetBundle, kind: str = "auto", wordnet_root: str | Path | None = None) -> torch.Tensor:
    """The affinity matrix of ``bundle``'s classes.

    ``auto``: identity for MNIST (digits have no WordNet meaning), the stored CIFAR-10 matrix for
    ``cifar10`` or an ImageFolder whose folders are the CIFAR-10 class names, WordNet for an
    ImageFolder of wnids; any other ImageFolder is a ``ValueError`` asking for an explicit choice.
    """
    check_choice("affinity", kind, AFFINITIES)
    ids = list(bundle.class_ids)
    if kind == "auto":
        if bundle.name in ("mnist5k", "mnist"):
            kind = "identity"
        elif tuple(ids) == CIFAR10_CLASSES:
            kind = "cifar10"
        elif ids and all(WNID.match(c) for c in ids):
            kind = "wordnet"
        else:
            fail("affinity", "auto", f"an explicit 'identity' for these class folders ({ids[:4]}...): they are "
                 "neither CIFAR-10 names nor ImageNet wnids")
    if kind == "identity":
        return identity(bundle.num_classes)
    if kind == "cifar10":
        if tuple(ids) != CIFAR10_CLASSES:
            fail("affinity", kind, f"'cifar10' only for the CIFAR-10 classes {CIFAR10_CLASSES}")
        return cifar10()
    return wordnet_affinity(ids, wordnet_root)
