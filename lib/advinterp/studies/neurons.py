"""Chapter 2's study: what a neuron's top images are, real and adversarial (Dong et al., finding 1).

For every seed: dissect chapter 1's network on its adversarial dataset (:func:`advinterp.interpret
.dissection.neuron_report`): each neuron's top-K real images, top-K adversarial images, and how
often those adversarial images carry the neuron's dominant real class as *target* versus as *true*
label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from ..attacks.advdata import AdversarialSet
from ..core.params import Chapter, ChapterParams, at_most, integer, number
from ..interpret import affinity
from ..interpret.dissection import Dissection, most_consistent, neuron_gallery_rows, neuron_report
from ..models.architectures import analysed_layers
from ..report.results import compare, concat_seeds, layer_summary, with_spread
from . import setting as S
from . import findings as F

PATCH_QUANTILE = number("patch_quantile", 0.005, 0.0, 0.5, "patches: where the channel map is in its top "
                        "quantile of values", lo_open=True)
N_SHOW = integer("n_show", 3, 1, 50, "neurons shown per layer in the galleries")
K_SHOW = integer("k_show", 8, 1, None, "top images shown per neuron")


def check_dissection(P: ChapterParams) -> None:
    """Relations of the dissection parameters (chapters 2-4)."""
    S.check_setting(P)
    S.check_layers("layers", P.get("layers"), P.model)
    at_most("k", P.k, "n_probe", P.n_probe)
    if "k_show" in P:
        at_most("k_show", P.k_show, "k", P.k)


def _relations(P: ChapterParams) -> None:
    check_dissection(P)


CHAPTER = Chapter("02-neurons-and-patches", (
    *S.EXPERIMENT, S.ATTACK, S.LAYERS, S.K, S.STATISTIC, S.AFFINITY, PATCH_QUANTILE, N_SHOW, K_SHOW, S.SEEDS,
    S.DEVICE, S.RESULTS_DIR), _relations)


def validate(namespace: dict[str, Any]) -> ChapterParams:
    """Check every parameter of chapter 2 (no data loaded, no model built)."""
    return CHAPTER.validate(namespace)


def setup(P: ChapterParams, default_layers: str = "deepest") -> ChapterParams:
    """Load the data and the class affinity; ``P.layer_list`` (``layers``, else the model's
    ``default_layers``: ``"deepest"`` conv + first dense, or ``"all"``) and ``P.experiments`` (one
    per seed). Chapter 3 sets up the same way."""
    S.load(P)
    P["A"] = affinity.for_dataset(P.bundle, P.affinity)
    P["layer_list"] = P.layers or analysed_layers(P.model, default_layers)
    P["experiments"] = S.experiments(P)
    return P


@dataclass
class SeedDissection:
    """One seed's adversarial set, its target labels and the dissection."""

    experiment: S.Experiment
    adversarial: AdversarialSet
    target: torch.Tensor
    dissection: Dissection


@dataclass
class Result:
    table: pd.DataFrame                  # one row per (seed, layer, neuron)
    runs: dict[int, SeedDissection]


def run(P: ChapterParams) -> Result:
    """Dissect every seed's network on its adversarial set."""
    def one(seed: int) -> SeedDissection:
        exp = P.experiments[seed]
        adv = exp.adversarial(P.attack)
        target = exp.target_labels(adv)
        return SeedDissection(exp, adv, target, neuron_report(exp.net, adv, target, P.layer_list, P.k, P.A,
                                                              statistic=P.statistic, quantile=P.patch_quantile))

    runs = S.over_seeds(P, one)
    return Result(concat_seeds({s: r.dissection.table for s, r in runs.items()}), runs)


def gallery_rows(result: Result, P: ChapterParams) -> list[dict[str, object]]:
    """Rows of :func:`advinterp.report.plotting.neuron_rows`: the ``n_show`` purest neurons of each
    layer of the first seed, their top real images (with patches) and top adversarial images."""
    r = result.runs[S.seed_list(P)[0]]
    return [row for layer, neuron in most_consistent(r.dissection.table, P.n_show)
            for row in neuron_gallery_rows(r.experiment.net, r.dissection, r.adversarial, r.target, layer, neuron,
                                           P.bundle.classes, P.k_show)]


def by_layer(result: Result) -> pd.DataFrame:
    """Mean agreement and real consistency of live neurons per layer."""
    live = result.table[result.table.live]
    return live.groupby("layer")[["target_agreement", "true_agreement", "consis_real"]].mean()


def summarize(result: Result, P: ChapterParams) -> dict[str, Any]:
    """Chapter 2's metrics (the names are this function's)."""
    table = result.table
    per_seed = table[table.live].groupby("seed")[["target_agreement", "true_agreement"]].mean()
    metrics: dict[str, Any] = with_spread({
        "topk_target_agreement": per_seed["target_agreement"], "topk_true_agreement": per_seed["true_agreement"],
        "n_live_neurons": table.groupby("seed")["live"].sum(),
    })
    metrics.update({"k": P.k, "n_neurons": int(len(table) / len(S.seed_list(P))), "n_seeds": len(S.seed_list(P))})
    for layer, row in by_layer(result).iterrows():
        metrics[f"target_agreement_{layer}"] = row["target_agreement"]
        metrics[f"true_agreement_{layer}"] = row["true_agreement"]
    return metrics


def verdicts(result: Result, P: ChapterParams, metrics: dict[str, Any]) -> dict[str, str]:
    """Words the prose glues, decided by the numbers."""
    return {
        "agreement_verdict": compare(metrics["topk_target_agreement"], metrics["topk_true_agreement"],
                                     higher="more often", lower="less often"),
        "layer_summary": layer_summary(by_layer(result), {"target_agreement": "target", "true_agreement": "true"}),
    }


#: the claim this chapter tests (decided the same way on its results at scale; intro scorecard)
CLAIMS = (
    F.claim("patches", "Dong et al. 2017", "Neurons respond to discriminative patches, not semantic concepts: on "
            "adversarial images, a neuron's top-K images agree with the attack's target class more often than with "
            "their true class", CHAPTER.stem, ("topk_target_agreement", "topk_true_agreement"),
            F.greater("topk_target_agreement", "topk_true_agreement", "target", "true")),
)
