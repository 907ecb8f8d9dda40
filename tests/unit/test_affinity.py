"""Class-affinity matrices: the contract (symmetric, unit diagonal, in [0, 1]) and their sources."""

from __future__ import annotations

import pytest
import torch

from advinterp.data import datasets as data
from advinterp.interpret import affinity

WNIDS = ["n02084071", "n02121808", "n02958343"]  # dog, domestic cat, car


def _has_wordnet() -> bool:
    try:
        affinity.load_wordnet()
        return True
    except FileNotFoundError:
        return False


needs_wordnet = pytest.mark.skipif(not _has_wordnet(), reason="WordNet not installed (apt-get install wordnet-base)")


def _assert_contract(A: torch.Tensor) -> None:
    assert torch.allclose(A, A.T) and torch.all(A.diagonal() == 1) and A.min() >= 0 and A.max() <= 1


def test_cifar10_matrix_contract_and_known_entries():
    A = affinity.cifar10()
    _assert_contract(A)
    cat, dog, car, truck = 3, 5, 1, 9
    assert A[cat, dog] == pytest.approx(0.2) and A[car, truck] == pytest.approx(1 / 3)


def test_identity_and_auto_choices(mnist5k):
    assert torch.equal(affinity.for_dataset(mnist5k), torch.eye(10))
    with pytest.raises(ValueError, match="affinity='cifar10'"):
        affinity.for_dataset(mnist5k, "cifar10")
    with pytest.raises(ValueError, match="affinity='nope'"):
        affinity.for_dataset(mnist5k, "nope")


def _bundle(ids):
    return data.DatasetBundle("imagefolder", [], [], tuple(ids), (3, 8, 8), (0.5,) * 3, (0.5,) * 3, "test",
                              class_ids=tuple(ids))


def test_auto_for_imagefolders():
    assert torch.equal(affinity.for_dataset(_bundle(data.CIFAR10_CLASSES)), affinity.cifar10())
    with pytest.raises(ValueError, match="explicit 'identity'"):
        affinity.for_dataset(_bundle(["apples", "pears"]))
    assert torch.equal(affinity.for_dataset(_bundle(["apples", "pears"]), "identity"), torch.eye(2))


def test_contract_is_enforced():
    with pytest.raises(ValueError):
        affinity.check_affinity(torch.tensor([[1.0, 0.3], [0.2, 1.0]]))
    with pytest.raises(ValueError):
        affinity.check_affinity(torch.tensor([[0.9, 0.2], [0.2, 1.0]]))


@needs_wordnet
def test_stored_cifar10_distances_match_wordnet():
    wn = affinity.load_wordnet()
    synsets = [wn.synset(s) for s in affinity.cifar10_synsets()]
    recomputed = [[a.shortest_path_distance(b) for b in synsets] for a in synsets]
    assert recomputed == affinity._cifar10_record()["distances"]


@needs_wordnet
def test_wordnet_affinity_for_wnids():
    A = affinity.wordnet_affinity(WNIDS)
    _assert_contract(A)
    assert A[0, 1] > A[0, 2], "dog is closer to cat than to car"
    assert torch.allclose(affinity.for_dataset(_bundle(WNIDS)), A)


def test_missing_wordnet_says_how_to_install(tmp_path, monkeypatch):
    import nltk

    monkeypatch.setattr(affinity, "DEBIAN_WORDNET", tmp_path / "none")

    class Absent:
        def ensure_loaded(self):
            raise LookupError("no wordnet")

    monkeypatch.setattr(nltk.corpus, "wordnet", Absent())
    with pytest.raises(FileNotFoundError, match="apt-get install wordnet-base"):
        affinity.wordnet_affinity(WNIDS)
    with pytest.raises(ValueError, match="class folders"):
        affinity.wordnet_affinity(["dog"])
