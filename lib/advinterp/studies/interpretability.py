"""Chapter 7's study: a fair test of Moshe et al.'s claims that a regulariser of neural activation
sensitivity makes a model more interpretable than standard training (claim 1) and than adversarial
training (claim 2), with chapter 4's consistent-loss model on the same scale.

What makes the test fair (each item is a function below):

* **The regulariser has no free exit** (:mod:`advinterp.training.sensitivity`): the per-unit
  sensitivity is relative to the unit's scale, and the logits' input-Jacobian term of the method's
  predecessor is on. A **sweep** of paired weights ``(lambdas_nas[i], lambdas_jac[i])`` is trained
  the way PGD-AT is (fine-tuned from the standard model for ``finetune_epochs`` epochs).
* **Matched clean accuracy** (:func:`select`): the regularised model compared is the sweep member
  whose clean accuracy (mean over seeds) is within ``match_tol`` of PGD-AT's, the most robust
  (AutoAttack core) among those; if none is, the closest in clean accuracy, and the chapter says
  the comparison is unmatched.
* **Robustness the way the field measures it**: AutoAttack's core and the gradient-masking checks
  for every model (:func:`advinterp.studies.consistent_loss.evaluate`).
* **Metrics that scale cannot win** (:mod:`advinterp.interpret.attribution`), three explanation
  methods, each gated by the **randomisation sanity check** (:mod:`advinterp.interpret.sanity`):
  a method that fails it on either model of a pair gives no verdict for that pair.
* **Verdicts with uncertainty** (:func:`comparisons`): per metric, method and pair of models, a
  two-level bootstrap interval over seeds and images of the mean paired difference
  (:mod:`advinterp.report.uncertainty`); "better" only when it excludes 0. ``sens_max`` is shown
  and never used (circular for a sensitivity regulariser), nor is ``alignment`` (a property of the
  model's gradient, the same for every method).

Metric values are cached per (model, method, images), so reruns and book builds reuse them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..core import cache
from ..core.devices import seeded_rng
from ..core.params import Chapter, ChapterParams, at_most, choice, integer, listof, number
from ..core.validation import fail
from ..interpret import affinity, attribution, sanity
from ..models.layers import weight_norms
from ..report.results import method_metrics, with_spread
from ..report.uncertainty import paired_bootstrap
from ..training import sensitivity as nas
from ..training.adversarial import TRAIN_ATTACK, TRAIN_EPS, TRAIN_STEPS, madry
from ..training.loop import TrainedModel
from . import consistent_loss as ch4
from . import setting as S
from . import findings as F

AT_ATTACK = TRAIN_ATTACK.renamed("at_attack", help="robust baseline: pgd (Madry) | fgsm_rs (fast FGSM with random start)")
AT_EPS = TRAIN_EPS.renamed("at_eps", help="its budget (also the evaluation budget)")
AT_STEPS = TRAIN_STEPS.renamed("at_steps", help="its steps")
LAMBDAS_NAS = listof(nas.LAMBDA_NAS, "lambdas_nas", [0.1, 0.3, 1.0], "the sweep: sensitivity-term weights")
LAMBDAS_JAC = listof(nas.LAMBDA_JAC, "lambdas_jac", [0.03, 0.1, 0.3],
                     "the sweep: input-Jacobian weights, paired with lambdas_nas")
MATCH_TOL = number("match_tol", 0.03, 0.0, 1.0, "clean-accuracy tolerance of the matched comparison")
ATTRIBUTION = choice("attribution", "integrated_gradients", attribution.METHODS,
                     "the method of the headline numbers: " + " | ".join(attribution.METHODS))
N_EVAL = integer("n_eval", 128, 2, None, "images whose attributions are scored (per seed)")
N_MPRT = integer("n_mprt", 32, 2, None, "images of the randomisation sanity check (per seed)")
N_BOOT = integer("n_boot", 2000, 100, 1_000_000, "bootstrap replicates of each interval")
#: for each metric, whether larger values mean a more interpretable model
HIGHER_IS_BETTER = attribution.HIGHER_IS_BETTER
#: metrics that decide verdicts (sens_max is circular; alignment is the same for every method)
VERDICT_METRICS = tuple(m for m in HIGHER_IS_BETTER if m not in attribution.CIRCULAR and m != "alignment")
#: the models compared, by their alias in metric names
MODELS = ("standard", "pgd_at", "nas", "cl")
#: accuracy, robustness and consistency measured per model
ACCURACY_MEASURES = ("clean_acc", "pgd_acc", "aa_acc", "masking", "consis_real", "consis_adv_true")
#: robust accuracy within this of PGD-AT's counts as "near" (prose only; no verdict depends on it)
NEAR = 0.05
#: the pairs compared (first minus second, in the metric's "better" direction) and what they test
PAIRS = {("pgd_at", "standard"): "robust training helps (the premise)",
         ("nas", "standard"): "claim 1: the regulariser helps",
         ("nas", "pgd_at"): "claim 2: the regulariser beats robust training",
         ("cl", "standard"): "the consistent loss helps"}


def _relations(P: ChapterParams) -> None:
    S.check_setting(P)
    ch4.check_training(P)
    if len(P.lambdas_jac) != len(P.lambdas_nas):
        fail("lambdas_jac", P.lambdas_jac, f"one weight per entry of lambdas_nas={P.lambdas_nas} (paired sweep)")
    for i, (lam, jac) in enumerate(zip(P.lambdas_nas, P.lambdas_jac)):
        if lam <= 0 and jac <= 0:
            fail(f"lambdas_nas[{i}]", lam, "a positive weight here or in lambdas_jac (both 0 is the standard model)")
    S.check_layers("nas_layers", P.nas_layers, P.model)
    at_most("n_eval", P.n_eval, "n_probe", P.n_probe)
    at_most("n_mprt", P.n_mprt, "n_eval", P.n_eval)
    at_most("n_robust", P.n_robust, "n_probe", P.n_probe)
    at_most("k", P.k, "n_probe", P.n_probe)


CHAPTER = Chapter("07-sensitivity-regularization", (
    *ch4.TRAINED, S.HELDOUT, AT_ATTACK, AT_EPS, AT_STEPS, LAMBDAS_NAS, LAMBDAS_JAC, nas.NAS_LAYERS,
    nas.UNITS_PER_LAYER, nas.ESTIMATOR, nas.NORMALIZATION, MATCH_TOL, *ch4.TRAINING, ATTRIBUTION, N_EVAL, N_MPRT,
    N_BOOT, *ch4.ROBUSTNESS, S.K, S.SEEDS, S.DEVICE, S.RESULTS_DIR), _relations)


def validate(namespace: dict[str, Any]) -> ChapterParams:
    """Check every parameter of chapter 7 (no data loaded, no model built)."""
    return CHAPTER.validate(namespace)


def setup(P: ChapterParams) -> ChapterParams:
    """Load the data; ``P.experiments`` (one per seed, budget ``at_eps``)."""
    S.load(P)
    P["A"] = affinity.for_dataset(P.bundle)
    P["experiments"] = S.experiments(P, eps=P.at_eps)
    return P


def nas_name(lam: float, lam_jac: float) -> str:
    return f"nas-{lam:g}-{lam_jac:g}"


def sweep(P: ChapterParams) -> list[tuple[str, nas.SensitivityObjective]]:
    """The regularised models of the sweep: ``(name, objective)`` per paired weight."""
    return [(nas_name(lam, jac), nas.SensitivityObjective(lam, tuple(P.nas_layers), P.units_per_layer, P.estimator,
                                                          P.normalization, jac))
            for lam, jac in zip(P.lambdas_nas, P.lambdas_jac)]


def models_to_compare(exp: S.Experiment, P: ChapterParams) -> dict[str, TrainedModel]:
    """Standard, PGD-AT, every regularised model of the sweep and chapter 4's consistent-loss model of
    one seed, all of ``exp.model``; PGD-AT and the regularised models are trained alike (fine-tuned
    from the standard model for ``finetune_epochs``, or from scratch; cached)."""
    out = {"standard": exp.trained(exp.model),
           "pgd_at": ch4.train_variant(exp, P, madry(P.at_eps, P.at_steps, layer=P.layer, attack=P.at_attack))}
    for name, objective in sweep(P):
        out[name] = ch4.train_variant(exp, P, objective)
    out["cl"] = ch4.consistent_model(exp, P)
    return out


def attribution_metrics(tm: TrainedModel, x: torch.Tensor, method: str, *, digit_mask: bool,
                        seed: int = 0) -> dict[str, torch.Tensor]:
    """Per-image metrics (and maps) of one model and method, cached."""
    description = {"model": tm.key, "method": method, "images": _images_key(x), "digit_mask": digit_mask,
                   "seed": seed, "code": cache.code_version(attribution)}
    device = next(tm.model.parameters()).device

    def compute() -> dict[str, torch.Tensor]:
        out = attribution.evaluate_attributions(tm.model, x.to(device), method, digit_mask=digit_mask, seed=seed)
        return {k: v.detach().cpu() for k, v in out.items()}

    return cache.memoized("interpretability", description, compute)


def _images_key(x: torch.Tensor) -> str:
    return cache.key_of([float(x.sum()), float(x.pow(2).sum()), list(x.shape)])


def mprt_correlations(tm: TrainedModel, x: torch.Tensor, target: torch.Tensor, method: str,
                      seed: int) -> dict[str, torch.Tensor]:
    """The cascading randomisation test of ``method`` on ``tm`` (cached; :func:`advinterp.interpret.sanity.mprt`)."""
    description = {"model": tm.key, "method": method, "images": _images_key(x), "seed": seed,
                   "code": cache.code_version(sanity, attribution)}

    def explain(model: torch.nn.Module, xs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return attribution.explainer(model, method)(xs, target=t)

    def compute() -> dict[str, torch.Tensor]:
        device = next(tm.model.parameters()).device
        with seeded_rng(seed, device):
            return sanity.mprt(tm.model, x.to(device), target.to(device), explain, seed=seed)

    return cache.memoized("mprt", description, compute)


@dataclass
class Result:
    per_image: pd.DataFrame                            # per (seed, model, method, image): every metric
    accuracy: pd.DataFrame                             # per (seed, model): accuracy, robustness, consistency
    sanity: pd.DataFrame                               # per (seed, model, method): MPRT correlation after full randomisation
    curves: pd.DataFrame                               # per (seed, model, epoch): the regularised models' training
    selected: str                                      # the sweep member compared as "nas"
    matched: bool                                      # whether its clean accuracy is within match_tol of PGD-AT's
    maps: dict[tuple[str, str], torch.Tensor]          # first seed: (model, method) -> attributions
    x_eval: torch.Tensor                               # first seed's evaluated images
    weight_norm_ratio: list[float]                     # per seed: regularised / standard weight norm
    comparisons: pd.DataFrame = field(default_factory=pd.DataFrame)  # :func:`comparisons`, filled by run

    @property
    def metrics(self) -> pd.DataFrame:
        """Per (seed, model, method), the mean over images."""
        return self.per_image.groupby(["seed", "model", "method"], sort=False)[list(HIGHER_IS_BETTER)].mean().reset_index()


def select(accuracy: pd.DataFrame, P: ChapterParams) -> tuple[str, bool]:
    """The sweep member compared (see the module docstring) and whether it is matched."""
    means = accuracy.groupby("model")[["clean_acc", "aa_acc"]].mean()
    names = [n for n, _ in sweep(P)]
    target = means.loc["pgd_at", "clean_acc"]
    gap = (means.loc[names, "clean_acc"] - target).abs()
    matched = gap[gap <= P.match_tol + 1e-12].index.tolist()
    if matched:
        return str(means.loc[matched, "aa_acc"].idxmax()), True
    return str(gap.idxmin()), False


def run(P: ChapterParams) -> Result:
    """Train (or load) and evaluate every model of every seed; select the matched regularised model;
    score every attribution method on the first ``n_eval`` probes of each seed."""
    acc_rows, curve_rows, experiments, all_models = [], [], {}, {}
    for seed, exp in S.over_seeds(P, lambda s: P.experiments[s]).items():
        models = models_to_compare(exp, P)
        experiments[seed], all_models[seed] = exp, models
        reference = models["standard"].epoch_seconds
        source = exp.trained(P.heldout)
        for name, tm in models.items():
            ev = ch4.evaluate(exp, tm, P, eval_eps=P.at_eps, layer=P.layer, k=P.k, A=P.A, reference_time=reference,
                              source=source)
            acc_rows.append({"seed": seed, "model": name, **{m: ev.row[m] for m in ACCURACY_MEASURES},
                             **{f: ev.row[f] for f in ch4.ROBUST_FIELDS if f not in ACCURACY_MEASURES},
                             "epoch_time_ratio": ev.row["epoch_time_ratio"]})
            if name.startswith("nas-"):
                curve_rows += [{"seed": seed, "model": name, **h} for h in tm.history]
    accuracy = pd.DataFrame(acc_rows)
    selected, matched = select(accuracy, P)
    compared = {"standard": "standard", "pgd_at": "pgd_at", "nas": selected, "cl": "cl"}
    rows, sanity_rows, maps, ratios = [], [], {}, []
    first = S.seed_list(P)[0]
    digit_mask = P.dataset in ("mnist5k", "mnist")
    x_first = torch.empty(0)
    for seed, exp in experiments.items():
        x_eval = exp.probes()[0][:P.n_eval]
        models = all_models[seed]
        ratios.append(float(np.mean([weight_norms(models[selected].model, layer)[0]
                                     / weight_norms(models["standard"].model, layer)[0] for layer in P.nas_layers])))
        for alias, name in compared.items():
            tm = models[name]
            for method in attribution.METHODS:
                m = attribution_metrics(tm, x_eval, method, digit_mask=digit_mask, seed=seed)
                values = {k: v.numpy() for k, v in m.items() if k != "attributions"}
                rows += [{"seed": seed, "model": alias, "method": method, "image": i,
                          **{k: float(v[i]) for k, v in values.items()}} for i in range(len(x_eval))]
                with torch.no_grad():
                    target = tm.model(x_eval[:P.n_mprt].to(next(tm.model.parameters()).device)).argmax(1)
                corr = mprt_correlations(tm, x_eval[:P.n_mprt], target, method, seed)
                sanity_rows.append({"seed": seed, "model": alias, "method": method,
                                    "correlation": float(sanity.last_correlation(corr).mean())})
                if seed == first:
                    maps[(alias, method)] = m["attributions"]
        if seed == first:
            x_first = x_eval
    per_image = pd.DataFrame(rows)
    if not digit_mask:
        per_image["relevance_mass"] = float("nan")
    result = Result(per_image, accuracy, pd.DataFrame(sanity_rows), pd.DataFrame(curve_rows), selected, matched, maps,
                    x_first, ratios)
    result.comparisons = comparisons(result, P)  # the bootstrap runs once; summary, verdicts and figures read it
    return result


def mprt_passes(result: Result) -> pd.DataFrame:
    """Per (model, method): the mean correlation after full randomisation (over seeds) and whether
    the method passes (:data:`advinterp.interpret.sanity.THRESHOLD`)."""
    table = result.sanity.groupby(["model", "method"], sort=False).correlation.mean().reset_index()
    table["passes"] = table.correlation <= sanity.THRESHOLD
    return table


def comparisons(result: Result, P: ChapterParams) -> pd.DataFrame:
    """One row per (pair, method, metric): the mean paired difference ``a - b``, its bootstrap
    interval, whether the method passes the sanity check on both models (``usable``) and the
    outcome: ``better`` / ``worse`` (interval on one side of 0, in the metric's better direction) or
    ``no difference``."""
    passes = mprt_passes(result).set_index(["model", "method"]).passes
    table = result.per_image
    rows = []
    for (a, b), meaning in PAIRS.items():
        for method in attribution.METHODS:
            usable = bool(passes.get((a, method), False) and passes.get((b, method), False))
            for metric, higher in HIGHER_IS_BETTER.items():
                diffs = {}
                for seed, g in table[table.method == method].groupby("seed"):
                    va = g[g.model == a].sort_values("image")[metric].to_numpy()
                    vb = g[g.model == b].sort_values("image")[metric].to_numpy()
                    diffs[seed] = va - vb
                if all(np.isnan(d).all() for d in diffs.values()):
                    continue
                iv = paired_bootstrap(diffs, n_boot=P.n_boot, seed=0)
                direction = iv.sign() * (1 if higher else -1)
                rows.append({"a": a, "b": b, "tests": meaning, "method": method, "metric": metric,
                             "family": attribution.FAMILY[metric], "diff": iv.mean, "lo": iv.lo, "hi": iv.hi,
                             "usable": usable, "verdict_metric": metric in VERDICT_METRICS,
                             "outcome": "better" if direction > 0 else "worse" if direction < 0 else "no difference"})
    return pd.DataFrame(rows)


def claim_verdict(rows: pd.DataFrame) -> str:
    """holds / does not hold / mixed / not assessable, from the usable verdict-metric rows of one pair:
    holds when better on at least half and worse on none; does not hold when better on none."""
    rows = rows[rows.usable & rows.verdict_metric]
    if rows.empty:
        return "not assessable (no method passes the sanity check on both models)"
    better, worse = int((rows.outcome == "better").sum()), int((rows.outcome == "worse").sum())
    return F.from_counts(better, worse, len(rows))


def aliases(result: Result) -> dict[str, str]:
    """Metric-name alias -> model name of the accuracy table."""
    return {"standard": "standard", "pgd_at": "pgd_at", "nas": result.selected, "cl": "cl"}


def pair_name(a: str, b: str) -> str:
    return f"{a}_vs_{b}"


def metric_name(measure: str, model: str) -> str:
    """The results name of ``measure`` (a metric of :data:`HIGHER_IS_BETTER` or
    :data:`ACCURACY_MEASURES`) for ``model`` (one of :data:`MODELS`)."""
    return f"{measure}_{model}"


def sweep_table(result: Result, P: ChapterParams) -> pd.DataFrame:
    """Per model (the sweep, PGD-AT and standard): mean and std over seeds of clean, PGD and
    AutoAttack accuracy, and whether any seed shows gradient masking."""
    names = ["standard", "pgd_at", *[n for n, _ in sweep(P)]]
    acc = result.accuracy[result.accuracy.model.isin(names)]
    g = acc.groupby("model", sort=False)
    out = g[["clean_acc", "pgd_acc", "aa_acc"]].agg(["mean", "std"])
    out.columns = [f"{a}{'' if b == 'mean' else '_std'}" for a, b in out.columns]
    out["masking"] = g.masking.max().astype(bool)
    return out.loc[names]


def summarize(result: Result, P: ChapterParams) -> dict[str, Any]:
    """Chapter 7's metrics (the names are this function's; see :func:`metric_name`)."""
    names = aliases(result)
    head = result.metrics[result.metrics.method == P.attribution]
    measured = [c for c in HIGHER_IS_BETTER if head[c].notna().any()]
    metrics = method_metrics(head, {a: a for a in names}, measured, by="model")
    metrics.update(method_metrics(result.accuracy, names, list(ACCURACY_MEASURES), by="model"))
    comp = result.comparisons
    for _, r in comp[comp.method == P.attribution].iterrows():
        key = f"{r.metric}_{pair_name(r.a, r.b)}"
        metrics.update({key: r["diff"], f"{key}_lo": r.lo, f"{key}_hi": r.hi})
    for (a, b) in PAIRS:
        rows = comp[(comp.a == a) & (comp.b == b) & comp.usable & comp.verdict_metric]
        pair = pair_name(a, b)
        metrics.update({f"n_better_{pair}": int((rows.outcome == "better").sum()),
                        f"n_worse_{pair}": int((rows.outcome == "worse").sum()), f"n_compared_{pair}": len(rows)})
    for _, r in mprt_passes(result).iterrows():
        metrics[f"mprt_pass_{r.method}_{r.model}"] = int(r.passes)
        metrics[f"mprt_corr_{r.method}_{r.model}"] = float(r.correlation)
    metrics.update(with_spread({"nas_weight_norm_ratio": result.weight_norm_ratio}))
    selected = next(o for n, o in sweep(P) if n == result.selected)
    clean = result.accuracy.groupby("model").clean_acc.mean()
    metrics.update({"attribution": P.attribution, "lambda_nas": selected.lam, "lambda_jac": selected.lam_jac,
                    "matched": int(result.matched), "match_tol": P.match_tol, "lambda_cl": P.lambda_cl,
                    "clean_gap_nas_vs_pgd_at": float(clean[result.selected] - clean["pgd_at"]),
                    "n_seeds": len(S.seed_list(P)), "n_eval": P.n_eval, "n_sweep": len(P.lambdas_nas),
                    "n_verdict_metrics": len([m for m in VERDICT_METRICS if m in measured]),
                    "mprt_threshold": sanity.THRESHOLD, "at_eps": P.at_eps})
    sweep_aa = sweep_table(result, P)
    metrics["aa_acc_best_sweep"] = float(sweep_aa.loc[[n for n, _ in sweep(P)], "aa_acc"].max())
    return metrics


def verdicts(result: Result, P: ChapterParams, metrics: dict[str, Any]) -> dict[str, str]:
    """Words the prose glues, each decided by the numbers."""
    comp = result.comparisons
    out = {}
    for (a, b) in PAIRS:
        out[f"verdict_{pair_name(a, b)}"] = claim_verdict(comp[(comp.a == a) & (comp.b == b)])
    passing = mprt_passes(result)
    failing = passing[~passing.passes]
    out["mprt_failures"] = (", ".join(f"{r.method} on {r.model}" for _, r in failing.iterrows())
                            if len(failing) else "none")
    out["matched_words"] = (f"within {P.match_tol:g} of PGD-AT's clean accuracy" if result.matched else
                            f"no sweep member came within {P.match_tol:g} of PGD-AT's clean accuracy; the closest "
                            "is compared, so this comparison is *not* at matched accuracy")
    best, robust = metrics["aa_acc_best_sweep"], metrics["aa_acc_pgd_at"]
    out["sweep_robustness_words"] = (
        f"comes near PGD-AT's ({best:.3f} against {robust:.3f} under AutoAttack's core)" if best >= robust - NEAR
        else f"stays far below PGD-AT's ({best:.3f} against {robust:.3f} under AutoAttack's core): the regularised "
             "models are compared with a much more robust model, and the sweep shows the price in clean accuracy "
             "of pushing the weights further")
    acc = result.accuracy.rename(columns={"model": "method"})
    out["masking_verdict"] = ch4.masking_words(acc)
    return out


def _pair_verdict(a: str, b: str) -> F.Claim:
    pair = pair_name(a, b)

    def decide(m: F.Metrics) -> tuple[str, str]:
        better, worse, n = (int(m[f"n_{k}_{pair}"]) for k in ("better", "worse", "compared"))
        return F.from_counts(better, worse, n), f"better on {better}, worse on {worse} of {n} comparisons"

    return decide


#: the claims this chapter tests (decided the same way on its results at scale; intro scorecard)
CLAIMS = tuple(
    F.claim(key, "Moshe et al. 2024", text, CHAPTER.stem,
            tuple(f"n_{k}_{pair_name(a, b)}" for k in ("better", "worse", "compared")), _pair_verdict(a, b))
    for key, text, (a, b) in (
        ("robust_premise", "Adversarially trained (robust) models have more interpretable attributions than "
         "standard ones (the premise)", ("pgd_at", "standard")),
        ("nas_vs_standard", "Regularising neural activation sensitivity makes attributions more interpretable than "
         "standard training", ("nas", "standard")),
        ("nas_vs_robust", "... and more interpretable than adversarial training", ("nas", "pgd_at")),
    ))
