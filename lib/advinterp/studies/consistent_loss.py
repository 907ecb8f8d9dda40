"""Chapter 4's study: standard vs adversarial vs consistent-loss training, compared on the same inputs.

Every variant starts from the standard model's weights and is fine-tuned for ``finetune_epochs``
with the learning rate annealed (:mod:`advinterp.studies.variants`); only the loss differs. The
fair test of Dong et al.'s claim (:func:`common_test`):

* **the same adversarial images for every model**: one joint PGD attack against all compared
  models at once (:func:`advinterp.attacks.linf.pgd_ensemble`), keeping the images that fool
  **every** model (its size is reported);
* **the same K** for every model (under multinomial sampling E[p^T A p] = (1 - 1/K) pi^T A pi + 1/K,
  so a K that differed between models would move their consistency by itself);
* the **gap** ``consis_adv_true - consis_real`` of each model on those images (negative: adversarial
  images scramble its neurons' concepts), and the effect ``gap(consistent loss) - gap(adversarial
  training)`` with a bootstrap interval over the images, paired (one resample for both models).

Each model's own white-box examples (:func:`advinterp.studies.variants.evaluate`) stay as
descriptive numbers: they are different images for every model. Training curves show whether the
fine-tuning has converged (:data:`CONVERGED`: the adversarial training accuracy changes by less than
that over the last epoch, for every model and seed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from ..attacks.advdata import AdversarialSet, cached_adversarial_set
from ..core.params import Chapter, ChapterParams, at_most
from ..core.validation import fail
from ..interpret import consistency, layer_stats
from ..interpret.dissection import fooled, most_consistent, neuron_gallery_rows
from ..models.layers import activations
from ..report.results import mean_std_table, method_metrics, with_spread
from ..report.settings import Setting
from ..interpret.affinity import AFFINITY
from ..core.stats import SeedEffect, combine_frame, from_metrics, per_seed_metrics
from ..report.verdicts import decide
from ..training import adversarial as adv_obj
from ..training.adversarial import relative_distance
from ..report import claims
from . import SideBySide, default_validate
from . import setting as S
from .dissect import DONG_NETWORK
from . import variants as V


# ----------------------------------------------------------------------------- declarations

LAMBDA_SQUARED = adv_obj.LAMBDA.renamed("lambda_squared", default=100.0, help="control (first seed): the literal "
                                        "squared-distance term at this weight, to show its trivial solution")

#: what the study measures per (seed, method); chapter 8 reads them against lambda
MEASURES = ("clean_acc", "pgd_acc", "aa_acc", "masking", "consis_real", "consis_adv_true", "consis_adv_target",
            "dead_units")

#: the fair test's per-model statistics on the common images
COMMON = ("consis_real", "consis_adv_true", "consis_gap", "feature_dist")

#: the adversarial training accuracy changes by less than this over the last epoch: converged
CONVERGED = 0.01


def _relations(P: ChapterParams) -> None:
    S.check_setting(P)
    V.check_training(P)
    if P.eval_steps <= P.train_steps:
        fail("eval_steps", P.eval_steps, f"more than train_steps={P.train_steps} (the evaluation attack must be stronger)")
    at_most("k", P.k, "n_probe", P.n_probe)
    at_most("k_show", P.k_show, "k", P.k)
    at_most("n_robust", P.n_robust, "n_probe", P.n_probe)


CHAPTER = Chapter("04-consistent-loss", (
    *V.TRAINED, S.HELDOUT, *V.TRAINING, LAMBDA_SQUARED, *V.ROBUSTNESS, S.K, AFFINITY, S.N_SHOW, S.K_SHOW, S.N_BOOT,
    S.SEEDS, S.DEVICE, S.RESULTS_DIR), _relations)

validate = default_validate(CHAPTER)

#: the training curves' columns: the end-of-epoch monitor on fixed training images
#: (:func:`advinterp.training.loop.train`), not running averages over the epoch
CURVES = {"clean_acc_end": "clean accuracy\n(end of epoch, 1,000 training images)",
          "adv_acc_end": "accuracy under the training attack\n(end of epoch, same images)"}


def lambda_metric(measure: str, lam: float) -> str:
    """The name of ``measure`` (one of :data:`MEASURES`) at consistency weight ``lam``."""
    return f"{measure}_lambda_{lam:g}"


def lambdas_in(metrics: dict[str, Any]) -> list[float]:
    """The lambdas of a results file's metrics (the inverse of :func:`lambda_metric`)."""
    prefix = f"{MEASURES[0]}_lambda_"
    found = []
    for name in metrics:
        if name.startswith(prefix) and not name.endswith(("_std", "_per_seed")):
            try:
                lam = float(name[len(prefix):])
            except ValueError:  # clean_acc_lambda_max: the largest lambda's value, not a grid point
                continue
            if lambda_metric(MEASURES[0], lam) == name:
                found.append(lam)
    return sorted(found)


def lambda_rows(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every measure of :data:`MEASURES` (mean and ``_std``) at each lambda of a results file's
    metrics, a row per lambda (chapter 8's curve). KeyError names a missing metric."""
    out = []
    for lam in lambdas_in(dict(metrics)):
        entry: dict[str, Any] = {"lambda": lam}
        for measure in MEASURES:
            key = lambda_metric(measure, lam)
            if key not in metrics:
                raise KeyError(key)
            entry[measure], entry[f"{measure}_std"] = metrics[key], metrics.get(f"{key}_std", float("nan"))
        out.append(entry)
    return out


#: what chapter 8 reads: the measures against lambda
SIDE_BY_SIDE = SideBySide(curve=lambda_rows)

#: the effect the claim is decided by
CONSISTENT = claims.Effect(
    "effect_consistent_loss", "consistency gap (adversarial minus clean, true labels) of the consistent-loss model "
    "minus that of adversarial training, on images that fool both, same K", 0.05,
    "a twentieth of consis's range: less is a label or two among the top-K", declared="6838ddf")

#: the claim this chapter tests (decided the same way on its results at scale; intro scorecard)
CLAIMS = (
    claims.claim("consistent_loss", "Dong et al. 2017", "Adversarial training with the consistent loss keeps "
                   "neurons more consistent on adversarial images than adversarial training alone", CHAPTER.stem,
                   CONSISTENT, short="consistent loss keeps neurons consistent (vs adversarial training)"),
)

#: what ran beside what the paper ran (the page's settings table; docs/papers.md gives the paper's values)
SETTINGS = (
    DONG_NETWORK,
    Setting('training attack', ('train_attack',),
            'not stated (generated on the fly: FGSM / ILLC / PGD)'),
    Setting('training budget and steps', ('train_eps', 'train_steps'),
            'not stated'),
    Setting('weight of CE on x_adv', ('alpha',),
            'not stated (our reading: 1)'),
    Setting('consistency weight lambda', ('lambdas', 'lambda_cl'),
            'not stated (our reading: swept, e.g. 0, 0.1, 1, 10; 0 = plain adversarial training)'),
    Setting('consistent layer phi', ('layer',),
            'the analysed layer (which: not stated)'),
    Setting('consistency term', ('consistency', 'anchor_clean', 'lambda_squared'),
            'not stated (our reading: ||phi(x) - phi(x_adv)||^2 / d; cosine as option)'),
    Setting('training schedule', ('finetune_epochs', 'finetune_lr', 'epochs'),
            'not stated (fine-tuning vs from scratch not stated)'),
    Setting('robustness evaluation', ('eval_steps', 'eval_restarts', 'eval_loss', 'aa_iters', 'aa_targets'),
            'PGD accuracy (L-inf, random start); steps/restarts not stated; no AutoAttack'),
)


# ----------------------------------------------------------------------------- setup

def setup(P: ChapterParams) -> S.Setup:
    """Load the data and the class affinity; one experiment per seed at budget ``train_eps``."""
    return S.setup(P, with_affinity=True, eps=P.train_eps)


# ----------------------------------------------------------------------------- run

def controls(exp: S.Experiment, training: V.Training, P: ChapterParams) -> dict[str, V.Variant]:
    """The two controls (trained for the first seed only): the literal squared-distance term at
    ``lambda_squared`` (its trivial solution), and the consistent loss at ``lambda_cl`` with the
    other anchoring choice."""
    other = "symmetric" if P.anchor_clean else "anchored"
    squared = training.objective(P.lambda_squared, consistency="squared")
    anchored = training.objective(training.lambda_cl, anchor_clean=not P.anchor_clean)
    return {"squared": V.Variant("squared", P.lambda_squared, V.train(exp, training, squared), control=True),
            other: V.Variant(other, training.lambda_cl, V.train(exp, training, anchored), control=True)}


@dataclass
class CommonTest:
    """The fair test of one seed: the joint attack's images that fool every compared model, the K
    used, each model's statistics on them and the paired effects with their intervals."""

    n_images: int
    k: int
    per_model: dict[str, dict[str, float]]
    effects: dict[str, SeedEffect]
    #: the common images (clean, adversarial, true labels) that fool every model
    images: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None


def common_test(exp: S.Experiment, models: dict[str, V.Variant], training: V.Training, ev: V.Evaluation, *, k: int,
                A: torch.Tensor, n_boot: int, pairs: Sequence[tuple[str, str]]) -> CommonTest:
    """Every model of ``models`` on the same images and the same K (see the module docstring); the
    effect ``gap(a) - gap(b)`` for each pair ``(a, b)`` of ``pairs``."""
    names = list(models)
    joint: AdversarialSet = cached_adversarial_set(
        "pgd_ensemble", [models[n].model for n in names], exp.bundle, exp.probe_index, eps=training.eps,
        steps=ev.eval_steps, seed=exp.seed, device=exp.device, restarts=ev.eval_restarts)
    mask = torch.ones(len(joint), dtype=torch.bool)
    for n in names:
        mask &= fooled(models[n].model.model, joint)
    n_images = int(mask.sum())
    kk = layer_stats.selection_k(k, n_images)
    nan = SeedEffect(float("nan"), float("nan"), float("nan"), n_images)
    if kk == 0:
        return CommonTest(n_images, 0, {n: {s: float("nan") for s in COMMON} for n in names},
                          {f"{a}_vs_{b}": nan for a, b in pairs})
    x, x_adv, y = joint.x[mask], joint.x_adv[mask], joint.y[mask]
    nets = {n: models[n].model.model for n in names}
    test = consistency.gap_test(nets, x, x_adv, y, training.layer, kk, A, pairs=pairs, n_boot=n_boot, seed=exp.seed)
    per_model = {}
    for n, net in nets.items():
        phi = activations(net, torch.cat([x, x_adv]), [training.layer])[training.layer]
        per_model[n] = {**{s: test.summaries[n][s] for s in ("consis_real", "consis_adv_true", "consis_gap")},
                        "feature_dist": float(relative_distance(phi[:n_images], phi[n_images:]).mean())}
    effects = {f"{a}_vs_{b}": e for (a, b), e in test.effects.items()}
    return CommonTest(n_images, kk, per_model, effects, (x, x_adv, y))


def gap_difference(a: torch.nn.Module, b: torch.nn.Module, test: CommonTest, layer: str, A: torch.Tensor, *,
                   n_boot: int, seed: int) -> SeedEffect:
    """``gap(a) - gap(b)`` on a seed's common images with its K, bootstrap over the images (paired:
    :func:`advinterp.interpret.consistency.gap_test`)."""
    if test.images is None or test.k == 0:
        return SeedEffect(float("nan"), float("nan"), float("nan"), test.n_images)
    return consistency.gap_test({"a": a, "b": b}, *test.images, layer, test.k, A, pairs=[("a", "b")], n_boot=n_boot,
                                seed=seed).effects[("a", "b")]


def epoch_effects(result: Result, setup: S.Setup) -> pd.DataFrame:
    """The claim's effect after every fine-tuning epoch, for every seed: the models as they were
    after each epoch (:meth:`advinterp.training.loop.TrainedModel.snapshot`) on the seed's common
    images with its K. Whether the verdict holds still from epoch to epoch says whether it hangs on
    where training stopped. Empty when the models kept no epochs (trained from scratch)."""
    P = setup.P
    cl = V.method_name(P.lambda_cl)
    rows = []
    for seed, test in result.common.items():
        a, b = result.models[seed][cl].model, result.models[seed]["at"].model
        if not (a.config.snapshots and b.config.snapshots):
            return pd.DataFrame(rows)
        for epoch in range(1, len(a.history) + 1):
            e = gap_difference(a.snapshot(epoch), b.snapshot(epoch), test, P.layer, setup.A, n_boot=P.n_boot, seed=seed)
            rows.append({"seed": seed, "epoch": epoch, "estimate": e.estimate, "lo": e.lo, "hi": e.hi, "n": e.n})
    return pd.DataFrame(rows)


@dataclass
class Result:
    table: pd.DataFrame                                   # one row per (seed, method)
    evaluations: dict[tuple[int, str], V.Evaluated]
    models: dict[int, dict[str, V.Variant]]
    common: dict[int, CommonTest]
    epochs: pd.DataFrame = field(default_factory=pd.DataFrame)  # :func:`epoch_effects`, filled by run


def run(setup: S.Setup) -> Result:
    """Train (or load) every variant of every seed, and the controls of the first seed; evaluate each,
    and run the fair test on the main variants of each seed."""
    P = setup.P
    training, ev = V.Training.from_params(P), V.Evaluation.from_params(P)
    rows, evals, models, common = [], {}, {}, {}
    cl = V.method_name(training.lambda_cl)
    for seed, exp in S.each_seed(setup):
        main = V.variants(exp, training)
        extra = controls(exp, training, P) if seed == setup.seeds[0] else {}
        reference = main["standard"].model.epoch_seconds
        transfer = V.transfer_set(exp, ev, training.eps)
        for name, v in {**main, **extra}.items():
            e = V.evaluate(exp, v.model, ev, eps=training.eps, layer=training.layer, k=P.k, A=setup.A,
                           reference_time=reference, transfer=transfer)
            rows.append({"seed": seed, "method": name, "lambda": v.lam, "control": v.control, **e.row})
            evals[(seed, name)] = e
        pairs = [(V.method_name(lam), "at") for lam in training.lambdas] + [("at", "standard"), (cl, "standard")]
        common[seed] = common_test(exp, main, training, ev, k=P.k, A=setup.A, n_boot=P.n_boot, pairs=pairs)
        models[seed] = {**main, **extra}
    result = Result(pd.DataFrame(rows), evals, models, common)
    result.epochs = epoch_effects(result, setup)
    return result


# ----------------------------------------------------------------------------- summarize

def common_table(result: Result) -> pd.DataFrame:
    """Per (seed, method): the fair test's images, K and statistics (the main variants)."""
    return pd.DataFrame([{"seed": s, "method": m, "n_images": c.n_images, "k": c.k, **stats}
                         for s, c in result.common.items() for m, stats in c.per_model.items()])


def training_curves(result: Result) -> pd.DataFrame:
    """Per (seed, method, epoch): the end-of-epoch clean and adversarial accuracy on fixed training
    images (:data:`CURVES`); ``control`` marks the first seed's controls."""
    rows = []
    for seed, ms in result.models.items():
        for name, v in ms.items():
            if v.lam is None:
                continue
            rows += [{"seed": seed, "method": name, "control": v.control, "epoch": h["epoch"] + 1,
                      **{c: h.get(c, float("nan")) for c in CURVES}} for h in v.model.history]
    return pd.DataFrame(rows)


def last_epoch_change(curves: pd.DataFrame) -> float:
    """The largest change of the end-of-epoch adversarial accuracy over the last epoch, any (seed,
    method) that is not a control (the convergence criterion reads it against :data:`CONVERGED`)."""
    main = curves[~curves.control]
    last = main[main.epoch >= main.epoch.max() - 1].groupby(["seed", "method", "epoch"]).adv_acc_end.mean()
    change = last.groupby(["seed", "method"]).diff().abs().dropna()
    return float(change.max()) if len(change) else float("nan")


def summarize(result: Result, setup: S.Setup) -> dict[str, Any]:
    """Chapter 4's metrics (the names are this function's). ``<measure>_<model>`` for the standard,
    plain adversarial (``at``) and consistent-loss (``cl``) models, mean, ``_std`` and per seed."""
    P = setup.P
    table = result.table
    main = table[~table.control]
    cl = V.method_name(P.lambda_cl)
    models = {"standard": "standard", "at": "at", "cl": cl}
    metrics = method_metrics(main, models, list(MEASURES))
    metrics.update(method_metrics(main, models, ["weight_norm_layer", "weight_norm_next", "whitebox_consis_gap",
                                                 "whitebox_n_fooled", "whitebox_k"]))
    common = common_table(result)
    metrics.update(method_metrics(common, models, list(COMMON)))
    metrics.update(with_spread({"common_n_images": [c.n_images for c in result.common.values()],
                                "common_k": [c.k for c in result.common.values()]}))
    curves = training_curves(result)
    last = curves[curves.epoch == curves.epoch.max()]
    metrics.update(with_spread({"epoch_time_ratio_cl": main[main.method == cl]["epoch_time_ratio"],
                                "train_adv_acc_last_cl": last[last.method == cl]["adv_acc_end"],
                                "train_adv_acc_last_at": last[last.method == "at"]["adv_acc_end"]}))
    for pair in next(iter(result.common.values())).effects:
        metrics.update(per_seed_metrics(f"common_gap_{pair.replace('-', '')}",
                                        {s: c.effects[pair] for s, c in result.common.items()}))
    metrics.update(per_seed_metrics(CONSISTENT.name, {s: c.effects[f"{cl}_vs_at"] for s, c in result.common.items()}))
    metrics.update({"train_attack_steps": P.train_steps, "lambda_cl": P.lambda_cl, "n_seeds": len(setup.seeds),
                    "expected_time_ratio": P.train_steps + 2, "finetune_epochs": P.finetune_epochs or 0,
                    "train_eps": P.train_eps, "lambda_squared": P.lambda_squared, "converged_tol": CONVERGED})
    for lam, rows in main[main["lambda"].notna()].groupby("lambda"):  # the lambda trade-off, for chapter 8
        metrics.update(with_spread({lambda_metric(c, lam): rows[c] for c in MEASURES}))
    top = main[main["lambda"] == max(P.lambdas)]
    first = setup.seeds[0]
    metrics.update({"lambda_max": max(P.lambdas), "dead_units_lambda_max": top.dead_units.mean(),
                    "clean_acc_lambda_max": top.clean_acc.mean(),
                    "n_units": result.evaluations[(first, "standard")].dissection.real[P.layer].n_neurons})
    for method in table[table.control].method:  # the first seed's controls (n = 1)
        row = table[table.method == method].iloc[0]
        metrics.update({f"{c}_{method}": float(row[c]) for c in ("clean_acc", "pgd_acc", "aa_acc", "dead_units",
                                                                 "whitebox_consis_gap", "weight_norm_layer")})
    metrics["train_adv_acc_last_change"] = last_epoch_change(curves)
    for epoch, rows in result.epochs.groupby("epoch") if len(result.epochs) else ():
        metrics.update(per_seed_metrics(f"{CONSISTENT.name}_epoch_{epoch}", {
            int(r.seed): SeedEffect(r.estimate, r.lo, r.hi, int(r.n)) for r in rows.itertuples()}))
    return metrics


# ----------------------------------------------------------------------------- verdicts

def aa_words(table: pd.DataFrame) -> str:
    """How much AutoAttack's core lowers PGD's accuracy on the same images (largest over models and seeds)."""
    return f"lowers the PGD accuracy by at most {float(table.aa_drop.max()):.3f} on the same images"


def epoch_verdicts(metrics: dict[str, Any]) -> list[tuple[int, str]]:
    """The claim's verdict after each fine-tuning epoch (from :func:`epoch_effects`' metrics)."""
    out = []
    epoch = 1
    while f"{CONSISTENT.name}_epoch_{epoch}_per_seed" in metrics:
        per_seed = [e for e in from_metrics(f"{CONSISTENT.name}_epoch_{epoch}", metrics) or [] if e.estimate == e.estimate]
        out.append((epoch, decide(CONSISTENT, per_seed).words if per_seed else "not measured"))
        epoch += 1
    return out


def verdicts(result: Result, setup: S.Setup, metrics: dict[str, Any]) -> dict[str, str]:
    """Words the prose glues, decided by intervals (or stating numbers)."""
    change = metrics["train_adv_acc_last_change"]
    by_epoch = epoch_verdicts(metrics)
    last = [v for _, v in by_epoch[-3:]]
    return {
        **claims.claim_words(CLAIMS, setup.P.public(), metrics),
        "epoch_verdicts": "; ".join(f"epoch {e}: {v}" for e, v in by_epoch) or "not kept (trained from scratch)",
        "epoch_stability": ("the same over the last three epochs" if len(set(last)) == 1 and len(last) == 3
                            else "not the same over the last three epochs: the verdict depends on where "
                                 "training stops"),
        "masking_verdict": V.masking_words(result.table),
        "aa_words": aa_words(result.table),
        "converged_words": ("meets the criterion" if change < CONVERGED else "does **not** meet the criterion")
        if change == change else "cannot be checked (one epoch)",
    }


# ----------------------------------------------------------------------------- display helpers

def effects_table(result: Result) -> pd.DataFrame:
    """Per (seed, pair): the paired effect gap(a) - gap(b) on the common images and its interval."""
    return pd.DataFrame([{"seed": s, "pair": pair, "estimate": e.estimate, "lo": e.lo, "hi": e.hi, "n_images": e.n}
                         for s, c in result.common.items() for pair, e in c.effects.items()])


def effect_intervals(result: Result) -> pd.DataFrame:
    """Per pair: the fair test's effect ``gap(a) - gap(b)`` combined over seeds and images (for the
    figure); column ``panel`` is constant (one panel)."""
    return combine_frame(effects_table(result).assign(effect="gap", panel="common images"), ["panel", "pair", "effect"])


def epoch_intervals(result: Result) -> pd.DataFrame:
    """Per epoch: the claim's effect combined over seeds (for the figure); one panel."""
    if result.epochs.empty:
        return pd.DataFrame(columns=["panel", "epoch", "effect", "estimate", "lo", "hi", "n_seeds"])
    return combine_frame(result.epochs.assign(effect="gap", panel="the same common images"), ["panel", "epoch", "effect"])


def before_after_rows(result: Result, setup: S.Setup, methods: Sequence[str] | None = None) -> list[dict[str, object]]:
    """Gallery rows (:func:`advinterp.report.figures.galleries.neuron_rows`) of the ``n_show`` most consistent
    neurons of each of ``methods`` (default: the standard model and the consistent-loss model of
    ``lambda_cl``; first seed): top real and top adversarial probes."""
    seed = setup.seeds[0]
    rows: list[dict[str, object]] = []
    for method in methods or ("standard", V.method_name(setup.P.lambda_cl)):
        v, e = result.models[seed][method], result.evaluations[(seed, method)]
        for layer, neuron in most_consistent(e.dissection.table, setup.P.n_show):
            for row in neuron_gallery_rows(v.model.model, e.dissection, e.whitebox, e.dissection.target, layer, neuron,
                                           setup.classes, setup.P.k_show):
                rows.append({**row, "label": f"{method}\n{row['label']}"})
    return rows


def fair_table(result: Result) -> pd.DataFrame:
    """The fine-tuned models of every seed, controls left out (one row per seed and method)."""
    return result.table[~result.table.control]


def measures_table(result: Result) -> pd.DataFrame:
    """Each method's measures as ``mean ± std`` over seeds (controls left out)."""
    return mean_std_table(fair_table(result), "method", [*MEASURES, "weight_norm_layer", "weight_norm_next",
                                                         "train_adv_acc", "epoch_time_ratio", "whitebox_consis_gap",
                                                         "whitebox_n_fooled", "whitebox_k"])


def robustness_table(result: Result) -> pd.DataFrame:
    """Each method's robustness, mean over seeds (controls left out): :func:`advinterp.studies.variants.robustness_table`."""
    return V.robustness_table(fair_table(result), "method")
