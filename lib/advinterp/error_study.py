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

import numpy as np
import pandas as pd
import torch

from . import cache, conductance, data, mutation, zoo
from .conductance import layer_conductance
from .data import take
from .error_detection import (ErrorDetector, auroc, selective_metrics, stack,
                              youden_threshold)
from .mutation import MutationResult, mutate_and_predict
from .training import TrainedModel, cached_bundle


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
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[: n // 2].sort().values, order[n // 2:].sort().values


def run_seed(*, dataset: str, model: str, seed: int, data_root: str | None, image_size: int | None,
             target_train_acc: float, epochs: int | None, max_train: int | None, layer: str, conductance_steps: int,
             n_mutants: int, mutation_op: str, mutation_rate: float, table_rates: Sequence[float],
             device: str, stackers: Sequence[str] = ("random_forest", "lda", "qda")) -> SeedResult:
    """The whole pipeline for one seed (see the module docstring)."""
    tm = zoo.standard_model(dataset, model, seed, data_root=data_root, image_size=image_size, device=device,
                            epochs=epochs, max_train=max_train, stop_at_train_acc=target_train_acc)
    bundle = cached_bundle(dataset, data_root, image_size)
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


def lcr_table(results: dict[int, SeedResult]) -> pd.DataFrame:
    """Wu et al.'s Table 3 analogue: LCR mean and std over test inputs, correct vs wrong, per
    operator and rate (pooled over seeds)."""
    rows = []
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


