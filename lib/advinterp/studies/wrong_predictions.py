"""Chapter 6's study: Wu et al.'s wrong-prediction detectors on one under-trained classifier.

For one seed (:func:`run_seed`): train the classifier only up to ``target_train_acc`` on the
training split (the detector learns from the classifier's own training-set errors, so there must
be some), compute conductance features on the training split and fit the error detector, split
the test set 50/50 into validation and test, compute conductance-detector probabilities and the
mutation label change rate (LCR) on both halves, stack them, and evaluate everything on the test
half with thresholds chosen on the validation half.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..core import cache
from ..core.devices import generator
from ..core.params import Chapter, ChapterParams, choice, integer, listof, number, text
from ..data import datasets as data
from ..data.datasets import take
from ..interpret import conductance, mutation
from ..interpret import error_detection as ed
from ..interpret.conductance import layer_conductance
from ..interpret.error_detection import ErrorDetector, auroc, selective_metrics, stack, youden_threshold
from ..interpret.mutation import MutationResult, mutate_and_predict, n_mutated
from ..models.architectures import build_model, check_layer
from ..report.results import compare, tolerance, with_spread
from ..training import recipes
from ..training.loop import TrainedModel
from . import setting as S
from . import findings as F

TARGET_TRAIN_ACC = number("target_train_acc", 0.85, 0.0, 1.0, "stop training once training accuracy reaches this",
                          lo_open=True, hi_open=True)
CONDUCTANCE_STEPS = integer("conductance_steps", 10, 1, 1000, "m, Riemann steps of conductance")
N_MUTANTS = integer("n_mutants", 100, 2, 10_000, "accepted mutants per operator and rate")
MUTATION_OP = choice("mutation_op", "NAI", mutation.OPERATORS, "NAI (negate a filter) | GF (Gaussian fuzzing of a filter)")
MUTATION_RATE = number("mutation_rate", 0.1, 0.0, 1.0, "gamma: fraction of conv filters mutated", lo_open=True)
TABLE_RATES = listof(MUTATION_RATE, "table_rates", [0.05, 0.1], "rates of the LCR table (both operators)", min_len=2)
LAYER = text("layer", "conv2", "the last conv block, whose channels are the detector's features")
#: the detector scores compared (AUROC on the test half)
SCORES = ("lcr", "conductance", "combined")
STACKERS = ("random_forest", "lda", "qda")
#: the chapter's headline: AUROC of the combined detector on the test half
HEADLINE = "auroc_combined"


def _relations(P: ChapterParams) -> None:
    S.check_setting(P)
    check_layer("layer", P.layer, P.model)


CHAPTER = Chapter("06-error-detection", (
    *S.DATA, S.EPOCHS, S.MAX_TRAIN, TARGET_TRAIN_ACC, LAYER,
    CONDUCTANCE_STEPS, N_MUTANTS, MUTATION_OP, MUTATION_RATE, TABLE_RATES, S.SEEDS, S.DEVICE, S.RESULTS_DIR), _relations)


def validate(namespace: dict[str, Any]) -> ChapterParams:
    """Check every parameter of chapter 6 (no data loaded, no model built)."""
    return CHAPTER.validate(namespace)


def setup(P: ChapterParams) -> ChapterParams:
    """Load the data and check that the mutation rates mutate at least one of the model's filters."""
    b = S.load(P)
    net = build_model(P.model, b.input_shape, b.num_classes, b.mean, b.std)
    n_mutated(net, P.mutation_rate)
    for i, rate in enumerate(P.table_rates):
        n_mutated(net, rate, f"table_rates[{i}]")
    return P


@dataclass
class SeedResult:
    """Everything chapter 6 plots or reports for one seed."""

    classifier: TrainedModel
    metrics: dict[str, float]
    scores: dict[str, np.ndarray]          # test-half scores: lcr, conductance, combined, alternatives
    wrong: np.ndarray                      # test half: 1 = wrong prediction
    mutations: dict[tuple[str, float], MutationResult] = field(default_factory=dict)
    conductance: torch.Tensor | None = None  # test split features
    predicted: torch.Tensor | None = None
    correct: torch.Tensor | None = None
    test_half: torch.Tensor | None = None


def split_halves(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A deterministic 50/50 split of the test split into validation and test halves."""
    order = torch.randperm(n, generator=generator(seed))
    return order[: n // 2].sort().values, order[n // 2:].sort().values


def run_seed(P: ChapterParams, seed: int, stackers: Sequence[str] = STACKERS) -> SeedResult:
    """The whole pipeline for one seed (see the module docstring)."""
    layer, conductance_steps, n_mutants = P.layer, P.conductance_steps, P.n_mutants
    mutation_op, mutation_rate, table_rates = P.mutation_op, P.mutation_rate, P.table_rates
    tm = recipes.standard_model(P.dataset, P.model, seed, data_root=P.data_root, image_size=P.image_size,
                                device=P.device, epochs=P.epochs, max_train=P.max_train,
                                stop_at_train_acc=P.target_train_acc)
    bundle = data.cached_bundle(P.dataset, P.data_root, P.image_size)
    net = tm.model
    x_train, y_train = take(bundle.train, torch.arange(len(bundle.train)))  # type: ignore[arg-type]
    x_test, y_test = take(bundle.test, torch.arange(len(bundle.test)))  # type: ignore[arg-type]
    code = cache.code_version(conductance, mutation, data)
    base = {"model": tm.key, "data": bundle.identity(), "code": code}

    def features() -> dict[str, torch.Tensor]:
        # conductance features: the classifier's own training-set predictions teach the detector
        f_tr, p_tr = layer_conductance(net, x_train, layer, steps=conductance_steps)
        f_te, p_te = layer_conductance(net, x_test, layer, steps=conductance_steps)
        return {"f_train": f_tr, "pred_train": p_tr, "f_test": f_te, "pred_test": p_te}

    feats_ = cache.memoized("conductance", {**base, "layer": layer, "steps": conductance_steps}, features)
    f_train, pred_train, f_test, pred_test = (feats_[k] for k in ("f_train", "pred_train", "f_test", "pred_test"))
    wrong_train = (pred_train != y_train)
    detector = ErrorDetector(seed=seed).fit(f_train, wrong_train)
    p_test = detector.predict_proba(f_test).numpy()
    wrong = (pred_test != y_test).numpy()
    val, test = split_halves(len(y_test), seed)
    # mutations: accepted on the validation half, evaluated on the whole test split
    mutations = {}
    for op, rate in sorted({(mutation_op, mutation_rate), *((o, r) for o in ("NAI", "GF") for r in table_rates)}):
        def mutants(op: str = op, rate: float = rate) -> dict[str, torch.Tensor]:
            res = mutate_and_predict(net, x_test, None, y_test[val], val_index=val, operator=op, rate=rate,
                                     n_mutants=n_mutants, seed=seed)
            return {"original": res.original, "predictions": res.predictions, "tried": torch.tensor(res.tried)}

        found = cache.memoized("mutants", {**base, "op": op, "rate": rate, "n": n_mutants, "seed": seed,
                                           "val": val.tolist()}, mutants)
        mutations[(op, rate)] = MutationResult(op, rate, found["original"], found["predictions"], int(found["tried"]))
    lcr = mutations[(mutation_op, mutation_rate)].lcr().numpy()
    feats = np.c_[lcr, p_test]
    v, t = val.numpy(), test.numpy()
    scores: dict[str, np.ndarray] = {"lcr": lcr[t], "conductance": p_test[t]}
    oof, combined = stack("mlp", feats[v], wrong[v], feats[t], seed=seed)
    scores["combined"] = combined
    for kind in stackers:
        scores[kind] = stack(kind, feats[v], wrong[v], feats[t], seed=seed)[1]
    thr = youden_threshold(wrong[v], oof)
    sel = selective_metrics(wrong[t], combined, thr)
    m = {
        "acc_base": float(1 - wrong[t].mean()), "train_acc": float(1 - wrong_train.float().mean()),
        "n_wrong_train": int(wrong_train.sum()), "n_wrong_test": int(wrong[t].sum()),
        "auroc_lcr": auroc(wrong[t], scores["lcr"]), "auroc_conductance": auroc(wrong[t], scores["conductance"]),
        "auroc_combined": auroc(wrong[t], combined),
        "auroc_lcr_val": auroc(wrong[v], lcr[v]), "auroc_conductance_val": auroc(wrong[v], p_test[v]),
        "auroc_combined_val": auroc(wrong[v], oof),
        **{f"auroc_{k}": auroc(wrong[t], scores[k]) for k in stackers},
        "lcr_mean_correct": float(lcr[t][~wrong[t]].mean()), "lcr_mean_wrong": float(lcr[t][wrong[t]].mean()),
        **sel,
    }
    return SeedResult(tm, m, scores, wrong[t], mutations, f_test, pred_test, torch.from_numpy(~wrong), test)


@dataclass
class Result:
    per_seed: pd.DataFrame            # one row of metrics per seed
    runs: dict[int, SeedResult]

    @property
    def first(self) -> SeedResult:
        return next(iter(self.runs.values()))


def run(P: ChapterParams) -> Result:
    """The pipeline for every seed."""
    runs = S.over_seeds(P, lambda s: run_seed(P, s))
    return Result(pd.DataFrame({s: r.metrics for s, r in runs.items()}).T, runs)


def lcr_table(result: Result) -> pd.DataFrame:
    """Wu et al.'s Table 3 analogue: LCR mean and std over test inputs, correct vs wrong, per
    operator and rate (pooled over seeds)."""
    rows = []
    results = result.runs
    keys = sorted({k for r in results.values() for k in r.mutations})
    for op, rate in keys:
        correct, wrong = [], []
        for r in results.values():
            lcr = r.mutations[(op, rate)].lcr()[r.test_half].numpy()
            correct.append(lcr[~r.wrong])
            wrong.append(lcr[r.wrong])
        c, w = np.concatenate(correct), np.concatenate(wrong)
        rows.append({"operator": op, "rate": rate, "LCR correct": f"{c.mean():.3f} ± {c.std():.3f}",
                     "LCR wrong": f"{w.mean():.3f} ± {w.std():.3f}",
                     "AUROC": np.mean([auroc(r.wrong, r.mutations[(op, rate)].lcr()[r.test_half].numpy())
                                       for r in results.values()])})
    return pd.DataFrame(rows)


def auroc_vs_mutants(result: SeedResult, op: str, rate: float, counts: Sequence[int]) -> list[float]:
    """LCR AUROC on the test half using only the first n kept mutants, for each n of ``counts``."""
    mr = result.mutations[(op, rate)]
    return [auroc(result.wrong, mr.lcr(n)[result.test_half].numpy()) for n in counts]


def conductance_by_class(result: SeedResult, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean conductance feature per (predicted class, channel) for correct and for wrong predictions."""
    f, pred, ok = result.conductance, result.predicted, result.correct
    assert f is not None and pred is not None and ok is not None
    out = []
    for mask in (ok, ~ok):
        table = np.full((num_classes, f.shape[1]), np.nan)
        for c in range(num_classes):
            sel = mask & (pred == c)
            if sel.any():
                table[c] = f[sel].mean(0).numpy()
        out.append(table)
    return out[0], out[1]


def paper_comparison(result: Result, P: ChapterParams) -> pd.DataFrame:
    """Wu et al.'s validation AUROCs and ours (test half, mean and std over seeds)."""
    from ..report.results import format_mean_std, mean_std

    paper = pd.DataFrame(ed.PAPER_AUROC).T.map("{:.3f}".format)
    paper.loc[f"ours: {P.dataset} ({P.model}), test half"] = [
        format_mean_std(*mean_std(result.per_seed[f"auroc_{k}"])) for k in SCORES]
    paper.index.name = "AUROC, wrong vs correct"
    return paper


def mutant_curves(result: Result, P: ChapterParams) -> tuple[list[int], np.ndarray]:
    """LCR AUROC against the number of mutants used, one row per seed."""
    counts = [c for c in (1, 2, 5, 10, 20, 50, 100, 200, 500) if c <= P.n_mutants]
    return counts, np.array([auroc_vs_mutants(r, P.mutation_op, P.mutation_rate, counts) for r in result.runs.values()])


def summarize(result: Result, P: ChapterParams) -> dict[str, Any]:
    """Chapter 6's metrics (the names are this function's)."""
    per_seed = result.per_seed
    metrics: dict[str, Any] = with_spread({k: per_seed[k] for k in (
        "acc_base", *(f"auroc_{s}" for s in SCORES), "lcr_mean_correct", "lcr_mean_wrong", "acc_kept", "coverage",
        "recall_wrong", "recall_correct", "train_acc", *(f"auroc_{s}" for s in STACKERS))})
    metrics.update({"n_mutants": P.n_mutants, "mutation_rate": P.mutation_rate, "mutation_op": P.mutation_op,
                    "n_seeds": len(S.seed_list(P)),
                    **{f"paper_{k}": v for k, v in ed.PAPER_AUROC["CIFAR-10 (ResNet-20)"].items()},
                    **{f"paper_{k}": v for k, v in ed.PAPER_SELECTIVE.items()}})
    return metrics


def verdicts(result: Result, P: ChapterParams, metrics: dict[str, Any]) -> dict[str, str]:
    """Words the prose glues, decided by the numbers (within one seed spread is "close to")."""
    def near(ours: str, ref: float | str, **words: str) -> str:
        reference = metrics[ref] if isinstance(ref, str) else ref
        return compare(metrics[ours], reference, tol=tolerance(metrics[f"{ours}_std"]), **words)

    paper_words = dict(higher="above", lower="below", same="close to")
    return {
        "lcr_vs_paper": near("auroc_lcr", "paper_lcr", **paper_words),
        "cond_vs_paper": near("auroc_conductance", "paper_conductance", **paper_words),
        "combined_vs_best": near("auroc_combined", max(metrics["auroc_lcr"], metrics["auroc_conductance"]),
                                 higher="better than", lower="worse than", same="no better than"),
    }


def paper_verdict(m: F.Metrics) -> tuple[str, str]:
    """Holds when the combined detector's AUROC is at least the paper's (CIFAR-10, ResNet-20) minus
    the seeds' spread."""
    std = m.get("auroc_combined_std")
    ok = float(m["auroc_combined"]) >= float(m["paper_combined"]) - tolerance(std)
    return (F.HOLDS if ok else F.FAILS), f"AUROC {F.value(m, 'auroc_combined')} (paper {float(m['paper_combined']):.3f})"


def combination_verdict(m: F.Metrics) -> tuple[str, str]:
    """Holds when the combined detector beats the better single score beyond the spread."""
    best = max(("auroc_lcr", "auroc_conductance"), key=lambda n: float(m[n]))
    number = f"combined {F.value(m, 'auroc_combined')} vs best alone ({best[6:]}) {F.value(m, best)}"
    return (F.HOLDS if F.exceeds(m, "auroc_combined", best) > 0 else F.FAILS), number


#: the claims this chapter tests (decided the same way on its results at scale; intro scorecard)
CLAIMS = (
    F.claim("wu_auroc", "Wu et al. 2019", "Conductance and mutation stability together flag wrong predictions with "
            "the AUROC the paper reports", CHAPTER.stem, ("auroc_combined", "paper_combined"), paper_verdict),
    F.claim("wu_combination", "Wu et al. 2019", "Combining conductance with mutation stability detects wrong "
            "predictions better than either alone", CHAPTER.stem, ("auroc_combined", "auroc_lcr", "auroc_conductance"),
            combination_verdict),
)
