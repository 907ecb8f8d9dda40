"""Dissecting a network with real and adversarial probes (Dong et al., findings 1 and 2).

:func:`neuron_report` mines every neuron's top-K real and top-K adversarial images and tabulates,
per neuron: whether it is live, its dominant real class (its apparent "concept"), ``consis`` on
real probes, on adversarial probes by true label and by target label, and how many of its top-K
adversarial images carry the dominant real class as *target* versus as *true* label.
Chapter 3's study (:mod:`advinterp.studies.consistency`) runs it over seeds and attacks, beside the
representation-consistency measures of :mod:`advinterp.interpret.representation`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..attacks.advdata import AdversarialSet
from ..core.stats import SeedEffect, from_replicates, resamples
from ..core.validation import fail
from ..models.layers import activations
from ..models.predict import predict
from . import layer_stats
from . import consistency as C
from .patches import neuron_patches
from .representation import class_means, knn_labels, representation_metrics
from .topk import NeuronTopK, mine_topk


@dataclass
class Dissection:
    """Top-K of real and adversarial probes per layer, and the per-neuron table."""

    real: dict[str, NeuronTopK]
    adversarial: dict[str, NeuronTopK]
    table: pd.DataFrame
    adversarial_set: AdversarialSet
    target: torch.Tensor


def neuron_report(model: nn.Module, adv: AdversarialSet, target: torch.Tensor, layers: Sequence[str], k: int,
                  A: torch.Tensor, *, statistic: str = "max", quantile: float = 0.005) -> Dissection:
    """Mine real (``adv.x``) and adversarial (``adv.x_adv``) probes and tabulate every neuron."""
    real = mine_topk(model, adv.x, layers, k, statistic=statistic, quantile=quantile, labels={"true": adv.y},
                     desc="real top-K")
    fake = mine_topk(model, adv.x_adv, layers, k, statistic=statistic, quantile=quantile,
                     labels={"true": adv.y, "target": target}, desc="adversarial top-K")
    rows = []
    n_classes = A.shape[0]
    for layer in layers:
        r, f = real[layer], fake[layer]
        dominant = C.dominant_class(r.labels["true"], n_classes)
        frame = pd.DataFrame({
            "layer": layer, "neuron": range(r.n_neurons), "live": (r.live & f.live).numpy(),
            "dominant_real": dominant.numpy(),
            "consis_real": C.neuron_consistency(r.labels["true"], A).numpy(),
            "consis_adv_true": C.neuron_consistency(f.labels["true"], A).numpy(),
            "consis_adv_target": C.neuron_consistency(f.labels["target"], A).numpy(),
            "target_agreement": C.agreement(f.labels["target"], dominant).numpy(),
            "true_agreement": C.agreement(f.labels["true"], dominant).numpy(),
        })
        rows.append(frame)
    return Dissection(real, fake, pd.concat(rows, ignore_index=True), adv, target)


def representation_images(model: nn.Module, x_adv: torch.Tensor, x_src: torch.Tensor, y: torch.Tensor,
                          target: torch.Tensor, layers: Sequence[str], reference: tuple[torch.Tensor, torch.Tensor],
                          A: torch.Tensor, *, k_nn: int | None = 10,
                          reference_features: dict[str, torch.Tensor] | None = None) -> dict[str, dict[str, torch.Tensor]]:
    """Per layer, the per-image CS / r / LC of :func:`advinterp.interpret.representation
    .representation_metrics` of the perturbed images ``x_adv`` made from ``x_src``
    (``reference_features``: the reference images' activations at ``layers``, when already computed;
    ``k_nn=None``: no LC, whose nearest-neighbour search in a conv layer's full map is the costly part)."""
    x_ref, y_ref = reference
    n_classes = A.shape[0]
    feats_ref = reference_features if reference_features is not None else activations(model, x_ref, layers)
    feats_src = activations(model, x_src, layers)
    feats_adv = activations(model, x_adv, layers)
    out = {}
    for layer in layers:
        means = class_means(feats_ref[layer], y_ref, n_classes)
        nn_labels = None if k_nn is None else knn_labels(feats_adv[layer], feats_ref[layer], y_ref, k_nn)
        out[layer] = representation_metrics(feats_adv[layer], feats_src[layer], y, target, means, nn_labels, A)
    return out


def most_consistent(table: pd.DataFrame, n: int) -> list[tuple[str, int]]:
    """The ``n`` live neurons of each layer with the purest real top-K (highest ``consis_real``;
    ties by neuron index), as ``(layer, neuron)`` pairs in layer order."""
    live = table[table["live"]].sort_values(["consis_real", "neuron"], ascending=[False, True], kind="stable")
    chosen = []
    for layer in dict.fromkeys(table["layer"]):
        chosen += [(layer, int(i)) for i in live[live["layer"] == layer]["neuron"].head(n)]
    return chosen


def neuron_gallery_rows(model: nn.Module, diss: Dissection, adv: AdversarialSet, target: torch.Tensor, layer: str,
                        neuron: int, classes: Sequence[str], k_show: int, *, which: Sequence[str] = ("real", "adversarial"),
                        patches: bool = True) -> list[dict[str, object]]:
    """Rows for :func:`advinterp.report.figures.galleries.neuron_rows`: the neuron's top real images (with patch
    masks for conv layers) and its top adversarial images titled ``true -> target``."""
    rows: list[dict[str, object]] = []
    for kind in which:
        top = (diss.real if kind == "real" else diss.adversarial)[layer]
        idx = top.indices[neuron, :k_show]
        images = adv.x[idx] if kind == "real" else adv.x_adv[idx]
        masks = None
        if patches and top.spatial:
            masks = neuron_patches(model, images, layer, torch.full((len(idx),), neuron),
                                   top.threshold[neuron].expand(len(idx)))
        if kind == "real":
            titles = [classes[int(adv.y[i])] for i in idx]
        else:
            titles = [f"{classes[int(adv.y[i])]}→{classes[int(target[i])]}" for i in idx]
        rows.append({"images": images, "masks": masks, "titles": titles, "label": f"{layer} #{neuron}\n{kind}"})
    return rows


def fooled(model: nn.Module, adv: AdversarialSet) -> torch.Tensor:
    """Mask of the probes ``model`` classifies correctly whose adversarial version it misclassifies:
    the images on which an attack succeeded against this model."""
    from ..models.predict import predict

    return (predict(model, adv.x) == adv.y) & (predict(model, adv.x_adv) != adv.y)


def reached_target(model: nn.Module, adv: AdversarialSet) -> torch.Tensor:
    """Mask of the probes ``model`` classifies correctly whose adversarial version it labels as the
    set's target: the images on which a targeted attack transferred to this model (for an untargeted
    set, whose target is whatever the model predicts, the same as :func:`fooled`)."""
    from ..models.predict import predict

    if not adv.targeted:
        return fooled(model, adv)
    return (predict(model, adv.x) == adv.y) & (predict(model, adv.x_adv) == adv.target)


def subset(adv: AdversarialSet, mask: torch.Tensor) -> AdversarialSet:
    """The adversarial set restricted to ``mask``."""
    return AdversarialSet(adv.attack, adv.eps, adv.x[mask], adv.x_adv[mask], adv.y[mask], adv.target[mask],
                          adv.indices[mask])


def consistency_on_fooled(model: nn.Module, adv: AdversarialSet, layer: str, k: int, A: torch.Tensor, *,
                          per_k: int = 4, min_k: int = 5) -> dict[str, float]:
    """Neuron consistency of ``layer`` on the images that fool ``model`` only (Dong et al.'s claim is
    about adversarial images, not about attacks that failed), every quantity on the same images:

    * ``consis_real`` on their clean versions, ``consis_adv_true`` / ``consis_adv_target`` on the
      adversarial versions labelled by the true class / the target (the attack's target, or the
      model's prediction for an untargeted attack), top-K with ``K = min(k, n_fooled // per_k)``: the
      top-K must be a selection (with ``K = n_fooled`` the real and adversarial top-K would hold
      the same images and the gap would be 0 whatever the network does);
    * ``consis_gap = consis_adv_true - consis_real`` (the claim: negative) and
      ``target_gap = consis_adv_target - consis_adv_true`` (the claim: positive);
    * ``feature_dist``: mean ``||phi(x) - phi(x_adv)|| / ||phi(x)||`` (scale-free) over **every**
      image of the set (how far the perturbation moves the features, fooled or not);
    * ``n_fooled`` and the ``k`` used. Too few fooled images for ``K >= min_k`` give NaN statistics
      (not measurable), never a number the test could not have failed."""
    from ..models.layers import activations
    from ..models.predict import predict
    from ..training.adversarial import relative_distance

    mask = fooled(model, adv)
    n = int(mask.sum())
    kk = min(k, n // per_k)
    phi, phi_adv = (activations(model, images, [layer])[layer] for images in (adv.x, adv.x_adv))
    out = {"n_fooled": float(n), "k": float(kk), "feature_dist": float(relative_distance(phi, phi_adv).mean())}
    keys = ("consis_real", "consis_adv_true", "consis_adv_target", "consis_gap", "target_gap")
    if kk < min_k:
        return {**out, **{key: float("nan") for key in keys}}
    sub = subset(adv, mask)
    target = sub.target if adv.targeted else predict(model, sub.x_adv)
    table = neuron_report(model, sub, target, [layer], kk, A).table
    live = table[table.live]
    real, true, tgt = (float(live[c].mean()) for c in ("consis_real", "consis_adv_true", "consis_adv_target"))
    return {**out, "consis_real": real, "consis_adv_true": true, "consis_adv_target": tgt, "consis_gap": true - real,
            "target_gap": tgt - true}


Summaries = Mapping[str, np.ndarray]
EffectFn = Callable[[Summaries, Summaries], np.ndarray]
#: the two perturbed sets compared
SETS = ("adversarial", "noise")
#: the networks dissected: the attacked one (chapter 1's ``model``) and the held-out one
NETWORKS = ("attacked", "held-out")
#: which images each network is dissected on: those the attack fools the attacked network with
#: (correct before, wrong after: a white-box attack's own success), and those the held-out network
#: labels as the attack's target (a transfer of the targeted attack; the images it merely gets wrong
#: are not evidence of the target's pull)
IMAGES: dict[str, Callable[[nn.Module, AdversarialSet], torch.Tensor]] = {"attacked": fooled,
                                                                          "held-out": reached_target}


@dataclass
class LayerDissection:
    """One network on one adversarial set: a row per (layer, set) with every summary, and the
    interval of each named effect per layer."""

    rows: list[dict[str, Any]]
    effects: dict[tuple[str, str], SeedEffect]


def perturbed_layers(net: torch.nn.Module, adv: AdversarialSet, control: AdversarialSet, layers: Sequence[str],
                     k: int, A: torch.Tensor, *, statistic: str, n_boot: int, seed: int,
                     effects: Mapping[str, EffectFn], network: str = "attacked") -> LayerDissection:
    """Dissect ``net`` on the probes of :data:`IMAGES` for its ``network`` role (the attacked network:
    those ``adv`` fools it with; the held-out network: those it labels as the attack's target),
    perturbed by the attack and by ``control`` (the same probes), both read against the attack's
    target labels (its target, or ``net``'s prediction for an untargeted attack). K is fixed for both
    sets by :func:`advinterp.interpret.layer_stats.selection_k`; too few images give NaN effects."""
    if not torch.equal(adv.x, control.x):
        raise ValueError("the control must perturb the adversarial set's own probes")
    if network not in IMAGES:
        fail("network", network, f"one of {', '.join(IMAGES)}")
    mask = IMAGES[network](net, adv)
    n = int(mask.sum())
    target = adv.target if adv.targeted else predict(net, adv.x_adv)
    kk = layer_stats.selection_k(k, n)
    rows, out = [], {}
    if not kk:  # too few images fool the network for a top-K to be a selection
        for layer in layers:
            rows += [{"layer": layer, "set": s, "n_images": n, "k": 0, **dict.fromkeys(layer_stats.SUMMARIES, float("nan"))}
                     for s in SETS]
            out.update({(layer, e): SeedEffect(float("nan"), float("nan"), float("nan"), n) for e in effects})
        return LayerDissection(rows, out)
    probes = {name: layer_stats.measure(net, adv.x[mask], x[mask], adv.y[mask], target[mask], layers,
                                        statistic=statistic)
              for name, x in zip(SETS, (adv.x_adv, control.x_adv))}
    index = resamples(n, n_boot, seed)
    for layer in layers:
        point = {s: layer_stats.summarize_many(probes[s][layer], kk, A, np.arange(n)[None]) for s in SETS}
        reps = {s: layer_stats.summarize_many(probes[s][layer], kk, A, index) for s in SETS}
        rows += [{"layer": layer, "set": s, "n_images": n, "k": kk, **{m: float(v[0]) for m, v in point[s].items()}}
                 for s in SETS]
        for name, fn in effects.items():
            out[(layer, name)] = from_replicates(float(fn(point["adversarial"], point["noise"])[0]),
                                                 fn(reps["adversarial"], reps["noise"]), n)
    return LayerDissection(rows, out)
