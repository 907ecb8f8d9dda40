"""Chapter 5's study: tracing predictions to influential neurons, and the agreement-score detector of
adversarial inputs (Dong et al., version A, sec. 6; our reading), for the standard and the
consistent-loss model of chapter 4.

For every seed, model and traced layer: mine each neuron's concept on real training images, score
the correctly classified clean probes and the adversarial probes that fool the model (white-box
attacks made against it; the ensemble set is chapter 1's) with ``s(x)``
(:mod:`advinterp.interpret.tracing`), unweighted and PD-weighted, and report the detector's ROC-AUC
beside two references on the same inputs:

* the **permutation null**: the same detector with the concepts shuffled among the live neurons,
  ``n_permutations`` times (:func:`advinterp.interpret.tracing.permuted_scores`); its mean and 95 %
  quantile are the detector's chance level;
* the **maximum softmax probability** (MSP), the classifier's own confidence.

The claims (intervals on AUROC differences on the same cases, paired per case:
:mod:`advinterp.core.auroc`): the detector on the consistent-loss model works (above its null's mean;
above MSP is an extension the book adds), and it works better on the consistent-loss model than on the
standard one, compared on the same source images (correct for both; their own attack fools both).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..attacks import linf
from ..attacks.advdata import AdversarialSet, cached_adversarial_set
from ..core.devices import derive_seed, generator
from ..core.params import Chapter, ChapterParams, at_most, flag, integer, one_of
from ..interpret.influence import BASELINE
from ..interpret.tracing import (Tracer, agreement_score, build_tracer, detection_auc, max_softmax, permuted_scores,
                                 rank_auc, top1_concept_agreement)
from ..models.predict import predict
from ..report.results import with_spread
from ..core.auroc import auroc_interval
from ..report.settings import Setting
from ..interpret.affinity import AFFINITY
from ..core.stats import SeedEffect, from_metrics, per_seed_metrics
from ..report.verdicts import above_words, decide
from ..training.loop import TrainedModel
from ..report import claims
from . import SideBySide, default_validate
from . import setting as S
from .dissect import DONG_NETWORK
from . import variants as V


# ----------------------------------------------------------------------------- declarations

LOG_ODDS = flag("log_odds", True, "PD in log2-odds (Zintgraf et al.) rather than probability, which saturates")

TOP_K = integer("top_k", 5, 1, 10_000, "influential neurons per prediction")

WEIGHTED = flag("weighted", False, "weight A[c(n), y_hat] by PD in s(x) (the headline; both are reported)")

TRACE_LAYERS = S.LAYERS.renamed("trace_layers", default=["conv2", "fc1"], help="layers whose neurons are traced "
                                "(None: `layer` only); the headline uses `layer`")

N_PERMUTATIONS = integer("n_permutations", 200, 20, 100_000, "concept permutations of the null (headline layer)")

#: the models compared: chapter 4's standard model and its consistent-loss model
MODELS = ("standard", "cl")


def metric_name(measure: str, model: str) -> str:
    """The results name of a headline ``measure`` (e.g. ``detect_auc``) for ``model`` (one of
    :data:`MODELS`)."""
    return f"{measure}_{model}"


#: what chapter 8 reads: the detector's AUC of each model
SIDE_BY_SIDE = SideBySide(cells={"detect_auc": {m: metric_name("detect_auc", m) for m in MODELS}})


def _relations(P: ChapterParams) -> None:
    S.check_setting(P)
    V.check_training(P)
    one_of("attack", P.attack, "attacks", P.attacks)
    at_most("k", P.k, "n_reference", P.n_reference)
    S.check_layers("trace_layers", P.trace_layers, P.model)


CHAPTER = Chapter("05-tracing-and-detection", (
    *S.DATA, S.ENSEMBLE, S.ENSEMBLE_LOSS, S.EPOCHS, S.MAX_TRAIN, S.N_PROBE, S.EPS, S.ATTACK_STEPS, *V.TRAINING,
    S.ATTACKS.renamed("attacks", default=["fgsm", "pgd", "ensemble"], help="adversarial inputs the detector faces"),
    S.ATTACK.renamed("attack", default="pgd", help="the attack of the headline AUC (one of attacks)"),
    TRACE_LAYERS, BASELINE, LOG_ODDS, TOP_K, WEIGHTED, S.K, S.N_REFERENCE, N_PERMUTATIONS, AFFINITY, S.SEEDS,
    S.DEVICE, S.RESULTS_DIR), _relations)

validate = default_validate(CHAPTER)


def _effect(kind: str, what: str, model: str) -> claims.Effect:
    return claims.Effect(f"effect_tracing_{kind}_{model}", f"{MODEL_WORDS[model]}: detector AUC minus {what}", 0.02,
                           "two points of AUROC, the smallest gain detection papers report", declared="6838ddf")


#: how the effects name the models
MODEL_WORDS = {"cl": "consistent-loss model", "standard": "standard model"}


def detects(model: str) -> tuple[claims.Effect, claims.Effect]:
    """The detector's effects on ``model``: against its permutation null's mean, and against MSP."""
    return _effect("vs_null", "its permutation null's mean", model), _effect("vs_msp", "the max-softmax AUC", model)


#: the effects the claims are decided by
DETECTS = detects("cl")

CL_VS_STANDARD = claims.Effect(
    "effect_tracing_cl_vs_standard", "detector AUC on the consistent-loss model minus on the standard one, same "
    "source images", 0.02, "two points of AUROC, the smallest gain detection papers report", declared="6838ddf")

#: the claims this chapter tests (decided the same way on its results at scale; intro scorecard)
CLAIMS = (
    claims.claim("tracing", "Dong et al. 2017", "After consistent-loss training, tracing a prediction to its "
                   "influential neurons detects adversarial inputs above chance (its AUC against the mean of a "
                   "null with the neurons' concepts permuted)", CHAPTER.stem, DETECTS[0],
                   short="tracing detects adversarial inputs (above chance)"),
    claims.claim("tracing_msp", "Dong et al. 2017", "... and better than the classifier's own confidence "
                   "(max softmax), a bar the paper does not set", CHAPTER.stem, DETECTS[1], protocol="extension",
                   extends="tracing", short="... better than max-softmax"),
    claims.claim("tracing_cl", "Dong et al. 2017", "Tracing detects adversarial inputs better on the "
                   "consistent-loss model than on the standard model", CHAPTER.stem, CL_VS_STANDARD,
                   short="tracing detects better after consistent-loss training"),
)

#: what ran beside what the paper ran (the page's settings table; docs/papers.md gives the paper's values)
SETTINGS = (
    DONG_NETWORK,
    Setting('models compared', ('lambda_cl',),
            'standard and consistent-loss model (its settings: see chapter 4)'),
    Setting('adversarial inputs detected', ('attacks', 'attack'),
            'not stated'),
    Setting('attack budget and steps', ('eps', 'attack_steps'),
            'not stated'),
    Setting('traced layers', ('trace_layers',),
            'not stated'),
    Setting('prediction difference', ('baseline', 'log_odds'),
            'not stated (our reading: baseline 0 or neuron mean; probability or log2-odds form, Zintgraf et al.)'),
    Setting('influential neurons per prediction', ('top_k',),
            'top-k (k not stated)'),
    Setting('detection score', ('weighted',),
            'not stated (our reading: unweighted mean of A[c(n), y_hat])'),
    Setting('top-K images defining a concept', ('k',),
            'not stated (docs/papers.md: one of 20, 50, 100)'),
)


# ----------------------------------------------------------------------------- setup

def setup(P: ChapterParams) -> S.Setup:
    """Load the data and the class affinity; one experiment per seed."""
    return S.setup(P, with_affinity=True)


# ----------------------------------------------------------------------------- run

def models_for(exp: S.Experiment, P: ChapterParams) -> dict[str, TrainedModel]:
    """The standard and the consistent-loss model of chapter 4 (cached there)."""
    return {"standard": exp.trained(exp.model), "cl": V.consistent_model(exp, V.Training.from_params(P))}


def adversarial_inputs(exp: S.Experiment, tm: TrainedModel, attack: str) -> AdversarialSet:
    """The adversarial probes a detector is evaluated on: single-model attacks made against ``tm``
    itself; the ensemble set is chapter 1's (made against the standard members)."""
    if linf.ATTACKS[attack].multi_model:
        return exp.adversarial(attack)
    return cached_adversarial_set(attack, [tm], exp.bundle, exp.probe_index, eps=exp.eps, steps=exp.attack_steps,
                                  seed=exp.seed, device=exp.device)


@dataclass
class Scores:
    """One (seed, model) at the headline layer and weighting: its tracer, ``s(x)`` and MSP of every
    clean probe, masks of the probes it gets right, and per attack ``s(x)`` and MSP of every
    adversarial probe with the mask of those that fool it."""

    tracer: Tracer
    clean: torch.Tensor
    msp_clean: torch.Tensor
    ok: torch.Tensor
    adversarial: dict[str, torch.Tensor] = field(default_factory=dict)
    msp_adversarial: dict[str, torch.Tensor] = field(default_factory=dict)
    fooled: dict[str, torch.Tensor] = field(default_factory=dict)
    #: per attack, the permutation null's detector scores ``(n_permutations, scored cases)``: the clean
    #: probes it gets right, then the adversarial probes that fool it (as ``-s(x)``)
    null: dict[str, np.ndarray] = field(default_factory=dict)

    def scored(self) -> Scores:
        """The scores a detector is evaluated on: clean probes it gets right, adversarial probes
        that fool it (for :func:`advinterp.report.figures.detection.detector_curves`)."""
        return Scores(self.tracer, self.clean[self.ok], self.msp_clean[self.ok], self.ok[self.ok],
                      {a: s[self.fooled[a]] for a, s in self.adversarial.items()},
                      {a: s[self.fooled[a]] for a, s in self.msp_adversarial.items()},
                      {a: f[f] for a, f in self.fooled.items()}, self.null)


@dataclass
class Result:
    table: pd.DataFrame                       # one row per (seed, model, layer, weighting, attack)
    scores: dict[tuple[int, str], Scores]
    models: dict[int, dict[str, TrainedModel]]


def traced_layers(P: ChapterParams) -> list[str]:
    """``layer`` (the headline) and the other ``trace_layers``."""
    return list(dict.fromkeys([P.layer, *(P.trace_layers or [])]))


def _auc_or_nan(clean: torch.Tensor, adv: torch.Tensor) -> float:
    return detection_auc(clean, adv) if len(clean) and len(adv) else float("nan")


def run(setup: S.Setup) -> Result:
    """Detector AUCs per (seed, model, layer, weighting, attack) with their references on the same
    inputs; the headline scores (every probe, with masks) behind the claims."""
    P, A = setup.P, setup.A
    rows, scores, models = [], {}, {}
    for seed, exp in S.each_seed(setup):
        x, y = exp.probes()
        reference = exp.reference(P.n_reference)
        models[seed] = models_for(exp, P)
        for name, tm in models[seed].items():
            adversarial = {a: adversarial_inputs(exp, tm, a) for a in P.attacks}
            pred_clean = predict(tm.model, x)
            ok = pred_clean == y
            fooled = {a: ok & (predict(tm.model, adv.x_adv) != y) for a, adv in adversarial.items()}
            msp_clean = max_softmax(tm.model, x)
            msp_adv = {a: max_softmax(tm.model, adv.x_adv) for a, adv in adversarial.items()}
            for layer in traced_layers(P):
                tracer = build_tracer(tm.model, layer, reference, A, k=P.k, top_k=P.top_k, baseline=P.baseline,
                                      log_odds=P.log_odds)
                pd_clean, _ = tracer.prediction_difference(x)
                clean_is_pred, _ = top1_concept_agreement(pd_clean[ok], pred_clean[ok], y[ok], tracer.concept)
                adv_pd = {a: tracer.prediction_difference(adv.x_adv) for a, adv in adversarial.items()}
                for weighted in (False, True):
                    headline = layer == P.layer and weighted == P.weighted
                    s_clean = agreement_score(pd_clean, pred_clean, tracer.concept, A, P.top_k, weighted=weighted)
                    entry = Scores(tracer, s_clean, msp_clean, ok)
                    for attack, adv in adversarial.items():
                        f = fooled[attack]
                        diff, pred = adv_pd[attack]
                        s_adv = agreement_score(diff, pred, tracer.concept, A, P.top_k, weighted=weighted)
                        null, null_scores = np.full(1, np.nan), np.full((1, 0), np.nan)
                        if headline and ok.any() and f.any():
                            g = generator(derive_seed(seed, name, layer, attack))
                            permuted = permuted_scores(pd_clean[ok], pred_clean[ok], diff[f], pred[f], tracer.concept,
                                                       tracer.live, A, P.top_k, weighted=weighted,
                                                       n_permutations=P.n_permutations, generator=g)
                            null, null_scores = rank_auc(*permuted), np.concatenate(permuted, axis=1)
                        adv_is_pred, adv_is_true = (top1_concept_agreement(diff[f], pred[f], adv.y[f], tracer.concept)
                                                    if f.any() else (float("nan"), float("nan")))
                        rows.append({
                            "seed": seed, "model": name, "layer": layer, "weighted": weighted, "attack": attack,
                            "n_clean": int(ok.sum()), "n_adversarial": int(f.sum()),
                            "agreement_clean": float(s_clean[ok].mean()),
                            "agreement_adv": float(s_adv[f].mean()) if f.any() else float("nan"),
                            "pd_top1_mean": float(pd_clean.max(1).values[ok].mean()),
                            "clean_concept_is_pred": clean_is_pred, "adv_concept_is_pred": adv_is_pred,
                            "adv_concept_is_true": adv_is_true,
                            "auc": _auc_or_nan(s_clean[ok], s_adv[f]),
                            "auc_null_mean": float(null.mean()), "auc_null_q95": float(np.quantile(null, 0.95)),
                            "auc_msp": _auc_or_nan(msp_clean[ok], msp_adv[attack][f])})
                        if headline:
                            entry.adversarial[attack], entry.msp_adversarial[attack] = s_adv, msp_adv[attack]
                            entry.fooled[attack], entry.null[attack] = f, null_scores
                    if headline:
                        scores[(seed, name)] = entry
    return Result(pd.DataFrame(rows), scores, models)


def headline(result: Result, P: ChapterParams) -> pd.DataFrame:
    """The rows of the headline layer and weighting."""
    t = result.table
    return t[(t.layer == P.layer) & (t.weighted == P.weighted)]


# ----------------------------------------------------------------------------- summarize

def detector_effects(s: Scores, attack: str) -> dict[str, SeedEffect]:
    """One (seed, model)'s detector against its references on the same cases (clean probes it gets
    right, adversarial probes that fool it; :func:`advinterp.core.auroc.auroc_interval`): ``vs_null``
    (AUC minus the null's mean AUC, paired per case: the null's mean is a mean of AUROCs on the same
    images, so its sampling variance and its correlation with the detector's AUC enter the interval,
    and so does its Monte Carlo variance over the permutations, ``var / n_permutations``) and ``vs_msp``
    (AUC minus MSP's AUC)."""
    ok, f = s.ok, s.fooled[attack]
    if not ok.any() or not f.any():
        nan = SeedEffect(float("nan"), float("nan"), float("nan"))
        return {"vs_null": nan, "vs_msp": nan}
    n_clean = int(ok.sum())
    labels = np.r_[np.zeros(n_clean), np.ones(int(f.sum()))]
    detector = -np.r_[s.clean[ok].numpy(), s.adversarial[attack][f].numpy()]
    msp = -np.r_[s.msp_clean[ok].numpy(), s.msp_adversarial[attack][f].numpy()]
    null = s.null[attack]
    null_aucs = rank_auc(null[:, :n_clean], null[:, n_clean:])
    return {"vs_null": auroc_interval(labels, detector, null, b_extra_var=float(null_aucs.var(ddof=1)) / len(null_aucs)),
            "vs_msp": auroc_interval(labels, detector, msp)}


def model_comparison(a: Scores, b: Scores, attack: str) -> SeedEffect:
    """The detector's AUC on model ``a`` minus on model ``b``, on the same source probes: clean probes
    both get right, and probes whose own ``attack`` fools both (each model scored on its own
    adversarial version); the paired interval of :func:`advinterp.core.auroc.auroc_interval`."""
    ok = a.ok & b.ok
    f = a.fooled[attack] & b.fooled[attack]
    if not ok.any() or not f.any():
        return SeedEffect(float("nan"), float("nan"), float("nan"))
    labels = np.r_[np.zeros(int(ok.sum())), np.ones(int(f.sum()))]
    score = {m: -np.r_[s.clean[ok].numpy(), s.adversarial[attack][f].numpy()] for m, s in (("a", a), ("b", b))}
    return auroc_interval(labels, score["a"], score["b"])


def summarize(result: Result, setup: S.Setup) -> dict[str, Any]:
    """Chapter 5's metrics (the names are this function's): ``<measure>_<model>`` for the headline
    layer, weighting and attack, ``auc_<attack>_<model>`` for every attack, and the claims' effects."""
    P = setup.P
    table = headline(result, P)
    head = table[table.attack == P.attack]
    by_model = {m: head[head.model == m] for m in MODELS}
    metrics: dict[str, Any] = with_spread({
        **{metric_name("detect_auc", m): by_model[m]["auc"] for m in MODELS},
        **{metric_name("detect_auc_null", m): by_model[m]["auc_null_mean"] for m in MODELS},
        **{metric_name("detect_auc_null_q95", m): by_model[m]["auc_null_q95"] for m in MODELS},
        **{metric_name("detect_auc_msp", m): by_model[m]["auc_msp"] for m in MODELS},
        **{metric_name("agreement_clean", m): by_model[m]["agreement_clean"] for m in MODELS},
        **{metric_name("agreement_adv", m): by_model[m]["agreement_adv"] for m in MODELS},
        **{metric_name("pd_top1_mean", m): by_model[m]["pd_top1_mean"] for m in MODELS},
        **{metric_name("n_adversarial", m): by_model[m]["n_adversarial"] for m in MODELS},
        "adv_concept_is_pred_standard": by_model["standard"]["adv_concept_is_pred"],
        "adv_concept_is_true_standard": by_model["standard"]["adv_concept_is_true"],
        "clean_concept_is_pred_standard": by_model["standard"]["clean_concept_is_pred"],
    })
    for m in MODELS:
        effects = {s: detector_effects(result.scores[(s, m)], P.attack) for s in setup.seeds}
        for kind in ("vs_null", "vs_msp"):
            metrics.update(per_seed_metrics(f"effect_tracing_{kind}_{m}", {s: e[kind] for s, e in effects.items()}))
    metrics.update(per_seed_metrics(CL_VS_STANDARD.name, {
        s: model_comparison(result.scores[(s, "cl")], result.scores[(s, "standard")], P.attack) for s in setup.seeds}))
    metrics.update({"attack": P.attack, "lambda_cl": P.lambda_cl, "top_k": P.top_k, "n_seeds": len(setup.seeds),
                    "layer": P.layer, "n_permutations": P.n_permutations})
    for a in P.attacks:
        for m in MODELS:
            metrics[f"auc_{a}_{m}"] = float(table[(table.attack == a) & (table.model == m)]["auc"].mean())
    full = result.table[result.table.attack == P.attack].groupby(["model", "layer", "weighted"])["auc"].mean()
    metrics["detect_auc_best"] = float(full.max())
    return metrics


# ----------------------------------------------------------------------------- verdicts

def verdicts(result: Result, setup: S.Setup, metrics: dict[str, Any]) -> dict[str, str]:
    """Words the prose glues, decided by intervals."""
    observed = {**setup.P.public(), **metrics}
    out = claims.claim_words(CLAIMS, setup.P.public(), metrics)
    seeds = observed.get("seeds")
    for m in MODELS:
        for kind, e in zip(("vs_null", "vs_msp"), detects(m)):
            per_seed = from_metrics(e.name, observed) or []
            out[f"{kind}_{m}"] = (above_words(decide(e, per_seed, seeds)) if any(x.finite for x in per_seed)
                                  else "could not be measured")
    return out


# ----------------------------------------------------------------------------- display helpers

def example_cases(result: Result, setup: S.Setup) -> list[dict[str, object]]:
    """Per model (first seed): a correctly classified probe, a misclassified real probe (if any) and
    a successful adversarial probe of ``attack`` (if any), as rows for
    :func:`advinterp.report.figures.galleries.explanations`."""
    P, seed = setup.P, setup.seeds[0]
    exp = setup.experiments[seed]
    x, y = exp.probes()
    cases: list[dict[str, object]] = []
    for name, tm in result.models[seed].items():
        s = result.scores[(seed, name)]
        adv = adversarial_inputs(exp, tm, P.attack)
        picks = [("correct", x, s.ok), ("misclassified", x, ~s.ok), (P.attack.upper(), adv.x_adv, s.fooled[P.attack])]
        for title, images, mask in picks:
            idx = torch.nonzero(mask).flatten()
            if len(idx):
                cases.append({"title": f"{name}: {title}\ntrue: {exp.bundle.classes[int(y[idx[0]])]}",
                              "image": images[idx[0]], "tracer": s.tracer})
    return cases


def settings_table(result: Result) -> pd.DataFrame:
    """Mean AUC and its references per (model, layer, weighting, attack), over seeds."""
    return result.table.groupby(["model", "layer", "weighted", "attack"], sort=False)[
        ["agreement_clean", "agreement_adv", "auc", "auc_null_mean", "auc_null_q95", "auc_msp", "n_adversarial"]].mean()
