"""Chapter 2's study: what a neuron's top images are, real and adversarial (Dong et al., finding 1),
tested so that it could have come out otherwise.

For every seed, on chapter 1's adversarial dataset (``attack``, the ensemble set by default):

* **galleries** of the dissected network's neurons (:func:`advinterp.interpret.dissection.neuron_report`):
  each neuron's top-K real images with patches and its top-K adversarial images;
* **per layer, two networks** (:mod:`advinterp.interpret.layer_stats`): the dissected network (a
  member of the ensemble the attack was made against, as Dong et al. dissect it; close to circular,
  since a white-box attack that succeeded drives the logit-feeding layer to the target by
  construction), on the images the attack fools it with, and the **held-out** network the attack
  never saw, on the images it labels as the attack's target (what transfers to it is not circular);
* **a control of equal budget**: the same images perturbed by random signs at the same eps,
  scored against the same target labels: its agreement is the chance level of "the perturbation
  makes neurons fire for the target".

The paper's claim is decided on the dissected network's last conv layer, whose channels Dong et al.
dissect (:func:`advinterp.studies.dissect.dong_layer`): the share of each neuron's top-K adversarial
images whose *target* label is its dominant real class, minus the share whose *true* label is
(``agreement_gap``), with a bootstrap interval over the images. The same at the dense layer feeding
the logits, which a white-box attack drives to the target by construction, is an extension; the held-out
extension subtracts the same gap under the control (a difference in differences, paired by the
bootstrap). Both are decided only when the set reaches its target on at least
:data:`~advinterp.studies.dissect.MIN_MEMBER_SUCCESS` of every member's images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from ..attacks.advdata import AdversarialSet
from ..core.params import Chapter, ChapterParams, number
from ..interpret.dissection import Dissection, most_consistent, neuron_gallery_rows, neuron_report
from ..models.architectures import analysed_layers
from ..report.results import layer_summary, with_spread
from ..report.settings import Setting
from ..interpret.affinity import AFFINITY
from ..interpret.dissection import NETWORKS, perturbed_layers
from ..models.layers import STATISTIC
from ..core.stats import SeedEffect, combine_frame, per_seed_metrics
from ..report import claims
from . import default_validate
from . import setting as S
from .dissect import (check_dissection, DENSE_DECLARED, dense_extension, depth_words, dissected_deepest,
                      DONG_ACTIVATION, dong_layer, DONG_NETWORK, DONG_TOP_K, layer_words, member_success,
                      success_metrics, success_words, weak_set)


# ----------------------------------------------------------------------------- declarations

PATCH_QUANTILE = number("patch_quantile", 0.005, 0.0, 0.5, "patches: where the channel map is in its top "
                        "quantile of values", lo_open=True)

CHAPTER = Chapter("02-neurons-and-patches", (
    *S.EXPERIMENT, S.HELDOUT, S.ATTACK, S.LAYERS, S.K, STATISTIC, AFFINITY, PATCH_QUANTILE, S.N_SHOW, S.K_SHOW,
    S.N_BOOT, S.SEEDS, S.DEVICE, S.RESULTS_DIR), check_dissection)

validate = default_validate(CHAPTER)

#: the effects chapter 2 puts intervals on, per layer: the claim's, the control's (its chance level)
#: and the difference between them (the held-out extension's effect: what the attack adds to what any
#: perturbation of its size does, on the same images, paired by the bootstrap)
EFFECTS = {"agreement_gap": lambda adv, ctl: adv["agreement_gap"],
           "agreement_gap_noise": lambda adv, ctl: ctl["agreement_gap"],
           "agreement_gap_did": lambda adv, ctl: adv["agreement_gap"] - ctl["agreement_gap"]}

#: the effects the claims are decided by: the dissected network (the paper's) and the held-out one (ours)
PATCHES_ATTACKED = claims.Effect(
    "effect_patches_attacked", "dissected (attacked) network, last conv layer (Dong et al.'s channels): top-K "
    "adversarial images with the neuron's concept as target minus as true label (share)", 0.05,
    "5 points of the top-K: one image in 20, the least a gallery would show", declared="6838ddf",
    source=lambda m: f"agreement_gap_attacked_{dong_layer(m)}")

PATCHES_DENSE = claims.Effect(
    "effect_patches_dense", "dissected (attacked) network, the dense layer feeding the logits: top-K adversarial "
    "images with the neuron's concept as target minus as true label (share)", 0.05,
    "5 points of the top-K: one image in 20, the least a gallery would show", declared=DENSE_DECLARED,
    source=lambda m: f"agreement_gap_attacked_{dissected_deepest(m)}")

PATCHES = claims.Effect(
    "effect_patches_heldout", "held-out network, deepest layer, on the images it labels as the target: top-K "
    "adversarial images with the neuron's concept as target minus as true label (share), minus the same under "
    "random signs of the same size", 0.05,
    "5 points of the top-K: one image in 20, the least a gallery would show", declared="6838ddf")

#: the claims this chapter tests (decided the same way on its results at scale; intro scorecard)
CLAIMS = (
    claims.claim("patches", "Dong et al. 2017", "Neurons respond to discriminative patches, not semantic concepts: "
                   "a neuron's top-K adversarial images carry its concept as the attack's target more often than as "
                   "their true class, in the network the attack was made against (its last conv layer's channels)",
                   CHAPTER.stem, PATCHES_ATTACKED,
                   applies=weak_set, short="neurons follow the target, not the content (dissected network)"),
    claims.claim("patches_dense", "Dong et al. 2017", "... also at the dense layer feeding the logits, which a "
                   "white-box attack drives to the target by construction (not the paper's layer)", CHAPTER.stem,
                   PATCHES_DENSE, applies=lambda m: weak_set(m) or dense_extension(m), protocol="extension",
                   extends="patches", short="... also at the dense layer feeding the logits"),
    claims.claim("patches_heldout", "Dong et al. 2017", "... even in a network the attack never saw (held-out "
                   "network, the images it labels as the target), beyond random signs of the same size", CHAPTER.stem,
                   PATCHES, applies=weak_set, protocol="extension", extends="patches",
                   short="... also in a held-out network"),
)

#: what ran beside what the paper ran (the page's settings table; docs/papers.md gives the paper's values)
SETTINGS = (
    DONG_NETWORK,
    Setting('adversarial set', ('attack', 'ensemble', 'ensemble_loss'),
            'ensemble-optimisation set (version A), k models, equal weights, Liu et al.\'s loss (averaged probabilities)'),
    Setting('attack budget', ('eps',),
            'not stated (our reading: L-inf bound eps)'),
    Setting('layers', ('layers',),
            'not stated (our reading: last conv block, e.g. VGG-16 conv5_3, ResNet-18 layer4; plus one earlier layer)',
            show=layer_words('deepest')),
    DONG_ACTIVATION,
    DONG_TOP_K,
    Setting('patch threshold', ('patch_quantile',),
            'top 0.5 % quantile of the map (Network Dissection style)'),
    Setting('probe images', ('n_probe',),
            'not stated'),
)


# ----------------------------------------------------------------------------- setup

def setup(P: ChapterParams) -> S.Setup:
    """Load the data and the class affinity; the layers are ``layers``, else the model's deepest conv
    layer and first dense layer."""
    return S.setup(P, with_affinity=True, layers="deepest")


# ----------------------------------------------------------------------------- run

def network_layers(setup: S.Setup) -> dict[str, tuple[str, ...]]:
    """The layers dissected in each network of :data:`NETWORKS` (the held-out network's deepest conv
    and first dense layer)."""
    return {"attacked": setup.layers, "held-out": tuple(analysed_layers(setup.P.heldout, "deepest"))}


@dataclass
class SeedDissection:
    """One seed's adversarial set, its target labels, the galleries' dissection, the intervals of
    :data:`EFFECTS` per (network, layer, effect) and the set's targeted success on each network it
    was made against."""

    experiment: S.Experiment
    adversarial: AdversarialSet
    target: torch.Tensor
    dissection: Dissection
    effects: dict[tuple[str, str, str], SeedEffect]
    member_success: dict[str, float]


@dataclass
class Result:
    table: pd.DataFrame                  # galleries: one row per (seed, layer, neuron) of the dissected network
    layers: pd.DataFrame                 # one row per (seed, network, layer, set): summaries and intervals
    runs: dict[int, SeedDissection]


def run(setup: S.Setup) -> Result:
    """Dissect every seed's networks on its adversarial set and its random-sign control."""
    P = setup.P
    nets = network_layers(setup)
    layer_frames = []

    def one(seed: int, exp: S.Experiment) -> SeedDissection:
        adv, noise = exp.adversarial(P.attack), exp.adversarial("noise")
        target = exp.target_labels(adv)
        diss = neuron_report(exp.net, adv, target, setup.layers, P.k, setup.A, statistic=P.statistic,
                             quantile=P.patch_quantile)
        effects = {}
        for network, net in (("attacked", exp.net), ("held-out", exp.held().model)):
            d = perturbed_layers(net, adv, noise, nets[network], P.k, setup.A, statistic=P.statistic,
                                 n_boot=P.n_boot, seed=seed, effects=EFFECTS, network=network)
            layer_frames.append(pd.DataFrame(d.rows).assign(seed=seed, network=network))
            effects.update({(network, *key): e for key, e in d.effects.items()})
        return SeedDissection(exp, adv, target, diss, effects, member_success(exp, P.attack, adv))

    runs = S.over_seeds(setup, one)
    table = pd.concat([r.dissection.table.assign(seed=s) for s, r in runs.items()], ignore_index=True)
    return Result(table, pd.concat(layer_frames, ignore_index=True), runs)


# ----------------------------------------------------------------------------- summarize

def deciding_layer(setup: S.Setup) -> str:
    """The layer the claim is decided at: the held-out network's deepest analysed layer."""
    return network_layers(setup)["held-out"][-1]


def summarize(result: Result, setup: S.Setup) -> dict[str, Any]:
    """Chapter 2's metrics (the names are this function's): per (network, set, layer) the agreements
    over seeds, the claim's effect per seed and the galleries' neuron counts."""
    P, layers = setup.P, result.layers
    metrics: dict[str, Any] = {}
    for (network, layer, name), rows in layers.groupby(["network", "layer", "set"], sort=False):
        tag = f"{network.replace('-', '')}_{name}_{layer}"
        metrics.update(with_spread({f"target_agreement_{tag}": rows.target_agreement,
                                    f"true_agreement_{tag}": rows.true_agreement}))
    head = layers[(layers.network == "held-out") & (layers.set == "adversarial") & (layers.layer == deciding_layer(setup))]
    metrics.update(with_spread({"topk_target_agreement": head.target_agreement,
                                "topk_true_agreement": head.true_agreement,
                                "n_on_target_heldout": head.n_images,
                                "n_live_neurons": result.table.groupby("seed")["live"].sum()}))
    metrics.update(per_seed_metrics(PATCHES.name, {s: r.effects[("held-out", deciding_layer(setup), "agreement_gap_did")]
                                                   for s, r in result.runs.items()}))
    metrics.update(success_metrics({s: r.member_success for s, r in result.runs.items()}))
    for network in NETWORKS:
        for layer in network_layers(setup)[network]:
            for name in EFFECTS:
                metrics.update(per_seed_metrics(f"{name}_{network.replace('-', '')}_{layer}",
                                                {s: r.effects[(network, layer, name)] for s, r in result.runs.items()}))
    metrics.update({"k": P.k, "n_neurons": int(len(result.table) / len(setup.seeds)), "n_seeds": len(setup.seeds),
                    "decided_at": deciding_layer(setup), "paper_layer": dong_layer(P.public()),
                    "dense_layer": dissected_deepest(P.public())})
    return metrics


# ----------------------------------------------------------------------------- verdicts

def by_layer(result: Result) -> pd.DataFrame:
    """Mean (over seeds) agreement and consistency per (network, layer, set), layers in order."""
    cols = ["target_agreement", "true_agreement", "agreement_gap", "consis_real", "n_images", "k"]
    return result.layers.groupby(["network", "layer", "set"], sort=False)[cols].mean()


def verdicts(result: Result, setup: S.Setup, metrics: dict[str, Any]) -> dict[str, str]:
    """Words the prose glues, decided by intervals."""
    out = claims.claim_words(CLAIMS, setup.P.public(), metrics)
    out["member_success_words"] = success_words({s: r.member_success for s, r in result.runs.items()})
    for network in NETWORKS:
        sub = by_layer(result).xs(network, level="network")
        adv = sub.xs("adversarial", level="set")
        noise = sub.xs("noise", level="set")
        out[f"layer_summary_{network.replace('-', '')}"] = layer_summary(
            adv, {"target_agreement": "target", "true_agreement": "true"})
        out[f"noise_summary_{network.replace('-', '')}"] = layer_summary(
            noise, {"target_agreement": "target", "true_agreement": "true"})
        gaps = [(layer, metrics[f"agreement_gap_{network.replace('-', '')}_{layer}"]) for layer in adv.index]
        out[f"depth_pattern_{network.replace('-', '')}"] = depth_words(gaps)
    return out


# ----------------------------------------------------------------------------- display helpers

def intervals(result: Result) -> pd.DataFrame:
    """One row per (seed, network, layer, effect of :data:`EFFECTS`): estimate and interval."""
    return pd.DataFrame([{"seed": s, "network": network, "layer": layer, "effect": name, "estimate": e.estimate,
                          "lo": e.lo, "hi": e.hi} for s, r in result.runs.items()
                         for (network, layer, name), e in r.effects.items()])


def layer_effects(result: Result) -> pd.DataFrame:
    """Per (network, layer, effect): the interval over seeds and images (for the per-layer figure)."""
    return combine_frame(intervals(result), ["network", "layer", "effect"])


def gallery_rows(result: Result, setup: S.Setup) -> list[dict[str, object]]:
    """Rows of :func:`advinterp.report.figures.galleries.neuron_rows`: the ``n_show`` purest neurons of each
    layer of the first seed, their top real images (with patches) and top adversarial images."""
    r = result.runs[setup.seeds[0]]
    return [row for layer, neuron in most_consistent(r.dissection.table, setup.P.n_show)
            for row in neuron_gallery_rows(r.experiment.net, r.dissection, r.adversarial, r.target, layer, neuron,
                                           setup.classes, setup.P.k_show)]
