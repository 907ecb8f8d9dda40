"""Chapter 3's study: neuron and representation consistency on adversarial images (Dong et al.,
finding 2; version B's metric ``consis(n) = p^T A p``).

For every seed and attack: the per-neuron table of :func:`advinterp.interpret.dissection
.neuron_report` (consis on real probes, on adversarial probes by true and by target label) and
the per-layer representation measures of :func:`advinterp.interpret.dissection
.representation_report` (CS, r, LC to the true and the target class).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..core import progress
from ..core.params import Chapter, ChapterParams, at_most, integer, one_of
from ..core.validation import fail
from ..interpret.dissection import neuron_report, representation_report
from ..report.results import compare, settings_list, with_spread
from . import setting as S
from . import findings as F
from . import neurons
from .neurons import check_dissection

K_NN = integer("k_nn", 10, 1, None, "neighbours of LC")

#: the chapter's headline measures (chapter 8 reads them against eps)
CONSISTENCY_METRICS = ("consis_real", "consis_adv_true", "consis_adv_target")
REPRESENTATION_METRICS = ("cs_adv_to_true_class", "cs_adv_to_target_class")


def _relations(P: ChapterParams) -> None:
    check_dissection(P)
    if P.layers is not None and len(P.layers) < 2:
        fail("layers", P.layers, "None or at least two layers (the chapter compares layers)")
    one_of("attack", P.attack, "attacks", P.attacks)
    at_most("k_nn", P.k_nn, "n_reference", P.n_reference)


CHAPTER = Chapter("03-neuron-consistency", (
    *S.EXPERIMENT, S.ATTACKS, S.ATTACK, S.LAYERS, S.K, S.STATISTIC, S.AFFINITY, S.N_REFERENCE, K_NN, S.SEEDS,
    S.DEVICE, S.RESULTS_DIR), _relations)


def validate(namespace: dict[str, Any]) -> ChapterParams:
    """Check every parameter of chapter 3 (no data loaded, no model built)."""
    return CHAPTER.validate(namespace)


def setup(P: ChapterParams) -> ChapterParams:
    """As chapter 2 (:func:`advinterp.studies.neurons.setup`), with every analysed layer by default."""
    return neurons.setup(P, "all")


@dataclass
class Result:
    neurons: pd.DataFrame          # one row per (seed, attack, layer, neuron)
    representations: pd.DataFrame  # one row per (seed, attack, layer)

    @property
    def live(self) -> pd.DataFrame:
        return self.neurons[self.neurons.live]


def run(P: ChapterParams) -> Result:
    """Neuron and representation tables for every seed and attack."""
    neuron_rows, repr_rows = [], []
    jobs = [(s, a) for s in S.seed_list(P) for a in P.attacks]
    for seed, attack in progress.bar(jobs, desc="seeds x attacks"):
        exp = P.experiments[seed]
        adv = exp.adversarial(attack)
        target = exp.target_labels(adv)
        diss = neuron_report(exp.net, adv, target, P.layer_list, P.k, P.A, statistic=P.statistic)
        neuron_rows.append(diss.table.assign(seed=seed, attack=attack))
        rep = representation_report(exp.net, adv, target, P.layer_list, exp.reference(P.n_reference), P.A,
                                    k_nn=P.k_nn)
        repr_rows.append(rep.assign(seed=seed, attack=attack))
    return Result(pd.concat(neuron_rows, ignore_index=True), pd.concat(repr_rows, ignore_index=True))


def by_setting(result: Result) -> pd.DataFrame:
    """Mean consis of live neurons per (attack, layer)."""
    return result.live.groupby(["attack", "layer"], sort=False)[list(CONSISTENCY_METRICS)].mean()


def summarize(result: Result, P: ChapterParams) -> dict[str, Any]:
    """Chapter 3's metrics (the names are this function's); the headline is ``attack`` at the
    deepest layer."""
    live, reps = result.live, result.representations
    deepest = P.layer_list[-1]
    head_n = live[(live.attack == P.attack) & (live.layer == deepest)].groupby("seed")
    head_r = reps[(reps.attack == P.attack) & (reps.layer == deepest)].set_index("seed")
    metrics: dict[str, Any] = with_spread({
        **{m: head_n[m].mean() for m in CONSISTENCY_METRICS},
        "cs_adv_to_true_class": head_r["cs_true"], "cs_adv_to_target_class": head_r["cs_target"],
        "lc_true": head_r["lc_true"], "lc_target": head_r["lc_target"],
    })
    metrics.update({"attack": P.attack, "layer": deepest, "n_seeds": len(S.seed_list(P)), "k": P.k})
    by = by_setting(result)
    drops, no_drop = by[by.consis_adv_true < by.consis_real], by[by.consis_adv_true >= by.consis_real]
    metrics["n_settings"] = len(by)
    metrics["n_settings_drop"] = len(drops)
    metrics["consis_real_where_no_drop"] = no_drop.consis_real.mean() if len(no_drop) else float("nan")
    metrics["consis_real_where_drop"] = drops.consis_real.mean() if len(drops) else float("nan")
    gap = (reps.cs_target - reps.cs_true).groupby(reps.layer, sort=False).mean()
    metrics["cs_gap_first_layer"], metrics["cs_gap_deepest_layer"] = gap[P.layer_list[0]], gap[deepest]
    return metrics


def verdicts(result: Result, P: ChapterParams, metrics: dict[str, Any]) -> dict[str, str]:
    """Words the prose glues, decided by the numbers."""
    by = by_setting(result)
    rep_by = result.representations.groupby(["attack", "layer"], sort=False)[["cs_true", "cs_target"]].mean()
    return {
        "no_drop": settings_list(by[by.consis_adv_true >= by.consis_real].index) or "none",
        "closer_to_target": settings_list(rep_by[rep_by.cs_target > rep_by.cs_true].index) or "none",
        "consis_verdict": compare(metrics["consis_adv_true"], metrics["consis_real"], higher="above", lower="below"),
        "cs_verdict": compare(metrics["cs_adv_to_target_class"], metrics["cs_adv_to_true_class"],
                              higher="closer to the target class than to the true class",
                              lower="closer to the true class than to the target class"),
    }


#: the claims this chapter tests (decided the same way on its results at scale; intro scorecard)
CLAIMS = (
    F.claim("consistency_drop", "Dong et al. 2019 (workshop)", "Neuron consistency p^T A p is lower on adversarial "
            "images than on real images", CHAPTER.stem, ("consis_real", "consis_adv_true"),
            F.greater("consis_real", "consis_adv_true", "real", "adversarial")),
    F.claim("representations", "Dong et al. 2017", "Representations of adversarial images are inconsistent with "
            "those of real images: closer to the target class than to the true class", CHAPTER.stem,
            ("cs_adv_to_target_class", "cs_adv_to_true_class"),
            F.greater("cs_adv_to_target_class", "cs_adv_to_true_class", "to target", "to true")),
)
