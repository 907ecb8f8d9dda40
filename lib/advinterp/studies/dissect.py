"""What chapters 2 and 3 share: a network dissected layer by layer on the images an adversarial set
fools it with, next to the same images under the random-sign control of the same budget, each
effect with a bootstrap interval over the images (one resample serves both sets, so every effect
that compares them is paired).

``effects`` maps a name to a function of the two sets' summaries (``adversarial`` and ``control``:
:func:`advinterp.interpret.layer_stats.summarize_many`, arrays over resamples), e.g.
``lambda adv, ctl: adv["agreement_gap"]`` (chapter 2) or
``lambda adv, ctl: ctl["consis_adv_true"] - adv["consis_adv_true"]`` (chapter 3).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..attacks import linf
from ..attacks.advdata import AdversarialSet
from ..models.architectures import MODELS, analysed_layers
from ..models.predict import predict
from ..core.params import ChapterParams, at_most
from ..report.results import with_spread
from ..report.settings import Setting
from . import setting as S

#: the least targeted success a targeted adversarial set must reach on every network it was made
#: against for chapters 2-3 to decide a claim on it: below it, the set is a weak tool (the claims ask
#: what a *successful* attack does to neurons; an attack that reaches its target on a third of one
#: member's images says little about any)
MIN_MEMBER_SUCCESS = 0.9


def member_success(exp: S.Experiment, attack: str, adv: AdversarialSet) -> dict[str, float]:
    """Targeted success of ``adv`` (made by ``attack``) on each network it was made against: among
    the probes the network classifies correctly, the share it labels as the target afterwards
    (chapter 1's transfer table); empty for an untargeted set."""
    if not adv.targeted:
        return {}
    return {name: linf.targeted_success(predict(m.model, adv.x), predict(m.model, adv.x_adv), adv.y, adv.target)
            for name, m in exp.attacked(attack).items()}


def success_metrics(per_seed: Mapping[int, Mapping[str, float]]) -> dict[str, Any]:
    """Per seed, each member's targeted success and the weakest one's (``member_success_min``):
    what :func:`weak_set` reads."""
    seeds = sorted(per_seed)
    if not seeds or not per_seed[seeds[0]]:
        return {}
    names = list(per_seed[seeds[0]])
    return with_spread({**{f"member_success_{n}": [per_seed[s][n] for s in seeds] for n in names},
                        "member_success_min": [min(per_seed[s].values()) for s in seeds]})


def weak_set(m: Mapping[str, Any]) -> str | None:
    """Why a claim on the headline adversarial set is not decided (a claim's ``applies``): some seed's
    set reaches its target on fewer than :data:`MIN_MEMBER_SUCCESS` of a member's images. None when it
    is strong enough, untargeted, or the results predate the measurement."""
    per_seed = m.get("member_success_min_per_seed")
    if not per_seed or min(per_seed) >= MIN_MEMBER_SUCCESS:
        return None
    return (f"the adversarial set reaches its target on only {min(per_seed):.0%} of the weakest member's correctly "
            f"classified probes (worst seed), short of the {MIN_MEMBER_SUCCESS:.0%} a dissection needs: members that "
            "can be driven to a target at this budget would settle it (chapter 1's table gives each member's rate)")


def success_words(per_seed: Mapping[int, Mapping[str, float]]) -> str:
    """The headline set's targeted success on each member (``{seed: {member: rate}}``), in words
    (mean over seeds), and whether it is strong enough for the dissection to decide a claim
    (:func:`weak_set`)."""
    metrics = success_metrics(per_seed)
    if not metrics:
        return "(an untargeted set: no target to reach)"
    names = list(next(iter(per_seed.values())))
    each = ", ".join(f"`{n}` {metrics[f'member_success_{n}']:.1%}" for n in names)
    return (f"{each} (mean over seeds); " + (f"under {MIN_MEMBER_SUCCESS:.0%} on a member in at least one seed, so the "
            "claims on it are not decided" if weak_set(metrics) else f"at least {MIN_MEMBER_SUCCESS:.0%} on every "
            "member in every seed, so the dissection tests a successful attack"))


def check_dissection(P: ChapterParams) -> None:
    """Relations of the dissection parameters (chapters 2-3)."""
    S.check_setting(P)
    S.check_layers("layers", P.get("layers"), P.model)
    at_most("k", P.k, "n_probe", P.n_probe)
    if "k_show" in P:
        at_most("k_show", P.k_show, "k", P.k)


def depth_words(gaps: Sequence[tuple[str, float]]) -> str:
    """How an effect changes from the earliest to the deepest layer, in words."""
    (first, a), (last, b) = gaps[0], gaps[-1]
    if len(gaps) == 1 or np.isnan(a) or np.isnan(b):
        return f"{b:+.3f} at `{last}`"
    trend = "grows" if b > a else "shrinks" if b < a else "stays"
    return f"{trend} from {a:+.3f} at `{first}` to {b:+.3f} at `{last}`"


def dissected_layers(observed: Mapping[str, Any]) -> list[str]:
    """The layers chapters 2-3 dissect in the attacked network, read from a results file's params
    (``layers``, else ``model``'s default layers)."""
    return list(observed.get("layers") or analysed_layers(str(observed["model"]), "deepest"))


def dissected_deepest(observed: Mapping[str, Any]) -> str:
    """The deepest layer chapters 2-3 dissect in the attacked network (the last of "deepest" and of
    "all" agree): for a small CNN the dense layer feeding the logits."""
    return dissected_layers(observed)[-1]


def dong_layer(observed: Mapping[str, Any]) -> str:
    """The layer Dong et al.'s neuron rows dissect: the last conv layer (block) among the dissected ones,
    whose channels have receptive fields and patches (AlexNet's conv5, VGG-16's conv5_3, ResNet-18's
    layer4: docs/papers.md), each channel's activation the spatial max of its map; the deepest dissected layer
    for a network without one (a perceptron)."""
    layers = dissected_layers(observed)
    model = MODELS.get(str(observed.get("model")))
    conv = [layer for layer in layers if model is not None and layer in model.conv_layers]
    return conv[-1] if conv else layers[-1]


#: the commit that declared the dense-layer extension rows of chapters 2-3 (issue 44, item 6: Dong et al.'s
#: neuron rows moved to the last conv layer, the dense layer became an extension)
DENSE_DECLARED = "746b22f"


def dense_extension(observed: Mapping[str, Any]) -> str | None:
    """Why the dense-layer extension of a neuron row is not measured (a claim's ``applies``): the deepest
    dissected layer is the paper's conv layer itself. None when a dense layer is dissected beyond it."""
    try:
        if dissected_deepest(observed) == dong_layer(observed):
            return "no layer is dissected beyond the paper's last conv layer"
    except KeyError as missing:
        return f"the results lack the parameter {missing} that locates the layer"
    return None


#: Dong et al.'s settings shared by chapters 2-5 (docs/papers.md, sec. 1): their networks, the neuron's
#: activation and the top-K images that define a neuron's concept
DONG_NETWORK = Setting("network", ("dataset", "model"), "AlexNet, VGG-16, ResNet-18 on ILSVRC-2012")
DONG_ACTIVATION = Setting("neuron activation", ("statistic",), "not stated (our reading: spatial max of the channel map)")
DONG_TOP_K = Setting("top-K images per neuron", ("k",), "not stated (docs/papers.md: one of 20, 50, 100)")


def layer_words(which: str) -> Callable[[Mapping[str, Any]], str]:
    """How a settings table words a run's ``layers``: as given, or ``model``'s ``which`` analysed layers
    (:func:`advinterp.studies.setting.setup`'s choice when ``layers`` is None)."""
    def words(params: Mapping[str, Any]) -> str:
        given = params.get("layers")
        if given:
            return ", ".join(given)
        return ", ".join(analysed_layers(params["model"], which)) + f" ({which} of {params['model']})"
    return words
