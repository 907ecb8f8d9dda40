"""Chapter 5's study: tracing predictions to influential neurons, and the agreement-score detector of
adversarial inputs (Dong et al., version A, sec. 6; our reading), for the standard and the
consistent-loss model of chapter 4.

For every seed, model and traced layer: mine each neuron's concept on real training images, score
the correctly classified clean probes and the adversarial probes that fool the model (white-box
attacks made against it; the ensemble set is the common one) with ``s(x)``
(:mod:`advinterp.interpret.tracing`), unweighted and PD-weighted, and report the detector's ROC-AUC
beside two references on the same inputs: the same detector with the concepts shuffled among
neurons (its structural chance level) and the maximum softmax probability.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from ..attacks import linf
from ..attacks.advdata import AdversarialSet, cached_adversarial_set
from ..core.params import Chapter, ChapterParams, at_most, flag, integer, one_of
from ..interpret import affinity
from ..interpret.influence import BASELINE
from ..core.devices import derive_seed, generator
from ..interpret.tracing import (Tracer, agreement_score, build_tracer, detection_auc, detection_inputs, max_softmax,
                                 permuted_concepts, top1_concept_agreement)
from ..models.predict import predict
from ..report.results import compare, tolerance, with_spread
from ..training.loop import TrainedModel
from . import consistent_loss as ch4
from . import setting as S
from . import findings as F

LOG_ODDS = flag("log_odds", True, "PD in log2-odds (Zintgraf et al.) rather than probability, which saturates")
TOP_K = integer("top_k", 5, 1, 10_000, "influential neurons per prediction")
WEIGHTED = flag("weighted", False, "weight A[c(n), y_hat] by PD in s(x) (the headline; both are reported)")
TRACE_LAYERS = S.LAYERS.renamed("trace_layers", default=["conv2", "fc1"], help="layers whose neurons are traced "
                                "(None: `layer` only); the headline uses `layer`")
#: the models compared: chapter 4's standard model and its consistent-loss model
MODELS = ("standard", "cl")


def metric_name(measure: str, model: str) -> str:
    """The results name of a headline ``measure`` (e.g. ``detect_auc``) for ``model`` (one of
    :data:`MODELS`)."""
    return f"{measure}_{model}"


def _relations(P: ChapterParams) -> None:
    S.check_setting(P)
    ch4.check_training(P)
    one_of("attack", P.attack, "attacks", P.attacks)
    at_most("k", P.k, "n_reference", P.n_reference)
    S.check_layers("trace_layers", P.trace_layers, P.model)


CHAPTER = Chapter("05-tracing-and-detection", (
    *S.DATA, S.ENSEMBLE, S.EPOCHS, S.MAX_TRAIN, S.N_PROBE, S.EPS, S.ATTACK_STEPS, *ch4.TRAINING,
    S.ATTACKS.renamed("attacks", default=["fgsm", "pgd", "ensemble"], help="adversarial inputs the detector faces"),
    S.ATTACK.renamed("attack", default="pgd", help="the attack of the headline AUC (one of attacks)"),
    TRACE_LAYERS, BASELINE, LOG_ODDS, TOP_K, WEIGHTED, S.K, S.N_REFERENCE, S.AFFINITY, S.SEEDS, S.DEVICE, S.RESULTS_DIR),
    _relations)


def validate(namespace: dict[str, Any]) -> ChapterParams:
    """Check every parameter of chapter 5 (no data loaded, no model built)."""
    return CHAPTER.validate(namespace)


def setup(P: ChapterParams) -> ChapterParams:
    """Load the data and the class affinity; ``P.experiments`` (one per seed)."""
    S.load(P)
    P["A"] = affinity.for_dataset(P.bundle, P.affinity)
    P["experiments"] = S.experiments(P)
    return P


def models_for(exp: S.Experiment, P: ChapterParams) -> dict[str, TrainedModel]:
    """The standard and the consistent-loss model of chapter 4 (cached there)."""
    return {"standard": exp.trained(exp.model), "cl": ch4.consistent_model(exp, P)}


def adversarial_inputs(exp: S.Experiment, tm: TrainedModel, attack: str) -> AdversarialSet:
    """The adversarial probes a detector is evaluated on: single-model attacks made against ``tm``
    itself; the ensemble set is chapter 1's (made against the standard members)."""
    if linf.ATTACKS[attack].multi_model:
        return exp.adversarial(attack)
    return cached_adversarial_set(attack, [tm], exp.bundle, exp.probe_index, eps=exp.eps, steps=exp.attack_steps,
                                  seed=exp.seed, device=exp.device)


@dataclass
class Scores:
    """One (seed, model): its tracer, ``s(x)`` of the correctly classified clean probes, and of the
    successful adversarial probes of each attack."""

    tracer: Tracer
    clean: torch.Tensor
    adversarial: dict[str, torch.Tensor]


@dataclass
class Result:
    table: pd.DataFrame                       # one row per (seed, model, attack)
    scores: dict[tuple[int, str], Scores]
    models: dict[int, dict[str, TrainedModel]]


def traced_layers(P: ChapterParams) -> list[str]:
    """``layer`` (the headline) and the other ``trace_layers``."""
    return list(dict.fromkeys([P.layer, *(P.trace_layers or [])]))


def run(P: ChapterParams) -> Result:
    """Detector AUCs per (seed, model, layer, weighting, attack), with the permuted-concept and
    max-softmax references on the same inputs, and the headline scores behind them."""
    rows, scores, models = [], {}, {}
    for seed, exp in S.over_seeds(P, lambda s: P.experiments[s]).items():
        x, y = exp.probes()
        reference = exp.reference(P.n_reference)
        models[seed] = models_for(exp, P)
        for name, tm in models[seed].items():
            adversarial = {a: adversarial_inputs(exp, tm, a) for a in P.attacks}
            fooled = {a: detection_inputs(tm.model, adv.x, adv.y, adv.x_adv)[1] for a, adv in adversarial.items()}
            msp_clean = max_softmax(tm.model, x)
            for layer in traced_layers(P):
                tracer = build_tracer(tm.model, layer, reference, P.A, k=P.k, top_k=P.top_k, baseline=P.baseline,
                                      log_odds=P.log_odds)
                shuffled = permuted_concepts(tracer.concept, tracer.live, generator(derive_seed(seed, name, layer)))
                pd_clean, pred_clean = tracer.prediction_difference(x)
                ok = pred_clean == y
                clean_is_pred, _ = top1_concept_agreement(pd_clean[ok], pred_clean[ok], y[ok], tracer.concept)
                adv_pd = {a: tracer.prediction_difference(adversarial[a].x_adv[f]) for a, f in fooled.items() if f.any()}
                for weighted in (False, True):
                    def s_of(diff: torch.Tensor, pred: torch.Tensor, concept: torch.Tensor = tracer.concept,
                             w: bool = weighted) -> torch.Tensor:
                        return agreement_score(diff, pred, concept, P.A, P.top_k, weighted=w)

                    s_clean, s_clean_perm = s_of(pd_clean, pred_clean)[ok], s_of(pd_clean, pred_clean, shuffled)[ok]
                    headline = layer == P.layer and weighted == P.weighted
                    entry = Scores(tracer, s_clean, {})
                    for attack, adv in adversarial.items():
                        f = fooled[attack]
                        row: dict[str, object] = {
                            "seed": seed, "model": name, "layer": layer, "weighted": weighted, "attack": attack,
                            "n_clean": int(ok.sum()), "n_adversarial": int(f.sum()),
                            "agreement_clean": float(s_clean.mean()), "pd_top1_mean": float(pd_clean.max(1).values[ok].mean()),
                            "clean_concept_is_pred": clean_is_pred, "auc": float("nan"), "auc_permuted": float("nan"),
                            "auc_msp": float("nan"), "agreement_adv": float("nan"),
                            "adv_concept_is_pred": float("nan"), "adv_concept_is_true": float("nan")}
                        s_adv = torch.empty(0)
                        if attack in adv_pd and ok.any():
                            diff, pred = adv_pd[attack]
                            s_adv = s_of(diff, pred)
                            row.update(auc=detection_auc(s_clean, s_adv), agreement_adv=float(s_adv.mean()),
                                       auc_permuted=detection_auc(s_clean_perm, s_of(diff, pred, shuffled)),
                                       auc_msp=detection_auc(msp_clean[ok], max_softmax(tm.model, adv.x_adv[f])))
                            row["adv_concept_is_pred"], row["adv_concept_is_true"] = top1_concept_agreement(
                                diff, pred, adv.y[f], tracer.concept)
                        entry.adversarial[attack] = s_adv
                        rows.append(row)
                    if headline:
                        scores[(seed, name)] = entry
    return Result(pd.DataFrame(rows), scores, models)


def headline(result: Result, P: ChapterParams) -> pd.DataFrame:
    """The rows of the headline layer and weighting."""
    t = result.table
    return t[(t.layer == P.layer) & (t.weighted == P.weighted)]


def example_cases(result: Result, P: ChapterParams) -> list[dict[str, object]]:
    """Per model (first seed): a correctly classified probe, a misclassified real probe (if any) and
    a successful adversarial probe of ``P.attack`` (if any), as rows for
    :func:`advinterp.report.plotting.explanations`."""
    seed = S.seed_list(P)[0]
    exp = P.experiments[seed]
    x, y = exp.probes()
    cases: list[dict[str, object]] = []
    for name, tm in result.models[seed].items():
        pred = predict(tm.model, x)
        adv = adversarial_inputs(exp, tm, P.attack)
        _, fooled = detection_inputs(tm.model, adv.x, adv.y, adv.x_adv)
        picks = [("correct", x, pred == y), ("misclassified", x, pred != y), (P.attack.upper(), adv.x_adv, fooled)]
        for title, images, mask in picks:
            idx = torch.nonzero(mask).flatten()
            if len(idx):
                cases.append({"title": f"{name}: {title}\ntrue: {exp.bundle.classes[int(y[idx[0]])]}",
                              "image": images[idx[0]], "tracer": result.scores[(seed, name)].tracer})
    return cases


def summarize(result: Result, P: ChapterParams) -> dict[str, Any]:
    """Chapter 5's metrics (the names are this function's): ``<measure>_<model>`` for the headline
    layer, weighting and attack, ``auc_<attack>_<model>`` for every attack."""
    table = headline(result, P)
    head = table[table.attack == P.attack]
    by_model = {m: head[head.model == m] for m in MODELS}
    metrics: dict[str, Any] = with_spread({
        **{metric_name("detect_auc", m): by_model[m]["auc"] for m in MODELS},
        **{metric_name("detect_auc_permuted", m): by_model[m]["auc_permuted"] for m in MODELS},
        **{metric_name("detect_auc_msp", m): by_model[m]["auc_msp"] for m in MODELS},
        **{metric_name("agreement_clean", m): by_model[m]["agreement_clean"] for m in MODELS},
        **{metric_name("agreement_adv", m): by_model[m]["agreement_adv"] for m in MODELS},
        **{metric_name("pd_top1_mean", m): by_model[m]["pd_top1_mean"] for m in MODELS},
        **{metric_name("n_adversarial", m): by_model[m]["n_adversarial"] for m in MODELS},
        "adv_concept_is_pred_standard": by_model["standard"]["adv_concept_is_pred"],
        "adv_concept_is_true_standard": by_model["standard"]["adv_concept_is_true"],
        "clean_concept_is_pred_standard": by_model["standard"]["clean_concept_is_pred"],
    })
    metrics.update({"attack": P.attack, "lambda_cl": P.lambda_cl, "top_k": P.top_k, "n_seeds": len(S.seed_list(P)),
                    "layer": P.layer})
    for a in P.attacks:
        for m in MODELS:
            metrics[f"auc_{a}_{m}"] = float(table[(table.attack == a) & (table.model == m)]["auc"].mean())
    # the best any (layer, weighting) reached, and how far it stands above its own permuted control
    full = result.table[result.table.attack == P.attack].groupby(["model", "layer", "weighted"])[
        ["auc", "auc_permuted"]].mean()
    margin = full["auc"] - full["auc_permuted"]
    metrics["detect_auc_best"] = float(full["auc"].max())
    metrics["detect_margin_best"] = float(margin.max())
    return metrics


def settings_table(result: Result, P: ChapterParams) -> pd.DataFrame:
    """Mean AUC and its references per (model, layer, weighting, attack), over seeds."""
    return result.table.groupby(["model", "layer", "weighted", "attack"], sort=False)[
        ["agreement_clean", "agreement_adv", "auc", "auc_permuted", "auc_msp", "n_adversarial"]].mean()


def verdicts(result: Result, P: ChapterParams, metrics: dict[str, Any]) -> dict[str, str]:
    """Words the prose glues, decided by the numbers."""
    def vs(a: str, b: str, **words: str) -> str:
        return compare(metrics[a], metrics[b], tol=tolerance(metrics[a + "_std"], metrics[b + "_std"]), **words)

    return {
        "detect_verdict": vs("detect_auc_cl", "detect_auc_standard"),
        "chance_verdict": compare(min(metrics["detect_auc_cl"], metrics["detect_auc_standard"]), 0.5, tol=CHANCE_TOL,
                                  higher="above", lower="below", same="at"),
        "permuted_verdict_standard": vs("detect_auc_standard", "detect_auc_permuted_standard", higher="above",
                                        lower="below", same="no different from"),
        "permuted_verdict_cl": vs("detect_auc_cl", "detect_auc_permuted_cl", higher="above", lower="below",
                                  same="no different from"),
        "msp_verdict": vs("detect_auc_msp_standard", "detect_auc_standard", higher="better than",
                          lower="worse than", same="as good as"),
    }


def tracing_verdict(m: F.Metrics) -> tuple[str, str]:
    """Holds when the agreement detector on the consistent-loss model is above chance (0.5 + 0.02)
    and above its permuted-neuron control beyond the spread; mixed when above chance only."""
    number = f"AUC {F.value(m, 'detect_auc_cl')} (permuted control {F.value(m, 'detect_auc_permuted_cl')})"
    above_chance = float(m["detect_auc_cl"]) > 0.5 + CHANCE_TOL
    if above_chance and F.exceeds(m, "detect_auc_cl", "detect_auc_permuted_cl") > 0:
        return F.HOLDS, number
    return (F.MIXED if above_chance else F.FAILS), number


#: an AUC within this of 0.5 is chance
CHANCE_TOL = 0.02

#: the claim this chapter tests (decided the same way on its results at scale; intro scorecard)
CLAIMS = (
    F.claim("tracing", "Dong et al. 2017", "After consistent-loss training, tracing a prediction to its influential "
            "neurons detects adversarial inputs (above chance and above a permuted-neuron control)", CHAPTER.stem,
            ("detect_auc_cl", "detect_auc_permuted_cl"), tracing_verdict),
)
