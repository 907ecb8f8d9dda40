"""Chapter 3's study: neuron and representation consistency on adversarial images (Dong et al.,
finding 2; version B's metric ``consis(n) = p^T A p``), each against a control that gives it a
chance level.

For every seed and attack, on the images the attack fools the dissected network with, and those the
held-out network labels as the attack's target (:data:`advinterp.interpret.dissection.IMAGES`,
:func:`advinterp.interpret.dissection.perturbed_layers`):

* **neuron consistency** per layer of the dissected network, on the adversarial images and on the
  same images under the **random-sign control** of the same budget: ``consistency_drop =
  consis_control - consis_adversarial`` (true labels) is what the attack does to the neurons beyond
  what any perturbation that large does; the held-out network's per-layer numbers stand beside;
* **representation consistency** per layer of both networks (:func:`advinterp.interpret.dissection
  .representation_images`): cosine similarity of the perturbed image's features to the real
  class means of its target and of its true class, per image (``cs_target - cs_true``), for the
  adversarial images, for the control, and their difference per image (``cs_gap_did``).

Claims: version B's on FGSM **and** ILLC (consis of the real images minus the adversarial ones at
the dissected network's last conv layer, Dong et al.'s channels, both must hold; at the dense layer
feeding the logits and against the control as extensions);
version A's on the headline ``attack`` (the ensemble set) in the dissected network, as the paper
ran it, and as an extension in the **held-out** network the attack never saw, beyond the control
(in the attacked network, a successful white-box attack puts the logit-feeding layer near the
target by construction). Version A's claims are decided only when the set reaches its target on at
least :data:`~advinterp.studies.dissect.MIN_MEMBER_SUCCESS` of every member's images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..core import progress
from ..core.params import Chapter, ChapterParams, at_most, integer, one_of
from ..core.validation import fail
from ..interpret.dissection import representation_images
from ..models.architectures import analysed_layers
from ..models.layers import activations
from ..models.predict import predict
from ..report.results import with_spread
from ..report.settings import Setting
from ..interpret.affinity import AFFINITY
from ..interpret.dissection import IMAGES, NETWORKS, perturbed_layers
from ..models.layers import STATISTIC
from ..core.stats import SeedEffect, combine_frame, mean_interval, per_seed_metrics
from ..report import claims
from . import SideBySide, default_validate
from . import setting as S
from .dissect import (check_dissection, DENSE_DECLARED, dense_extension, depth_words, dissected_deepest,
                      DONG_ACTIVATION, dong_layer, DONG_NETWORK, DONG_TOP_K, layer_words, member_success,
                      success_metrics, success_words, weak_set)


# ----------------------------------------------------------------------------- declarations

K_NN = integer("k_nn", 10, 1, None, "neighbours of LC")

#: the chapter's headline measures (chapter 8 reads them against eps)
CONSISTENCY_METRICS = ("consis_real", "consis_adv_true", "consis_adv_target")

REPRESENTATION_METRICS = ("cs_adv_to_true_class", "cs_adv_to_target_class")

SIDE_BY_SIDE = SideBySide(across_eps=(*CONSISTENCY_METRICS, *REPRESENTATION_METRICS))

#: version B's attacks: its claim is decided on both
VERSION_B = ("fgsm", "illc")

#: the per-layer effects with intervals (the attacked network)
EFFECTS = {"consistency_drop": lambda adv, ctl: ctl["consis_adv_true"] - adv["consis_adv_true"],
           "consistency_drop_real": lambda adv, ctl: -adv["consis_gap"]}


def _relations(P: ChapterParams) -> None:
    check_dissection(P)
    if P.layers is not None and len(P.layers) < 2:
        fail("layers", P.layers, "None or at least two layers (the chapter compares layers)")
    one_of("attack", P.attack, "attacks", P.attacks)
    at_most("k_nn", P.k_nn, "n_reference", P.n_reference)


CHAPTER = Chapter("03-neuron-consistency", (
    *S.EXPERIMENT, S.HELDOUT, S.ATTACKS, S.ATTACK, S.LAYERS, S.K, STATISTIC, AFFINITY, S.N_REFERENCE, K_NN,
    S.N_BOOT, S.SEEDS, S.DEVICE, S.RESULTS_DIR), _relations)

validate = default_validate(CHAPTER)


def _needs_version_b(m: claims.Metrics) -> str | None:
    attacks = m.get("attacks") or []
    missing = [a for a in VERSION_B if a not in attacks]
    return f"version B's claim needs {' and '.join(missing)} in attacks" if missing else None


#: the effects the claims are decided by
CONSISTENCY_REAL = tuple(claims.Effect(
    f"effect_consistency_real_{a}", f"{a.upper()}, dissected network, last conv layer (Dong et al.'s channels): consis "
    "of the real images minus consis of the adversarial images (true labels)", 0.05,
    "a twentieth of consis's range: less is a label or two among the top-K", declared="6838ddf",
    source=lambda m, a=a: f"consistency_drop_real_{a}_attacked_{dong_layer(m)}") for a in VERSION_B)

CONSISTENCY_DENSE = tuple(claims.Effect(
    f"effect_consistency_real_dense_{a}", f"{a.upper()}, dissected network, the dense layer feeding the logits: "
    "consis of the real images minus consis of the adversarial images (true labels)", 0.05,
    "a twentieth of consis's range: less is a label or two among the top-K", declared=DENSE_DECLARED,
    source=lambda m, a=a: f"consistency_drop_real_{a}_attacked_{dissected_deepest(m)}") for a in VERSION_B)

CONSISTENCY = tuple(claims.Effect(
    f"effect_consistency_{a}", f"{a.upper()}, dissected network, last conv layer: consis of the control minus consis "
    "of the adversarial images (true labels)", 0.05,
    "a twentieth of consis's range: less is a label or two among the top-K", declared="6838ddf",
    source=lambda m, a=a: f"consistency_drop_{a}_attacked_{dong_layer(m)}") for a in VERSION_B)

REPRESENTATION_ATTACKED = claims.Effect(
    "effect_representation_attacked", "dissected (attacked) network, deepest layer: cosine similarity of an "
    "adversarial image's features to its target-class mean minus to its true-class mean", 0.05,
    "a twentieth of the similarity's range, well above its seed-to-seed noise on real images", declared="6838ddf",
    source=lambda m: f"cs_gap_adversarial_{m['attack']}_attacked_{dissected_deepest(m)}")

REPRESENTATION = claims.Effect(
    "effect_representation_heldout", "held-out network, deepest layer, on the images it labels as the target: "
    "cosine similarity of an adversarial image's features to its target-class mean minus to its true-class mean, "
    "minus the same under random signs of the same size", 0.05,
    "a twentieth of the similarity's range, well above its seed-to-seed noise on real images", declared="6838ddf")

#: the claims this chapter tests (decided the same way on its results at scale; intro scorecard)
CLAIMS = (
    claims.claim("consistency_drop", "Dong et al. 2019 (workshop)", "Neuron consistency p^T A p is lower on "
                   "adversarial images (FGSM and ILLC) than on the real images (the last conv layer's channels)",
                   CHAPTER.stem, CONSISTENCY_REAL,
                   applies=_needs_version_b, short="consistency drops on adversarial images (FGSM, ILLC)"),
    claims.claim("consistency_drop_dense", "Dong et al. 2019 (workshop)", "... also at the dense layer feeding the "
                   "logits (not the paper's layer)", CHAPTER.stem, CONSISTENCY_DENSE,
                   applies=lambda m: _needs_version_b(m) or dense_extension(m), protocol="extension",
                   extends="consistency_drop", short="... also at the dense layer feeding the logits"),
    claims.claim("consistency_drop_noise", "Dong et al. 2019 (workshop)", "... and lower than under random noise "
                   "of the same size (the chance level of any perturbation)", CHAPTER.stem, CONSISTENCY,
                   applies=_needs_version_b, protocol="extension", extends="consistency_drop",
                   short="... more than same-size noise"),
    claims.claim("representations", "Dong et al. 2017", "Representations of adversarial images are inconsistent "
                   "with those of real images: closer to the target class than to the true class, in the network "
                   "the attack was made against", CHAPTER.stem, REPRESENTATION_ATTACKED, applies=weak_set,
                   short="adversarial features sit nearer the target class"),
    claims.claim("representations_heldout", "Dong et al. 2017", "... even in a network the attack never saw "
                   "(held-out network, the images it labels as the target), beyond random signs of the same size",
                   CHAPTER.stem, REPRESENTATION, applies=weak_set, protocol="extension",
                   extends="representations", short="... also in a held-out network"),
)

#: what ran beside what the paper ran (the page's settings table; docs/papers.md gives the paper's values)
SETTINGS = (
    DONG_NETWORK,
    Setting('attacks (neuron consistency, version B)', ('attacks',),
            'FGSM and ILLC'),
    Setting('adversarial set (representation consistency, version A)', ('attack', 'ensemble_loss'),
            'ensemble-optimisation set, Liu et al.\'s loss (averaged probabilities)'),
    Setting('attack budget and steps', ('eps', 'attack_steps'),
            'eps not stated; ILLC: a = 1/255, T = min(eps*255+4, 1.25*eps*255)'),
    Setting('layers', ('layers',),
            'several layers (version A); which: not stated (our reading: last conv block plus one earlier)',
            show=layer_words('all')),
    DONG_ACTIVATION,
    DONG_TOP_K,
    Setting('class affinity A', ('affinity',),
            'from WordNet distances (our reading: path similarity 1/(1+d); A = I for MNIST)'),
    Setting('neighbours of LC', ('k_nn',),
            'k nearest real neighbours (k not stated)'),
)


# ----------------------------------------------------------------------------- setup

def setup(P: ChapterParams) -> S.Setup:
    """As chapter 2, with every analysed layer of ``model`` by default."""
    return S.setup(P, with_affinity=True, layers="all")


# ----------------------------------------------------------------------------- run

def network_layers(setup: S.Setup) -> dict[str, tuple[str, ...]]:
    """Every analysed layer of each network."""
    return {"attacked": setup.layers, "held-out": tuple(analysed_layers(setup.P.heldout, "all"))}


@dataclass
class Result:
    neurons: pd.DataFrame          # one row per (seed, attack, network, layer, set): consistency summaries
    representations: pd.DataFrame  # one row per (seed, attack, network, layer, set): mean CS / r / LC
    effects: dict[tuple[int, str, str, str, str], SeedEffect]  # (seed, attack, network, layer, effect)
    member_success: dict[int, dict[str, float]]  # per seed: the headline set's targeted success per member


def representation_effects(net: Any, adv: Any, noise: Any, layers: tuple[str, ...],
                           reference: tuple[Any, Any], A: Any, k_nn: int | None,
                           reference_features: dict[str, Any] | None = None,
                           network: str = "attacked") -> tuple[list[dict[str, Any]], dict[tuple[str, str], SeedEffect]]:
    """Mean representation measures per layer on the images of ``network``'s role
    (:data:`advinterp.interpret.dissection.IMAGES`: those ``adv`` fools the attacked network with, those
    the held-out network labels as the target), adversarial and control, and the per-image interval
    of ``cs_target - cs_true`` for each and of its difference between them (``cs_gap_did``, paired
    per image)."""
    mask = IMAGES[network](net, adv)
    target = adv.target if adv.targeted else predict(net, adv.x_adv)
    rows, effects = [], {}
    if int(mask.sum()) < 2:
        return rows, {(layer, f"cs_gap_{s}"): SeedEffect(float("nan"), float("nan"), float("nan"))
                      for layer in layers for s in ("adversarial", "noise", "did")}
    gaps: dict[str, dict[str, Any]] = {}
    for name, x_pert in (("adversarial", adv.x_adv), ("noise", noise.x_adv)):
        per_image = representation_images(net, x_pert[mask], adv.x[mask], adv.y[mask], target[mask], layers,
                                          reference, A, k_nn=k_nn if name == "adversarial" else None,
                                          reference_features=reference_features)
        for depth, layer in enumerate(layers):
            m = per_image[layer]
            rows.append({"layer": layer, "depth": depth, "set": name, "n_images": int(mask.sum()),
                         **{k: float(v.mean()) for k, v in m.items()}})
            gaps.setdefault(layer, {})[name] = (m["cs_target"] - m["cs_true"]).numpy()
            effects[(layer, f"cs_gap_{name}")] = mean_interval(gaps[layer][name])
    for layer in layers:
        effects[(layer, "cs_gap_did")] = mean_interval(gaps[layer]["adversarial"] - gaps[layer]["noise"])
    return rows, effects


def run(setup: S.Setup) -> Result:
    """Neuron and representation consistency for every seed, attack and network."""
    P = setup.P
    nets = network_layers(setup)
    neuron_rows, repr_rows, effects = [], [], {}
    success: dict[int, dict[str, float]] = {}  # the headline set's targeted success per member, per seed
    jobs = [(s, a) for s in setup.seeds for a in P.attacks]
    features: dict[tuple[int, str], dict[str, Any]] = {}  # the reference images' activations, once per network
    for seed, attack in progress.bar(jobs, desc="seeds x attacks"):
        with S.timed(setup, seed):
            exp = setup.experiments[seed]
            adv, noise = exp.adversarial(attack), exp.adversarial("noise")
            if attack == P.attack:
                success[seed] = member_success(exp, attack, adv)
            reference = exp.reference(P.n_reference)
            for network, net in (("attacked", exp.net), ("held-out", exp.held().model)):
                if (seed, network) not in features:
                    features[(seed, network)] = activations(net, reference[0], nets[network])
                d = perturbed_layers(net, adv, noise, nets[network], P.k, setup.A, statistic=P.statistic,
                                     n_boot=P.n_boot, seed=seed, effects=EFFECTS if network == "attacked" else {},
                                     network=network)
                neuron_rows.append(pd.DataFrame(d.rows).assign(seed=seed, attack=attack, network=network))
                # LC (nearest real neighbours) only where the chapter reports it: the dissected network
                k_nn = P.k_nn if network == "attacked" else None
                rows, rep = representation_effects(net, adv, noise, nets[network], reference, setup.A, k_nn,
                                                   features[(seed, network)], network)
                repr_rows.append(pd.DataFrame(rows).assign(seed=seed, attack=attack, network=network))
                effects.update({(seed, attack, network, layer, name): e
                                for (layer, name), e in {**d.effects, **rep}.items()})
    return Result(pd.concat(neuron_rows, ignore_index=True), pd.concat(repr_rows, ignore_index=True), effects,
                  success)


# ----------------------------------------------------------------------------- summarize

def _per_seed(result: Result, attack: str, network: str, layer: str, name: str) -> dict[int, SeedEffect]:
    return {s: e for (s, a, n, lay, nm), e in result.effects.items() if (a, n, lay, nm) == (attack, network, layer, name)}


def summarize(result: Result, setup: S.Setup) -> dict[str, Any]:
    """Chapter 3's metrics (the names are this function's); the headline is ``attack`` on the images it
    fools the dissected network with: neuron consistency at its last conv layer (Dong et al.'s channels,
    :func:`advinterp.studies.dissect.dong_layer`), representations at its deepest layer."""
    P = setup.P
    nets = network_layers(setup)
    deepest, held_deepest = nets["attacked"][-1], nets["held-out"][-1]
    conv = dong_layer(P.public())
    neurons, reps = result.neurons, result.representations
    head_n = neurons[(neurons.attack == P.attack) & (neurons.layer == conv) & (neurons.network == "attacked")]
    head_r = reps[(reps.attack == P.attack) & (reps.layer == deepest) & (reps.network == "attacked")]
    adv_n, adv_r = head_n[head_n.set == "adversarial"], head_r[head_r.set == "adversarial"]
    metrics: dict[str, Any] = with_spread({
        **{m: adv_n[m] for m in CONSISTENCY_METRICS},
        "consis_noise_true": head_n[head_n.set == "noise"]["consis_adv_true"],
        "cs_adv_to_true_class": adv_r["cs_true"], "cs_adv_to_target_class": adv_r["cs_target"],
        "lc_true": adv_r["lc_true"], "lc_target": adv_r["lc_target"],
    })
    for attack in P.attacks:
        rows = neurons[(neurons.attack == attack) & (neurons.network == "attacked") & (neurons.layer == conv)]
        metrics.update(with_spread({f"consis_adv_true_{attack}": rows[rows.set == "adversarial"]["consis_adv_true"],
                                    f"consis_noise_true_{attack}": rows[rows.set == "noise"]["consis_adv_true"],
                                    f"consis_real_{attack}": rows[rows.set == "adversarial"]["consis_real"]}))
        for network in NETWORKS:
            for layer in nets[network]:
                tag = f"{attack}_{network.replace('-', '')}_{layer}"
                names = ["cs_gap_adversarial", "cs_gap_noise", "cs_gap_did"] + (list(EFFECTS) if network == "attacked" else [])
                for name in names:
                    metrics.update(per_seed_metrics(f"{name}_{tag}", _per_seed(result, attack, network, layer, name)))
    metrics.update(per_seed_metrics(REPRESENTATION.name,
                                    _per_seed(result, P.attack, "held-out", held_deepest, "cs_gap_did")))
    metrics.update(success_metrics(result.member_success))
    metrics.update({"attack": P.attack, "layer": deepest, "neuron_layer": conv, "heldout_layer": held_deepest,
                    "n_seeds": len(setup.seeds),
                    "k": P.k, "attacks": list(P.attacks)})
    return metrics


# ----------------------------------------------------------------------------- verdicts

def verdicts(result: Result, setup: S.Setup, metrics: dict[str, Any]) -> dict[str, str]:
    """Words the prose glues, decided by intervals."""
    out = claims.claim_words(CLAIMS, setup.P.public(), metrics)
    out["member_success_words"] = success_words(result.member_success)
    nets = network_layers(setup)
    for attack in setup.P.attacks:
        drops = [(layer, metrics[f"consistency_drop_{attack}_attacked_{layer}"]) for layer in nets["attacked"]]
        out[f"depth_{attack}"] = depth_words(drops)
    for network in NETWORKS:
        gaps = [(layer, metrics[f"cs_gap_adversarial_{setup.P.attack}_{network.replace('-', '')}_{layer}"])
                for layer in nets[network]]
        out[f"cs_depth_{network.replace('-', '')}"] = depth_words(gaps)
    return out


# ----------------------------------------------------------------------------- display helpers

def intervals(result: Result) -> pd.DataFrame:
    """One row per (seed, attack, network, layer, effect): estimate and interval."""
    return pd.DataFrame([{"seed": s, "attack": a, "network": n, "layer": layer, "effect": name, "estimate": e.estimate,
                          "lo": e.lo, "hi": e.hi} for (s, a, n, layer, name), e in result.effects.items()])


def layer_effects(result: Result) -> pd.DataFrame:
    """Per (attack, network, layer, effect): the interval over seeds and images (per-layer figures)."""
    return combine_frame(intervals(result), ["attack", "network", "layer", "effect"])


def by_setting(result: Result, network: str = "attacked") -> pd.DataFrame:
    """Mean consis per (attack, layer, set) over seeds, for one network."""
    t = result.neurons[result.neurons.network == network]
    return t.groupby(["attack", "layer", "set"], sort=False)[list(CONSISTENCY_METRICS)].mean()
