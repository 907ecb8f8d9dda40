"""Chapter 6's study: Wu et al.'s wrong-prediction detectors on one under-trained classifier.

For one seed (:func:`run_seed`): train the classifier only up to ``target_train_acc`` on the
training split (the detector learns from the classifier's own training-set errors, so there must
be some), compute conductance features on the training split and fit the error detector, split
the test set 50/50 into validation and test, compute conductance-detector probabilities and the
mutation label change rate (LCR) on both halves, stack them, and evaluate everything on the test
half with thresholds chosen on the validation half. Beside them: the classifier's own confidence
(max softmax probability, energy), the baselines a detector must beat, and Wu et al.'s protocol
(the combination fitted and scored in sample on the validation half), labelled.

The claims' effects are AUROC differences on the same test-half predictions, with intervals paired
per case that stay inside their range (:mod:`advinterp.core.auroc`): the combination against the better single signal (chosen on the validation half, so the
choice does not flatter it), conductance against max softmax, and the combination against the
paper's number (non-inferiority, CIFAR-10 only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..core.devices import generator
from ..core.params import Chapter, ChapterParams, choice, integer, listof, number, text
from ..core.validation import fail
from ..data.datasets import CIFAR10_CLASSES, take
from ..interpret import conductance, mutation
from ..interpret import error_detection as ed
from ..interpret.error_detection import ErrorDetector, auroc, selective_metrics, stack, youden_threshold
from ..interpret.mutation import MutationResult, n_mutated
from ..models.architectures import MODELS, build_model, check_layer
from ..models.predict import logits_of
from ..core.auroc import auroc_interval
from ..report.results import with_spread
from ..report.settings import Setting
from ..core.stats import SeedEffect, per_seed_metrics
from ..training.loop import TrainedModel
from . import SideBySide, default_validate
from . import setting as S
from ..report import claims


# ----------------------------------------------------------------------------- declarations

TARGET_TRAIN_ACC = number("target_train_acc", 0.85, 0.0, 1.0, "stop training once training accuracy reaches this",
                          lo_open=True, hi_open=True)

CONDUCTANCE_STEPS = integer("conductance_steps", 10, 1, 1000, "m, Riemann steps of conductance")

N_MUTANTS = integer("n_mutants", 100, 2, 10_000, "accepted mutants per operator and rate")

MUTATION_OP = choice("mutation_op", "NAI", mutation.OPERATORS,
                     "NAI (negate a filter) | GF (Gaussian fuzzing of a filter) | WS (shuffle a filter's weights)")

MUTATION_RATE = number("mutation_rate", 0.1, 0.0, 1.0, "gamma: fraction of conv filters mutated", lo_open=True)

TABLE_RATES = listof(MUTATION_RATE, "table_rates", [0.05, 0.1],
                     "rates of the LCR table (NAI and GF; each mutates a different number of filters)", min_len=2)

#: the value of ``conductance_layer`` that stands for the model's last conv block
LAST_CONV = "auto"

CONDUCTANCE_LAYER = text("conductance_layer", LAST_CONV,
                         "the layer whose channels are the detector's features; auto: the last conv block (Wu et al.)")

#: the operators of the LCR table (beside ``mutation_op`` at ``mutation_rate``)
TABLE_OPERATORS = ("NAI", "GF")

#: the detector scores compared (AUROC on the test half)
SCORES = ("lcr", "conductance", "combined")

#: the classifier's own confidence, the baselines (AUROC on the test half)
BASELINES = ("msp", "energy")

STACKERS = ("random_forest", "lda", "qda")

#: the chapter's headline: AUROC of the combined detector on the test half
HEADLINE = "auroc_combined"

#: what chapter 8 reads: the wrong-prediction detector's AUROC (the standard model)
SIDE_BY_SIDE = SideBySide(cells={"error_auroc": {"standard": HEADLINE}})


def conductance_layer(P: ChapterParams) -> str:
    """The layer of the conductance features: ``conductance_layer``, or with ``auto`` the model's last
    conv block (Wu et al. sec. 3: ResNet-20's last block; a ``ValueError`` for a model without one)."""
    if P.conductance_layer != LAST_CONV:
        return check_layer("conductance_layer", P.conductance_layer, P.model)
    convs = MODELS[P.model].conv_layers
    if not convs:
        fail("conductance_layer", LAST_CONV, f"a named layer of {P.model}, which has no conv block: one of "
             f"{list(MODELS[P.model].layers)}")
    return convs[-1]


def _relations(P: ChapterParams) -> None:
    S.check_setting(P)
    conductance_layer(P)
    if len(P.table_rates) != len(set(P.table_rates)):
        fail("table_rates", list(P.table_rates), "different rates")


CHAPTER = Chapter("06-error-detection", (
    *S.DATA, S.EPOCHS, S.MAX_TRAIN, TARGET_TRAIN_ACC, CONDUCTANCE_LAYER,
    CONDUCTANCE_STEPS, N_MUTANTS, MUTATION_OP, MUTATION_RATE, TABLE_RATES, S.SEEDS, S.DEVICE, S.RESULTS_DIR), _relations)

validate = default_validate(CHAPTER)


def _cifar10_only(m: claims.Metrics) -> str | None:
    return None if m.get("is_cifar10") == 1 else "the paper's number is for CIFAR-10; this run is on other data"


#: the network the paper's CIFAR-10 number was measured on
PAPER_NETWORK = "resnet20"


def _paper_network(m: claims.Metrics) -> str | None:
    """Why a CIFAR-10 run cannot be held against the paper's 0.933 (measured on ResNet-20 at 86 %
    training accuracy), or None."""
    model = m.get("model")
    return None if model == PAPER_NETWORK else (
        f"the paper's 0.933 is ResNet-20's at 86 % training accuracy; this run's network is {model}: the "
        "tier with ResNet-20 decides it")


#: the effects the claims are decided by
PAPER = claims.Effect(
    "effect_wu_paper", "AUROC of the combined detector (test half) minus the paper's 0.933", 0.02,
    "two points of AUROC, the smallest difference detection papers report", margin=True, declared="6838ddf")

COMBINATION = claims.Effect(
    "effect_wu_combination", "AUROC of the combined detector minus that of the better single signal (chosen on the "
    "validation half), test half", 0.005, "Wu et al.'s smallest reported gain of combining (ImageNet-100: 0.946 "
    "against 0.941 AUROC); a smaller gain is below anything the paper claims", declared="564f89a")

VS_MSP = claims.Effect(
    "effect_wu_vs_msp", "AUROC of the conductance detector minus that of the classifier's own max-softmax "
    "probability, test half", 0.02, "two points of AUROC, the smallest gain detection papers report", declared="6838ddf")

#: the claims this chapter tests (decided the same way on its results at scale; intro scorecard)
CLAIMS = (
    claims.claim("wu_auroc", "Wu et al. 2019", "Conductance and mutation stability together flag wrong predictions "
                   "with the AUROC the paper reports (CIFAR-10: 0.933), within 0.02", CHAPTER.stem, PAPER,
                   applies=_cifar10_only, comparable=_paper_network, short="combined detector reaches the paper's AUROC"),
    claims.claim("wu_combination", "Wu et al. 2019", "Combining conductance with mutation stability detects wrong "
                   "predictions better than either alone", CHAPTER.stem, COMBINATION,
                   short="combining beats either signal alone"),
    claims.claim("wu_vs_msp", "Wu et al. 2019", "Conductance flags wrong predictions better than the classifier's "
                   "own confidence (max softmax), the baseline the paper does not report", CHAPTER.stem, VS_MSP,
                   protocol="extension", extends="wu_auroc", short="... conductance beats max-softmax"),
)


def _conductance_layer_words(params: Mapping[str, Any]) -> str:
    """The conductance layer of a run, ``auto`` resolved to the model's last conv block."""
    layer = params["conductance_layer"]
    if layer == LAST_CONV and params.get("model") in MODELS and MODELS[params["model"]].conv_layers:
        return f"{MODELS[params['model']].conv_layers[-1]} (the last conv block)"
    return str(layer)


#: what ran beside what the paper ran (the page's settings table; docs/papers.md gives the paper's values)
SETTINGS = (
    Setting('network', ('dataset', 'model'),
            'ResNet-20 on CIFAR-10 (also InceptionV3 on ImageNet-50/100)'),
    Setting('classifier training', ('target_train_acc', 'epochs'),
            'under-trained: 86 % train, 82 % test accuracy (epochs not stated)'),
    Setting('conductance layer', ('conductance_layer',),
            'last block (64 channels for ResNet-20), spatial mean per channel', show=_conductance_layer_words),
    Setting('conductance steps m', ('conductance_steps',),
            '10 (right-end Riemann; zero baseline in normalised space)'),
    Setting('mutants', ('n_mutants',),
            "100, each kept if accuracy > 0.9 x the original's"),
    Setting('mutation operator', ('mutation_op',),
            'NAI, GF'),
    Setting('mutation rate gamma', ('mutation_rate', 'table_rates'),
            '0.01 of conv filters (CIFAR), 0.002 (ImageNet)'),
)


# ----------------------------------------------------------------------------- setup

def setup(P: ChapterParams) -> S.Setup:
    """Load the data and check that the mutation rates mutate at least one of the model's filters."""
    setup = S.setup(P)
    b = setup.bundle
    net = build_model(P.model, b.input_shape, b.num_classes, b.mean, b.std)
    n_mutated(net, P.mutation_rate)
    changed = [n_mutated(net, rate, f"table_rates[{i}]") for i, rate in enumerate(P.table_rates)]
    if len(set(changed)) < len(changed):
        fail("table_rates", list(P.table_rates), f"rates that mutate different numbers of {P.model}'s "
             f"{len(mutation.conv_filters(net))} conv filters (these mutate {changed})")
    return setup


# ----------------------------------------------------------------------------- run

@dataclass
class SeedResult:
    """Everything chapter 6 plots or reports for one seed."""

    classifier: TrainedModel
    metrics: dict[str, float]
    scores: dict[str, np.ndarray]          # test-half scores: lcr, conductance, combined, alternatives
    wrong: np.ndarray                      # test half: 1 = wrong prediction
    effects: dict[str, SeedEffect] = field(default_factory=dict)
    mutations: dict[tuple[str, float], MutationResult] = field(default_factory=dict)
    conductance: torch.Tensor | None = None  # test split features
    predicted: torch.Tensor | None = None
    correct: torch.Tensor | None = None
    test_half: torch.Tensor | None = None


def split_halves(n: int, part: int = 0, parts: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The test split into validation and test parts for seed number ``part`` of ``parts``: one fixed
    shuffle cut into ``max(2, parts)`` disjoint slices; the seed's test part is slice ``part`` and its
    validation part the rest. So the seeds of one run are scored on **disjoint** test images (their
    estimates are independent, as the seed combination assumes: overlapping halves would correlate
    them and make the seeds look more alike than they are). One or two seeds: Wu et al.'s 50/50
    split; three: a third each for testing, two thirds for validation."""
    if not 0 <= part < parts:
        fail("part", part, f"an index into the {parts} seeds of the run")
    order = torch.randperm(n, generator=generator(0))
    cuts = torch.linspace(0, n, max(2, parts) + 1).round().long()
    test = order[cuts[part]:cuts[part + 1]]
    val = torch.cat([order[:cuts[part]], order[cuts[part + 1]:]])
    return val.sort().values, test.sort().values


def run_seed(setup: S.Setup, seed: int, stackers: Sequence[str] = STACKERS) -> SeedResult:
    """The whole pipeline for one seed of ``setup`` (see the module docstring); its test part is disjoint
    from the other seeds' (:func:`split_halves`)."""
    P = setup.P
    layer, conductance_steps, n_mutants = conductance_layer(P), P.conductance_steps, P.n_mutants
    mutation_op, mutation_rate, table_rates = P.mutation_op, P.mutation_rate, P.table_rates
    tm = setup.experiments[seed].trained(P.model, stop_at_train_acc=P.target_train_acc)
    bundle = setup.bundle
    net = tm.model
    x_train, y_train = take(bundle.train, torch.arange(len(bundle.train)))  # type: ignore[arg-type]
    x_test, y_test = take(bundle.test, torch.arange(len(bundle.test)))  # type: ignore[arg-type]
    identity = bundle.identity()
    feats_ = conductance.cached_features(tm.key, identity, net, x_train, x_test, layer, steps=conductance_steps)
    f_train, pred_train, f_test, pred_test = (feats_[k] for k in ("f_train", "pred_train", "f_test", "pred_test"))
    wrong_train = (pred_train != y_train)
    detector = ErrorDetector(seed=seed).fit(f_train, wrong_train)
    p_test = detector.predict_proba(f_test).numpy()
    wrong = (pred_test != y_test).numpy()
    val, test = split_halves(len(y_test), setup.seeds.index(seed), len(setup.seeds))
    # mutations: accepted on the validation half, evaluated on the whole test split
    mutations = {}
    # the detector's operator and rate must give n_mutants distinct mutants; the LCR table's others report
    # how many they give when fewer are accepted or exist (NAI at one or two of few filters)
    for op, rate in sorted({(mutation_op, mutation_rate), *((o, r) for o in TABLE_OPERATORS for r in table_rates)}):
        mutations[(op, rate)] = mutation.cached_mutants(tm.key, identity, net, x_test, y_test[val], val, operator=op,
                                                        rate=rate, n_mutants=n_mutants, seed=seed,
                                                        allow_fewer=(op, rate) != (mutation_op, mutation_rate))
    lcr = mutations[(mutation_op, mutation_rate)].lcr().numpy()
    feats = np.c_[lcr, p_test]
    v, t = val.numpy(), test.numpy()
    confidence = ed.confidence_scores(logits_of(net, x_test))
    scores: dict[str, np.ndarray] = {"lcr": lcr[t], "conductance": p_test[t],
                                     **{k: c[t] for k, c in confidence.items()}}
    oof, combined = stack("mlp", feats[v], wrong[v], feats[t], seed=seed)
    scores["combined"] = combined
    for kind in stackers:
        scores[kind] = stack(kind, feats[v], wrong[v], feats[t], seed=seed)[1]
    in_sample = ed.stack_in_sample("mlp", feats[v], wrong[v], seed=seed)
    thr = youden_threshold(wrong[v], oof)
    sel = selective_metrics(wrong[t], combined, thr)
    m = {
        "acc_base": float(1 - wrong[t].mean()), "train_acc": float(1 - wrong_train.float().mean()),
        "n_wrong_train": int(wrong_train.sum()), "n_wrong_test": int(wrong[t].sum()),
        "auroc_lcr": auroc(wrong[t], scores["lcr"]), "auroc_conductance": auroc(wrong[t], scores["conductance"]),
        "auroc_combined": auroc(wrong[t], combined),
        "auroc_lcr_val": auroc(wrong[v], lcr[v]), "auroc_conductance_val": auroc(wrong[v], p_test[v]),
        "auroc_combined_val": auroc(wrong[v], oof), "auroc_combined_paper_protocol": auroc(wrong[v], in_sample),
        **{f"auroc_{k}": auroc(wrong[t], scores[k]) for k in (*stackers, *confidence)},
        "lcr_mean_correct": float(lcr[t][~wrong[t]].mean()), "lcr_mean_wrong": float(lcr[t][wrong[t]].mean()),
        **sel,
    }
    best = "lcr" if m["auroc_lcr_val"] > m["auroc_conductance_val"] else "conductance"  # chosen on validation
    effects = {"combination": auroc_interval(wrong[t], combined, scores[best]),
               "vs_msp": auroc_interval(wrong[t], scores["conductance"], scores["msp"]),
               "paper": auroc_interval(wrong[t], combined, reference=ed.PAPER_AUROC["CIFAR-10 (ResNet-20)"]["combined"])}
    m["best_single_is_conductance"] = int(best == "conductance")
    return SeedResult(tm, m, scores, wrong[t], effects, mutations, f_test, pred_test, torch.from_numpy(~wrong), test)


@dataclass
class Result:
    per_seed: pd.DataFrame            # one row of metrics per seed
    runs: dict[int, SeedResult]

    @property
    def first(self) -> SeedResult:
        return next(iter(self.runs.values()))


def run(setup: S.Setup) -> Result:
    """The pipeline for every seed."""
    runs = S.over_seeds(setup, lambda s, _: run_seed(setup, s))
    return Result(pd.DataFrame({s: r.metrics for s, r in runs.items()}).T, runs)


# ----------------------------------------------------------------------------- summarize

def summarize(result: Result, setup: S.Setup) -> dict[str, Any]:
    """Chapter 6's metrics (the names are this function's)."""
    P, per_seed = setup.P, result.per_seed
    metrics: dict[str, Any] = with_spread({k: per_seed[k] for k in (
        "acc_base", *(f"auroc_{s}" for s in SCORES), "lcr_mean_correct", "lcr_mean_wrong", "acc_kept", "coverage",
        "recall_wrong", "recall_correct", "train_acc", *(f"auroc_{s}" for s in (*STACKERS, *BASELINES)),
        "auroc_combined_paper_protocol", "auroc_combined_val", "n_wrong_test", "best_single_is_conductance")})
    for effect, key in ((COMBINATION, "combination"), (VS_MSP, "vs_msp"), (PAPER, "paper")):
        metrics.update(per_seed_metrics(effect.name, {s: r.effects[key] for s, r in result.runs.items()}))
    net = result.first.classifier.model
    metrics.update({"n_mutants": P.n_mutants, "mutation_rate": P.mutation_rate, "mutation_op": P.mutation_op,
                    "filters_mutated": n_mutated(net, P.mutation_rate), "conv_filters": len(mutation.conv_filters(net)),
                    "conductance_layer": conductance_layer(P),
                    "n_seeds": len(setup.seeds), "is_cifar10": int(tuple(setup.classes) == CIFAR10_CLASSES),
                    **{f"paper_{k}": v for k, v in ed.PAPER_AUROC["CIFAR-10 (ResNet-20)"].items()},
                    **{f"paper_{k}": v for k, v in ed.PAPER_SELECTIVE.items()}})
    return metrics


# ----------------------------------------------------------------------------- verdicts

def verdicts(result: Result, setup: S.Setup, metrics: dict[str, Any]) -> dict[str, str]:
    """Words the prose glues, decided by intervals."""
    return claims.claim_words(CLAIMS, setup.P.public(), metrics)


# ----------------------------------------------------------------------------- display helpers

def lcr_table(result: Result) -> pd.DataFrame:
    """Wu et al.'s Table 3 analogue: LCR mean and std over test inputs, correct vs wrong, per
    operator and rate (pooled over seeds), with the filters each mutant changes and the distinct
    accepted mutants behind each row (per seed; "of N" where the operator can make only N)."""
    rows = []
    results = result.runs
    keys = sorted({k for r in results.values() for k in r.mutations})
    net = result.first.classifier.model
    for op, rate in keys:
        found = [r.mutations[(op, rate)] for r in results.values()]
        lcrs = [m.lcr()[r.test_half].numpy() for m, r in zip(found, results.values())]
        c = np.concatenate([lcr[~r.wrong] for lcr, r in zip(lcrs, results.values())])
        w = np.concatenate([lcr[r.wrong] for lcr, r in zip(lcrs, results.values())])
        kept = "/".join(str(m.kept) for m in found)
        if found[0].possible is not None:
            kept += f" of {found[0].possible}"
        rows.append({"operator": op, "rate": rate, "filters changed": n_mutated(net, rate), "mutants (per seed)": kept,
                     "LCR correct": f"{c.mean():.3f} ± {c.std():.3f}", "LCR wrong": f"{w.mean():.3f} ± {w.std():.3f}",
                     "AUROC": np.mean([auroc(r.wrong, lcr) if m.kept else np.nan
                                       for lcr, m, r in zip(lcrs, found, results.values())])})
    return pd.DataFrame(rows)


def auroc_vs_mutants(result: SeedResult, op: str, rate: float, counts: Sequence[int]) -> list[float]:
    """LCR AUROC on the test half using only the first n kept mutants, for each n of ``counts``."""
    mr = result.mutations[(op, rate)]
    return [auroc(result.wrong, mr.lcr(n)[result.test_half].numpy()) for n in counts]


def conductance_by_class(result: SeedResult, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean conductance feature per (predicted class, channel) for correct and for wrong predictions
    (:func:`advinterp.interpret.conductance.by_class` of the seed's test features)."""
    assert result.conductance is not None and result.predicted is not None and result.correct is not None
    return conductance.by_class(result.conductance, result.predicted, result.correct, num_classes)


def paper_comparison(result: Result, setup: S.Setup) -> pd.DataFrame:
    """Wu et al.'s validation AUROCs and ours (mean and std over seeds): on the test half with the
    combination fitted out of sample (the book's protocol), and on the validation half with the
    combination fitted and scored in sample (the paper's protocol)."""
    from ..report.results import format_mean_std, mean_std

    P = setup.P
    paper = pd.DataFrame(ed.PAPER_AUROC).T.map("{:.3f}".format)
    protocols = {"test half, out of sample": ("auroc_lcr", "auroc_conductance", "auroc_combined"),
                 "validation half, combination in sample (the paper's protocol)": (
                     "auroc_lcr_val", "auroc_conductance_val", "auroc_combined_paper_protocol")}
    for label, columns in protocols.items():
        paper.loc[f"ours: {P.dataset} ({P.model}), {label}"] = [
            format_mean_std(*mean_std(result.per_seed[c])) for c in columns]
    paper.index.name = "AUROC, wrong vs correct"
    return paper


def mutant_curves(result: Result, setup: S.Setup) -> tuple[list[int], np.ndarray]:
    """LCR AUROC against the number of mutants used, one row per seed."""
    P = setup.P
    counts = [c for c in (1, 2, 5, 10, 20, 50, 100, 200, 500) if c <= P.n_mutants]
    return counts, np.array([auroc_vs_mutants(r, P.mutation_op, P.mutation_rate, counts) for r in result.runs.values()])
