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
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..attacks.advdata import AdversarialSet
from ..interpret import layer_stats
from ..interpret.dissection import fooled
from ..models.architectures import analysed_layers
from ..models.predict import predict
from ..core.params import ChapterParams, at_most
from ..report.uncertainty import SeedEffect, from_replicates, resamples
from . import setting as S

Summaries = Mapping[str, np.ndarray]
EffectFn = Callable[[Summaries, Summaries], np.ndarray]
#: the two perturbed sets compared
SETS = ("adversarial", "noise")
#: the networks dissected: the attacked one (chapter 1's ``model``) and the held-out one
NETWORKS = ("attacked", "held-out")


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


@dataclass
class LayerDissection:
    """One network on one adversarial set: a row per (layer, set) with every summary, and the
    interval of each named effect per layer."""

    rows: list[dict[str, Any]]
    effects: dict[tuple[str, str], SeedEffect]


def perturbed_layers(net: torch.nn.Module, adv: AdversarialSet, control: AdversarialSet, layers: Sequence[str],
                     k: int, A: torch.Tensor, *, statistic: str, n_boot: int, seed: int,
                     effects: Mapping[str, EffectFn]) -> LayerDissection:
    """Dissect ``net`` on the probes ``adv`` fools it with (correct before, wrong after), perturbed by
    the attack and by ``control`` (the same probes), both read against the attack's target labels
    (its target, or ``net``'s prediction for an untargeted attack). K is fixed for both sets by
    :func:`advinterp.interpret.layer_stats.selection_k`; too few fooled images give NaN effects."""
    if not torch.equal(adv.x, control.x):
        raise ValueError("the control must perturb the adversarial set's own probes")
    mask = fooled(net, adv)
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


def dissected_deepest(observed: Mapping[str, Any]) -> str:
    """The deepest layer chapters 2-3 dissect in the attacked network, read from a results file's
    params (``layers``, else ``model``'s default layers: the last of "deepest" and of "all" agree)."""
    return list(observed.get("layers") or analysed_layers(str(observed["model"]), "deepest"))[-1]
