"""Representation consistency of adversarial images (Dong et al., version A; our reading).

At a layer with features phi (flattened activations), for an adversarial image x_adv made from
x with true label y and target y*:

* ``cs_own`` / ``r_own``: cosine similarity / Pearson r between phi(x_adv) and phi(x);
* ``cs_true`` / ``cs_target`` (and ``r_...``): similarity of phi(x_adv) to the mean feature of
  real images of class y / class y*;
* ``lc_true`` / ``lc_target``: mean affinity ``A[y, c_j]`` (or ``A[y*, c_j]``) over the labels
  c_j of phi(x_adv)'s k nearest real neighbours (Euclidean).

The finding predicts that deeper layers put x_adv closer to y* than to y.
"""

from __future__ import annotations

import torch


def flat(features: torch.Tensor) -> torch.Tensor:
    """``(N, ...)`` -> ``(N, D)`` float."""
    return features.reshape(len(features), -1).float()


def cosine(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Row-wise cosine similarity of two ``(N, D)`` arrays (0 for an all-zero row)."""
    a, b = flat(a), flat(b)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(eps)


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Pearson correlation (cosine of the centred rows)."""
    a, b = flat(a), flat(b)
    return cosine(a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True))


def class_means(features: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(C, D)`` mean feature per class (NaN rows for absent classes)."""
    f = flat(features)
    sums = torch.zeros(num_classes, f.shape[1]).index_add_(0, labels, f)
    counts = torch.bincount(labels, minlength=num_classes).float().unsqueeze(1)
    return sums / counts


def knn_labels(query: torch.Tensor, reference: torch.Tensor, reference_labels: torch.Tensor, k: int,
               chunk: int = 1024) -> torch.Tensor:
    """Labels of the ``k`` nearest reference rows (Euclidean) of each query row: ``(N, k)``."""
    q, r = flat(query), flat(reference)
    out = []
    for i in range(0, len(q), chunk):
        d = torch.cdist(q[i:i + chunk], r)
        out.append(reference_labels[d.topk(k, dim=1, largest=False).indices])
    return torch.cat(out)


def local_consistency(neighbour_labels: torch.Tensor, labels: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """LC: mean of ``A[labels[i], neighbour_labels[i, j]]`` over j, per query."""
    return A[labels.view(-1, 1), neighbour_labels].mean(1)


def representation_metrics(phi_adv: torch.Tensor, phi_src: torch.Tensor, y: torch.Tensor, y_target: torch.Tensor,
                           means: torch.Tensor, neighbour_labels: torch.Tensor | None, A: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image CS / r / LC of one layer (see the module docstring; no LC without ``neighbour_labels``)."""
    out = {
        "cs_own": cosine(phi_adv, phi_src), "r_own": pearson(phi_adv, phi_src),
        "cs_true": cosine(phi_adv, means[y]), "cs_target": cosine(phi_adv, means[y_target]),
        "r_true": pearson(phi_adv, means[y]), "r_target": pearson(phi_adv, means[y_target]),
    }
    if neighbour_labels is not None:
        out["lc_true"] = local_consistency(neighbour_labels, y, A)
        out["lc_target"] = local_consistency(neighbour_labels, y_target, A)
    return out
