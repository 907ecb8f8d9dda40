"""Chapter 7's study: a fair test of Moshe et al.'s claims that a regulariser of neural activation
sensitivity makes a model more interpretable than standard training (claim 1) and than adversarial
training (claim 2), with chapter 4's consistent-loss model on the same scale.

What makes the test fair (each item is a function below):

* **The regulariser has no free exit** (:mod:`advinterp.training.sensitivity`): the per-unit
  sensitivity is relative to the unit's scale, and the logits' input-Jacobian term of the method's
  predecessor is on. A **sweep** of paired weights ``(lambdas_nas[i], lambdas_jac[i])`` is trained
  the way PGD-AT is (:func:`advinterp.studies.variants.train`).
* **Matched clean accuracy** (:func:`select`): the sweep runs on a seed of its own
  (``selection_seed``, never scored); the regularised model compared is the sweep member whose clean
  accuracy there is within ``match_tol`` of PGD-AT's, the most robust (AutoAttack core) among those;
  if none is, the closest in clean accuracy, and the chapter says the comparison is unmatched. That
  member is then trained and compared on every seed of ``seeds`` (the selection never sees them).
* **Explanations of correct predictions, faithful to their baseline**: the images scored are the
  first ``n_eval`` probes every compared model classifies correctly (:func:`scored_images`), and
  deletion replaces pixels by integrated gradients' own baseline
  (:func:`advinterp.interpret.attribution.attribution_baseline`).
* **Robustness the way the field measures it**: AutoAttack's core and the gradient-masking checks
  for every model (:func:`advinterp.studies.variants.evaluate`).
* **Metrics that scale cannot win** (:mod:`advinterp.interpret.attribution`), among them deletion
  against a random deletion order and infidelity at two noise scales, three explanation methods,
  each gated by the **randomisation sanity check** (:mod:`advinterp.interpret.sanity`) at the
  threshold 0.5, with the verdicts' sensitivity to it (0.3 / 0.5 / 0.7) shown.
* **One primary comparison per claim**: the headline method (``attribution``) and metric
  (:data:`PRIMARY`, the deletion gain over a random order) decide the verdict, with an interval
  paired over seeds and images (:func:`advinterp.core.stats.combine`); every other metric
  and method is shown as descriptive, with Holm-adjusted p-values across its family
  (:func:`comparisons`). ``sens_max`` is shown and never used (circular for a sensitivity
  regulariser), nor are ``alignment`` and ``deletion_random`` (properties of the model, the same
  for every method).

Metric values are cached per (model, method, images), so reruns and book builds reuse them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..core import paths
from ..core.cache import atomic_write_text, key_of
from ..core.params import Chapter, ChapterParams, at_most, choice, integer, listof, number, text
from ..core.validation import fail
from ..interpret import attribution, sanity
from ..models.layers import weight_norms
from ..models.predict import predict
from ..report.results import method_metrics, plain, with_spread
from ..report.settings import Setting
from ..core.stats import combine, holm, mean_interval, p_value, per_seed_metrics
from ..training import sensitivity as nas
from ..training.adversarial import TRAIN_ATTACK, TRAIN_EPS, TRAIN_STEPS, madry
from ..training.loop import TrainedModel
from ..report import claims
from . import SideBySide, default_validate
from . import setting as S
from . import variants as V


# ----------------------------------------------------------------------------- declarations

AT_ATTACK = TRAIN_ATTACK.renamed("at_attack", help="robust baseline: pgd (Madry) | fgsm_rs (fast FGSM with random start)")

AT_EPS = TRAIN_EPS.renamed("at_eps", help="its budget (also the evaluation budget)")

AT_STEPS = TRAIN_STEPS.renamed("at_steps", help="its steps")

LAMBDAS_NAS = listof(nas.LAMBDA_NAS, "lambdas_nas", [0.1, 0.3, 1.0], "the sweep: sensitivity-term weights")

LAMBDAS_JAC = listof(nas.LAMBDA_JAC, "lambdas_jac", [0.03, 0.1, 0.3],
                     "the sweep: input-Jacobian weights, paired with lambdas_nas")

MATCH_TOL = number("match_tol", 0.03, 0.0, 1.0, "clean-accuracy tolerance of the matched comparison")

SELECTION_SEED = integer("selection_seed", 3, 0, None, "the seed the sweep runs on to choose the member compared "
                         "(never scored; not one of seeds)")

SELECTION_RECORD = text("selection_record", None, "a recorded selection step (JSON written by write_selection, "
                        "path absolute or relative to the repository): the compared weight is read from it and the "
                        "sweep does not run again; None: the sweep runs here first", optional=True)

N_EVAL = integer("n_eval", 128, 2, None, "images whose attributions are scored (per seed; the first probes every model classifies correctly)")

N_MPRT = integer("n_mprt", 32, 2, None, "images of the randomisation sanity check (per seed)")

#: for each metric, whether larger values mean a more interpretable model
HIGHER_IS_BETTER = attribution.HIGHER_IS_BETTER

#: the attribution methods compared
METHODS = attribution.METHODS

ATTRIBUTION = choice("attribution", "integrated_gradients", attribution.METHODS,
                     "the method of the headline numbers: " + " | ".join(attribution.METHODS))

#: metrics of the descriptive family (sens_max is circular; alignment and deletion_random are
#: properties of the model, the same for every method)
VERDICT_METRICS = tuple(m for m in HIGHER_IS_BETTER if m not in (*attribution.CIRCULAR, "alignment", "deletion_random"))

#: the metric of every claim's primary comparison: what the map's order adds to deleting pixels at random
PRIMARY = "deletion_gain"

#: randomisation-check thresholds whose verdicts are shown (the verdicts use sanity.THRESHOLD)
MPRT_THRESHOLDS = (0.3, 0.5, 0.7)

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
    V.check_training(P)
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
    if P.selection_seed in P.seeds:
        fail("selection_seed", P.selection_seed, f"a seed not in seeds={list(P.seeds)} (the seed that chooses the "
             "compared weight is never scored)")


CHAPTER = Chapter("07-sensitivity-regularization", (
    *V.TRAINED, S.HELDOUT, AT_ATTACK, AT_EPS, AT_STEPS, LAMBDAS_NAS, LAMBDAS_JAC, nas.NAS_LAYERS,
    nas.UNITS_PER_LAYER, nas.ESTIMATOR, nas.NORMALIZATION, nas.MAX_GRAD_NORM, MATCH_TOL, SELECTION_SEED, SELECTION_RECORD, *V.TRAINING, ATTRIBUTION, N_EVAL, N_MPRT,
    *V.ROBUSTNESS, S.K, S.SEEDS, S.DEVICE, S.RESULTS_DIR), _relations)

validate = default_validate(CHAPTER)

#: parameters that do not decide the selection (which seeds are scored, where results go, how they are
#: shown or on which device, and where the data are: the data are named by their digest instead)
NOT_SELECTION = ("seeds", "results_dir", "selection_record", "device", "attribution", "n_eval", "n_mprt",
                 "data_root")


def pair_name(a: str, b: str) -> str:
    return f"{a}_vs_{b}"


def metric_name(measure: str, model: str) -> str:
    """The results name of ``measure`` (a metric of :data:`HIGHER_IS_BETTER` or
    :data:`ACCURACY_MEASURES`) for ``model`` (one of :data:`MODELS`)."""
    return f"{measure}_{model}"


#: what chapter 8 reads: every accuracy and attribution measure of every model, and lambda_cl
SIDE_BY_SIDE = SideBySide(cells={c: {m: metric_name(c, m) for m in MODELS} for c in (*ACCURACY_MEASURES,
                                                                                    *HIGHER_IS_BETTER)},
                          values=("lambda_cl",))


def _pair_effect(a: str, b: str) -> claims.Effect:
    return claims.Effect(
        f"effect_{pair_name(a, b)}", f"deletion gain over a random order ({a} minus {b}), the headline method's maps",
        0.05, "five per cent of the intact image's probability over the deletion curve: a reader could see less "
        "in no curve", declared="6838ddf")


def _usable(pair: str) -> Any:
    def applies(m: claims.Metrics) -> str | None:
        return m.get(f"effect_{pair}_why")
    return applies


#: the claims this chapter tests (decided the same way on its results at scale; intro scorecard)
CLAIMS = tuple(
    claims.claim(key, "Moshe et al. 2024", text, CHAPTER.stem, _pair_effect(a, b), applies=_usable(pair_name(a, b)),
                   short=short, protocol=protocol)
    for key, text, (a, b), short, protocol in (
        ("robust_premise", "Adversarially trained (robust) models have more interpretable attributions than "
         "standard ones (the premise the paper builds on, not its finding)", ("pgd_at", "standard"),
         "robust models more interpretable", claims.PREMISE),
        ("nas_vs_standard", "Regularising neural activation sensitivity makes attributions more interpretable than "
         "standard training", ("nas", "standard"), "regulariser more interpretable than standard", claims.PAPER),
        ("nas_vs_robust", "... and more interpretable than adversarial training", ("nas", "pgd_at"),
         "regulariser more interpretable than adversarial training", claims.PAPER),
    ))

#: the consistent-loss model on the same scale (shown in the chapter, not a paper's claim)
CL_PAIR = claims.Claim("cl_interpretable", "this book", "Consistent-loss training makes attributions more "
                         "interpretable than standard training", CHAPTER.stem, (_pair_effect("cl", "standard"),),
                         counted=False, applies=_usable(pair_name("cl", "standard")))

#: what ran beside what the paper ran (the page's settings table; docs/papers.md gives the paper's values)
SETTINGS = (
    Setting('network and data', ('dataset', 'model'),
            'not stated'),
    Setting('robust baseline', ('at_attack',),
            'PGD adversarial training (Madry); fast FGSM-RS (Wong et al.)'),
    Setting('baseline budget and steps', ('at_eps', 'at_steps'),
            'not stated'),
    Setting('regulariser weight lambda', ('lambdas_nas',),
            'not stated (our reading: swept)'),
    Setting('how the weight compared is chosen', ('match_tol', 'selection_seed'),
            'not stated (our reading: clean accuracy matched to the robust baseline, on a seed never scored)'),
    Setting('regularised layers', ('nas_layers',),
            'not stated'),
    Setting('units per step', ('units_per_layer',),
            'not stated (our reading: random subset re-drawn each step)'),
    Setting('regulariser form', ('estimator', 'normalization'),
            'not stated (our reading: mean of ||grad_x a_j||^2; Rademacher projection as cheaper form)'),
    Setting('explanation methods', ('attribution',),
            'Saliency, Integrated Gradients, SmoothGrad, SHAP, LIME (cited)'),
    Setting('training schedule', ('finetune_epochs', 'finetune_lr', 'epochs'),
            'not stated'),
)


# ----------------------------------------------------------------------------- setup

def setup(P: ChapterParams) -> S.Setup:
    """Load the data and the class affinity; one experiment per seed at budget ``at_eps``."""
    return S.setup(P, with_affinity=True, eps=P.at_eps)


# ----------------------------------------------------------------------------- run

def nas_name(lam: float, lam_jac: float) -> str:
    return f"nas-{lam:g}-{lam_jac:g}"


def sweep(P: ChapterParams) -> list[tuple[str, nas.SensitivityObjective]]:
    """The regularised models of the sweep: ``(name, objective)`` per paired weight."""
    return [(nas_name(lam, jac), nas.SensitivityObjective(lam, tuple(P.nas_layers), P.units_per_layer, P.estimator,
                                                          P.normalization, jac, P.nas_max_grad_norm))
            for lam, jac in zip(P.lambdas_nas, P.lambdas_jac)]


def models_to_compare(exp: S.Experiment, P: ChapterParams, members: list[str] | None = None, *,
                      consistent: bool = True) -> dict[str, TrainedModel]:
    """Standard, PGD-AT, the regularised models of the sweep (``members``: their names; default all)
    and (``consistent``) chapter 4's consistent-loss model of one seed, all of ``exp.model``; PGD-AT
    and the regularised models are trained alike (:func:`advinterp.studies.variants.train`; cached)."""
    training = V.Training.from_params(P)
    out = {"standard": exp.trained(exp.model),
           "pgd_at": V.train(exp, training, madry(P.at_eps, P.at_steps, layer=P.layer, attack=P.at_attack))}
    for name, objective in sweep(P):
        if members is None or name in members:
            out[name] = V.train(exp, training, objective)
    if consistent:
        out["cl"] = V.consistent_model(exp, training)
    return out


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
    n_scored: dict[int, int] = field(default_factory=dict)  # per seed: images scored (correct for every model)
    sweep: pd.DataFrame = field(default_factory=pd.DataFrame)  # the selection seed's accuracy rows (every member)
    comparisons: pd.DataFrame = field(default_factory=pd.DataFrame)  # :func:`comparisons`, filled by run

    @property
    def metrics(self) -> pd.DataFrame:
        """Per (seed, model, method), the mean over images."""
        return self.per_image.groupby(["seed", "model", "method"], sort=False)[list(HIGHER_IS_BETTER)].mean().reset_index()


def select(accuracy: pd.DataFrame, P: ChapterParams) -> tuple[str, bool]:
    """The sweep member compared (see the module docstring) and whether it is matched, from the
    accuracy table of the seed the sweep ran on."""
    means = accuracy.groupby("model")[["clean_acc", "aa_acc"]].mean()
    names = [n for n, _ in sweep(P)]
    target = means.loc["pgd_at", "clean_acc"]
    gap = (means.loc[names, "clean_acc"] - target).abs()
    matched = gap[gap <= P.match_tol + 1e-12].index.tolist()
    if matched:
        return str(means.loc[matched, "aa_acc"].idxmax()), True
    return str(gap.idxmin()), False


def scored_images(models: dict[str, TrainedModel], x: torch.Tensor, y: torch.Tensor, n: int) -> torch.Tensor:
    """The first ``n`` of the probes ``x`` that every model of ``models`` classifies correctly: an
    explanation of a wrong prediction explains the error, and the models with lower accuracy would
    be scored on more of them (the same images for every model, so each comparison is paired)."""
    ok = torch.ones(len(y), dtype=torch.bool)
    for tm in models.values():
        ok &= predict(tm.model, x) == y
    return x[ok][:n]


def evaluated(exp: S.Experiment, models: dict[str, TrainedModel], P: ChapterParams, A: torch.Tensor,
              seed: int, *, transfer_check: bool = True) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Accuracy, robustness and consistency rows of every model of one seed
    (:func:`advinterp.studies.variants.evaluate`), and the regularised models' training curves.
    Without ``transfer_check`` no held-out network is trained for the seed and the white-box-versus-
    transfer masking check is skipped (it passes)."""
    ev = V.Evaluation.from_params(P)
    reference = models["standard"].epoch_seconds
    transfer = V.transfer_set(exp, ev, P.at_eps) if transfer_check else None
    acc_rows, curve_rows = [], []
    for name, tm in models.items():
        e = V.evaluate(exp, tm, ev, eps=P.at_eps, layer=P.layer, k=P.k, A=A, reference_time=reference,
                       transfer=transfer)
        acc_rows.append({"seed": seed, "model": name, **{m: e.row[m] for m in ACCURACY_MEASURES},
                         **{f: e.row[f] for f in V.ROBUST_FIELDS if f not in ACCURACY_MEASURES},
                         "epoch_time_ratio": e.row["epoch_time_ratio"]})
        if name.startswith("nas-"):
            curve_rows += [{"seed": seed, "model": name, **h} for h in tm.history]
    return acc_rows, curve_rows


@dataclass(frozen=True)
class Selection:
    """The selection step's outcome: the sweep member compared as "nas", whether it is matched, the
    selection seed's accuracy rows of every member, and the key of the parameters that decided it
    (:func:`selection_key`)."""

    selected: str
    matched: bool
    sweep: list[dict[str, Any]]
    key: str


def selection_key(P: ChapterParams) -> str:
    """The digest of every parameter that decides the selection step (all but :data:`NOT_SELECTION`)."""
    return key_of({k: v for k, v in P.public().items() if k not in NOT_SELECTION})


def choose(P: ChapterParams, A: torch.Tensor) -> Selection:
    """The selection step: the sweep on ``selection_seed`` and the member it selects (:func:`select`);
    it never sees a seed it is scored on."""
    chooser = S.Experiment.from_params(P, seed=P.selection_seed, eps=P.at_eps)
    # the selection reads clean and AutoAttack accuracy only: no held-out network for the transfer check
    rows, _ = evaluated(chooser, models_to_compare(chooser, P, consistent=False), P, A, P.selection_seed,
                        transfer_check=False)
    selected, matched = select(pd.DataFrame(rows), P)
    return Selection(selected, matched, json.loads(json.dumps(plain(rows))), selection_key(P))


def read_selection(P: ChapterParams) -> Selection:
    """The selection ``selection_record`` holds, checked against this run's parameters: a record made with
    other parameters (another sweep, tolerance, training...) cannot decide this run."""
    path = Path(P.selection_record)
    path = path if path.is_absolute() else paths.repo_root() / path
    if not path.is_file():
        fail("selection_record", P.selection_record, "the path of a recorded selection step (JSON written by "
             "advinterp.studies.interpretability.write_selection; the tier runner records it first)")
    payload = json.loads(path.read_text())
    if payload.get("key") != selection_key(P):
        fail("selection_record", P.selection_record, "a selection made with this run's parameters (its key "
             f"{payload.get('key')} differs from this run's {selection_key(P)}: record the selection again)")
    return Selection(payload["selected"], bool(payload["matched"]), payload["sweep"], payload["key"])


def run(setup: S.Setup) -> Result:
    """Take the selection step (the sweep on ``selection_seed`` and its matched regularised model), or read
    it from ``selection_record``; train (or load) and evaluate the compared models of every seed; score
    every attribution method on the first ``n_eval`` probes of each seed that every compared model
    classifies correctly."""
    P = setup.P
    if P.selection_record:
        chosen = read_selection(P)
    else:
        with S.timed(setup, f"selection seed {P.selection_seed}"):
            chosen = choose(P, setup.A)
    selected, matched, sweep_rows = chosen.selected, chosen.matched, chosen.sweep
    acc_rows, curve_rows, all_models = [], [], {}
    for seed, exp in S.each_seed(setup):
        all_models[seed] = models_to_compare(exp, P, [selected])
        rows, curves = evaluated(exp, all_models[seed], P, setup.A, seed)
        acc_rows += rows
        curve_rows += curves
    accuracy = pd.DataFrame(acc_rows)
    compared = {"standard": "standard", "pgd_at": "pgd_at", "nas": selected, "cl": "cl"}
    rows, sanity_rows, maps, ratios = [], [], {}, []
    first = setup.seeds[0]
    digit_mask = P.dataset in ("mnist5k", "mnist")
    x_first = torch.empty(0)
    n_scored = {}
    for seed, exp in setup.experiments.items():
        models = all_models[seed]
        x_eval = scored_images({alias: models[name] for alias, name in compared.items()}, *exp.probes(), P.n_eval)
        n_scored[seed] = len(x_eval)
        ratios.append(float(np.mean([weight_norms(models[selected].model, layer)[0]
                                     / weight_norms(models["standard"].model, layer)[0] for layer in P.nas_layers])))
        for alias, name in compared.items():
            tm = models[name]
            for method in attribution.METHODS:
                m = attribution.cached_attributions(tm.key, tm.model, x_eval, method, digit_mask=digit_mask, seed=seed)
                values = {k: v.numpy() for k, v in m.items() if k != "attributions"}
                rows += [{"seed": seed, "model": alias, "method": method, "image": i,
                          **{k: float(v[i]) for k, v in values.items()}} for i in range(len(x_eval))]
                with torch.no_grad():
                    target = tm.model(x_eval[:P.n_mprt].to(next(tm.model.parameters()).device)).argmax(1)
                corr = sanity.cached_mprt(tm.key, tm.model, x_eval[:P.n_mprt], target, method, seed)
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
                    x_first, ratios, n_scored=n_scored, sweep=pd.DataFrame(sweep_rows))
    result.comparisons = comparisons(result, P)  # the intervals run once; summary, verdicts and figures read them
    return result


def mprt_passes(result: Result, threshold: float = sanity.THRESHOLD) -> pd.DataFrame:
    """Per (model, method): the mean correlation after full randomisation (over seeds) and whether
    the method passes at ``threshold`` (the verdicts use :data:`advinterp.interpret.sanity.THRESHOLD`)."""
    table = result.sanity.groupby(["model", "method"], sort=False).correlation.mean().reset_index()
    table["passes"] = table.correlation <= threshold
    return table


def pair_effects(per_image: pd.DataFrame, a: str, b: str, method: str, metric: str) -> dict[int, Any]:
    """Per seed: the mean over the same images of ``metric(a) - metric(b)`` with ``method``'s maps,
    oriented so that positive means ``a`` is more interpretable, with its image-level interval."""
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    out = {}
    for seed, g in per_image[per_image.method == method].groupby("seed"):
        va = g[g.model == a].sort_values("image")[metric].to_numpy()
        vb = g[g.model == b].sort_values("image")[metric].to_numpy()
        d = sign * (va - vb)
        if np.isfinite(d).sum() >= 2:
            out[int(seed)] = mean_interval(d)
    return out


def comparisons(result: Result, P: ChapterParams) -> pd.DataFrame:
    """One row per (pair, method, metric of :data:`VERDICT_METRICS`): the paired difference oriented so
    that positive means the first model is more interpretable, its interval over seeds and images
    (:func:`advinterp.core.stats.combine`), whether the method passes the sanity check on
    both models (``usable``), whether it is the claim's primary comparison, and the p-value adjusted
    by Holm across the pair's usable comparisons (the descriptive family); ``outcome`` is ``better`` /
    ``worse`` when the adjusted p-value is below 0.05, else ``no difference``."""
    passes = mprt_passes(result).set_index(["model", "method"]).passes
    rows = []
    for (a, b), meaning in PAIRS.items():
        for method in attribution.METHODS:
            usable = bool(passes.get((a, method), False) and passes.get((b, method), False))
            for metric in VERDICT_METRICS:
                per_seed = pair_effects(result.per_image, a, b, method, metric)
                if not per_seed:
                    continue
                iv = combine(list(per_seed.values()))
                rows.append({"a": a, "b": b, "tests": meaning, "method": method, "metric": metric,
                             "family": attribution.FAMILY[metric], "diff": iv.estimate, "lo": iv.lo, "hi": iv.hi,
                             "p": p_value(iv), "usable": usable,
                             "primary": method == P.attribution and metric == PRIMARY})
    table = pd.DataFrame(rows)
    table["p_holm"] = np.nan
    for _, idx in table[table.usable].groupby(["a", "b"]).groups.items():
        table.loc[idx, "p_holm"] = holm(table.loc[idx, "p"].to_numpy())
    significant = table.p_holm < 0.05
    table["outcome"] = np.where(significant & (table["diff"] > 0), "better",
                                np.where(significant & (table["diff"] < 0), "worse", "no difference"))
    return table


# ----------------------------------------------------------------------------- summarize

def aliases(result: Result) -> dict[str, str]:
    """Metric-name alias -> model name of the accuracy table."""
    return {"standard": "standard", "pgd_at": "pgd_at", "nas": result.selected, "cl": "cl"}


def sweep_table(result: Result, P: ChapterParams) -> pd.DataFrame:
    """Per model (the sweep, PGD-AT and standard) on the selection seed, which chose the member
    compared: clean, PGD and AutoAttack accuracy (std NaN: one seed), and whether it shows gradient
    masking."""
    names = ["standard", "pgd_at", *[n for n, _ in sweep(P)]]
    acc = result.sweep[result.sweep.model.isin(names)]
    g = acc.groupby("model", sort=False)
    out = g[["clean_acc", "pgd_acc", "aa_acc"]].agg(["mean", "std"])
    out.columns = [f"{a}{'' if b == 'mean' else '_std'}" for a, b in out.columns]
    out["masking"] = g.masking.max().astype(bool)
    return out.loc[names]


def summarize(result: Result, setup: S.Setup) -> dict[str, Any]:
    """Chapter 7's metrics (the names are this function's; see :func:`metric_name`)."""
    P = setup.P
    names = aliases(result)
    head = result.metrics[result.metrics.method == P.attribution]
    measured = [c for c in HIGHER_IS_BETTER if head[c].notna().any()]
    metrics = method_metrics(head, {a: a for a in names}, measured, by="model")
    metrics.update(method_metrics(result.accuracy, names, list(ACCURACY_MEASURES), by="model"))
    comp = result.comparisons
    for _, r in comp[comp.method == P.attribution].iterrows():
        key = f"{r.metric}_{pair_name(r.a, r.b)}"
        metrics.update({key: r["diff"], f"{key}_lo": r.lo, f"{key}_hi": r.hi, f"{key}_p_holm": r.p_holm})
    passes = mprt_passes(result).set_index(["model", "method"]).passes
    for (a, b) in PAIRS:
        pair = pair_name(a, b)
        usable = comp[(comp.a == a) & (comp.b == b) & comp.usable]
        metrics.update({f"n_better_{pair}": int((usable.outcome == "better").sum()),
                        f"n_worse_{pair}": int((usable.outcome == "worse").sum()), f"n_compared_{pair}": len(usable)})
        metrics.update(per_seed_metrics(f"effect_{pair}", pair_effects(result.per_image, a, b, P.attribution, PRIMARY)))
        if not (passes.get((a, P.attribution), False) and passes.get((b, P.attribution), False)):
            metrics[f"effect_{pair}_why"] = (f"{P.attribution} fails the randomisation check on {a} or {b}, so its "
                                             "maps cannot decide")
    for _, r in mprt_passes(result).iterrows():
        metrics[f"mprt_pass_{r.method}_{r.model}"] = int(r.passes)
        metrics[f"mprt_corr_{r.method}_{r.model}"] = float(r.correlation)
    metrics.update(with_spread({"nas_weight_norm_ratio": result.weight_norm_ratio,
                                "n_scored": [result.n_scored[s] for s in setup.seeds]}))
    selected = next(o for n, o in sweep(P) if n == result.selected)
    clean = result.accuracy.groupby("model").clean_acc.mean()
    metrics.update({"attribution": P.attribution, "primary_metric": PRIMARY, "lambda_nas": selected.lam,
                    "lambda_jac": selected.lam_jac, "matched": int(result.matched), "match_tol": P.match_tol,
                    "selection_seed": P.selection_seed,
                    "lambda_cl": P.lambda_cl, "clean_gap_nas_vs_pgd_at": float(clean[result.selected] - clean["pgd_at"]),
                    "n_seeds": len(setup.seeds), "n_eval": P.n_eval, "n_sweep": len(P.lambdas_nas),
                    "n_verdict_metrics": len([m for m in VERDICT_METRICS if m in measured]),
                    "mprt_threshold": sanity.THRESHOLD, "at_eps": P.at_eps})
    sweep_aa = sweep_table(result, P)
    metrics["aa_acc_best_sweep"] = float(sweep_aa.loc[[n for n, _ in sweep(P)], "aa_acc"].max())
    return metrics


# ----------------------------------------------------------------------------- verdicts

def threshold_table(result: Result, P: ChapterParams) -> pd.DataFrame:
    """Whether each claim's primary comparison is usable (its method passes the randomisation check
    on both models) at each threshold of :data:`MPRT_THRESHOLDS`, and how many of the descriptive
    comparisons are."""
    comp, rows = result.comparisons, []
    for threshold in MPRT_THRESHOLDS:
        passes = mprt_passes(result, threshold).set_index(["model", "method"]).passes
        for (a, b) in PAIRS:
            ok = {m: bool(passes.get((a, m), False) and passes.get((b, m), False)) for m in attribution.METHODS}
            sub = comp[(comp.a == a) & (comp.b == b)]
            rows.append({"threshold": threshold, "pair": pair_name(a, b), "primary usable": ok[P.attribution],
                         "descriptive usable": int(sum(ok[m] for m in sub.method)), "of": len(sub)})
    return pd.DataFrame(rows)


def verdicts(result: Result, setup: S.Setup, metrics: dict[str, Any]) -> dict[str, str]:
    """Words the prose glues, each decided by the numbers."""
    P = setup.P
    out = claims.claim_words([*CLAIMS, CL_PAIR], P.public(), metrics)
    out["selection_words"] = (f"read from its record (`{P.selection_record}`), made before any scored seed ran"
                              if P.selection_record else "taken at the start of this run, before any scored seed")
    passing = mprt_passes(result)
    failing = passing[~passing.passes]
    out["mprt_failures"] = (", ".join(f"{r.method} on {r.model}" for _, r in failing.iterrows())
                            if len(failing) else "none")
    thresholds = threshold_table(result, P)
    changes = thresholds.groupby("pair")["primary usable"].nunique()
    out["threshold_words"] = ("the same at every threshold" if (changes == 1).all() else
                              "different at some thresholds (see the table): the randomisation check decides "
                              "whether the claim can be measured at all")
    out["matched_words"] = (f"within {P.match_tol:g} of PGD-AT's clean accuracy" if result.matched else
                            f"no sweep member came within {P.match_tol:g} of PGD-AT's clean accuracy; the closest "
                            "is compared, so this comparison is *not* at matched accuracy")
    best, robust = metrics["aa_acc_best_sweep"], metrics["aa_acc_pgd_at"]
    out["sweep_robustness_words"] = (
        f"comes near PGD-AT's ({best:.3f} against {robust:.3f} under AutoAttack's core)" if best >= robust - NEAR
        else f"stays far below PGD-AT's ({best:.3f} against {robust:.3f} under AutoAttack's core): the regularised "
             "models are compared with a much more robust model, and the sweep shows the price in clean accuracy "
             "of pushing the weights further")
    out["masking_verdict"] = V.masking_words(result.accuracy.rename(columns={"model": "method"}))
    return out


# ----------------------------------------------------------------------------- display helpers

def write_selection(selection: Selection, path: str | Path, provenance: Mapping[str, Any]) -> Path:
    """Record the selection step (with ``provenance``: commit, data digest, seconds, ...) at ``path``,
    atomically, before any scored seed runs: the scored runs read it (``selection_record``)."""
    payload = {"selected": selection.selected, "matched": selection.matched, "sweep": selection.sweep,
               "key": selection.key, "provenance": dict(provenance)}
    atomic_write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n", Path(path))
    return Path(path)


def robustness_table(result: Result) -> pd.DataFrame:
    """Each compared model's robustness, mean over seeds: :func:`advinterp.studies.variants.robustness_table`."""
    return V.robustness_table(result.accuracy, "model")
