"""What chapters 4, 5 and 7 share, and chapter 8 reads: the trained variants of one seed's network and
their evaluation, driven by two small config objects.

* :class:`Training` - the adversarial fine-tuning settings (:data:`TRAINING`, declared here once):
  :meth:`Training.objective` is the consistent-loss objective at a weight lambda (0: plain
  adversarial training, the essential control);
* :class:`Variant` - a trained model with its method name and its consistency weight (a number);
  :func:`variants` gives the standard model, plain adversarial training and the consistent loss at
  every lambda, :func:`train` any other objective trained the same way;
* :class:`Evaluation` - how robustness is measured (:data:`ROBUSTNESS`): :func:`robustness` runs
  AutoAttack's core and the gradient-masking checks (:mod:`advinterp.attacks.robustness`) reusing
  the seed's shared adversarial sets (:func:`whitebox_set`, :func:`transfer_set`) instead of
  recomputing them; :func:`evaluate` adds accuracy, consistency and cost.

Editing a chapter's study never changes these: chapters 5 and 7 get chapter 4's models and numbers
from here, by the same cache keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..attacks import apgd
from ..attacks.advdata import AdversarialSet, cached_adversarial_set
from ..attacks.robustness import CHECKS, PGD_OF_LOSS, RobustnessReport, cached_robustness
from ..core.params import ChapterParams, choice, integer, listof, number
from ..core.validation import fail
from ..interpret.dissection import Dissection, consistency_on_fooled, neuron_report
from ..models.architectures import check_layer
from ..models.layers import dead_units, weight_norms
from ..models.predict import accuracy, predict
from ..training import adversarial as adv_obj
from ..training.adversarial import AdversarialObjective
from ..training.loop import TrainedModel
from ..training.objectives import Objective
from . import setting as S

LAMBDAS = listof(adv_obj.LAMBDA, "lambdas", [10.0], "consistency weights (lambda 0, plain adversarial "
                 "training, is always added)")
LAMBDA_CL = adv_obj.LAMBDA.renamed("lambda_cl", default=10.0, help="the lambda whose model the _cl numbers report "
                                   "(one of lambdas)")
FINETUNE_EPOCHS = integer("finetune_epochs", 6, 1, 10_000, "epochs of adversarial fine-tuning from the standard "
                          "model (None: train from scratch with the recipe)", optional=True)
FINETUNE_LR = number("finetune_lr", 0.002, 0.0, 10.0, "its initial learning rate, annealed (cosine) over the epochs",
                     lo_open=True)
#: the adversarial-training settings; chapters 4, 5 and 7 declare these objects
TRAINING = (adv_obj.TRAIN_ATTACK, adv_obj.TRAIN_EPS, adv_obj.TRAIN_STEPS, adv_obj.ALPHA, LAMBDAS, LAMBDA_CL,
            adv_obj.LAYER, adv_obj.CONSISTENCY, adv_obj.ANCHOR_CLEAN, FINETUNE_EPOCHS, FINETUNE_LR)
EVAL_STEPS = integer("eval_steps", 20, 1, 1000, "steps of the evaluation PGD (more than the training attack's)")
EVAL_RESTARTS = integer("eval_restarts", 2, 1, 100, "its random restarts")
EVAL_LOSS = choice("eval_loss", "ce", tuple(PGD_OF_LOSS), "its loss: ce (Madry et al.) | margin (Carlini-Wagner)")
AA_TARGETS = apgd.APGD_TARGETS.renamed("aa_targets", default=3,
                                       help="target classes of APGD-T (AutoAttack: 9; 3 at the CPU default)")
N_ROBUST = integer("n_robust", 200, 10, None, "probes (the first ones) on which AutoAttack's core and the "
                   "gradient-masking checks run")
#: how every model's robustness is measured (chapters 4 and 7)
ROBUSTNESS = (EVAL_STEPS, EVAL_RESTARTS, EVAL_LOSS, apgd.APGD_ITERS, AA_TARGETS, N_ROBUST)
#: the data and recipe every variant is trained on
TRAINED = (*S.DATA, S.EPOCHS, S.MAX_TRAIN, S.N_PROBE)
#: the robustness report's fields that become columns (masking checks as 0/1)
ROBUST_FIELDS = ("aa_acc", "fgsm_acc", "transfer_acc", "masking", *CHECKS)
#: the schedule of every fine-tuning: the learning rate annealed (cosine) over ``finetune_epochs``
FINETUNE_SCHEDULE = "cosine"


def check_training(P: ChapterParams) -> None:
    """Relations of the training parameters (chapters 4, 5, 7)."""
    if P.lambda_cl <= 0:
        fail("lambda_cl", P.lambda_cl, "a positive consistency weight (lambda 0 is plain adversarial training)")
    if P.lambda_cl not in P.lambdas:
        fail("lambda_cl", P.lambda_cl, f"one of lambdas={list(P.lambdas)} (the consistent-loss model it reports)")
    check_layer("layer", P.layer, P.model)


@dataclass(frozen=True)
class Training:
    """The adversarial fine-tuning settings of :data:`TRAINING`."""

    attack: str
    eps: float
    steps: int
    alpha: float
    lambdas: tuple[float, ...]
    lambda_cl: float
    layer: str
    consistency: str
    anchor_clean: bool
    finetune_epochs: int | None
    finetune_lr: float

    @classmethod
    def from_params(cls, P: ChapterParams) -> Training:
        return cls(P.train_attack, P.train_eps, P.train_steps, P.alpha, tuple(map(float, P.lambdas)),
                   float(P.lambda_cl), P.layer, P.consistency, P.anchor_clean, P.finetune_epochs, P.finetune_lr)

    def objective(self, lam: float = 0.0, **changes: Any) -> AdversarialObjective:
        """The training objective with consistency weight ``lam`` (0: plain adversarial training);
        ``changes`` override its fields (the controls' other consistency form or anchoring)."""
        fields = dict(attack=self.attack, eps=self.eps, steps=self.steps, alpha=self.alpha, layer=self.layer,
                      consistency=self.consistency, anchor_clean=self.anchor_clean, lam=float(lam))
        return AdversarialObjective(**{**fields, **changes})


@dataclass(frozen=True)
class Variant:
    """A trained model of one seed: its method name, its consistency weight (None: not an
    adversarially trained variant), whether it is a control, and the model."""

    name: str
    lam: float | None
    model: TrainedModel
    control: bool = False


def method_name(lam: float | None) -> str:
    """``standard`` (None), ``at`` (lambda = 0), ``cl-<lambda>`` otherwise (a display name: the
    weight itself is :attr:`Variant.lam`)."""
    if lam is None:
        return "standard"
    return "at" if lam == 0 else f"cl-{lam:g}"


def train(exp: S.Experiment, training: Training, objective: Objective) -> TrainedModel:
    """``exp.model`` trained with ``objective``: fine-tuned from the standard model for
    ``finetune_epochs`` from ``finetune_lr`` annealed, keeping every epoch's weights (chapter 4 reads
    its verdict epoch by epoch), or from scratch with the recipe when ``finetune_epochs`` is None
    (cached either way)."""
    if training.finetune_epochs is None:
        return exp.trained(exp.model, objective)
    return exp.finetuned(exp.model, objective, training.finetune_epochs, schedule=FINETUNE_SCHEDULE,
                         lr=training.finetune_lr, snapshots=True)


def variants(exp: S.Experiment, training: Training) -> dict[str, Variant]:
    """The standard model and one model per lambda (0 = plain adversarial training, always
    included), all of ``exp.model`` with the same recipe and seed (cached)."""
    out = {"standard": Variant("standard", None, exp.trained(exp.model))}
    for lam in sorted({0.0, *training.lambdas}):
        out[method_name(lam)] = Variant(method_name(lam), lam, train(exp, training, training.objective(lam)))
    return out


def consistent_model(exp: S.Experiment, training: Training) -> TrainedModel:
    """The consistent-loss model the chapters report (lambda = ``lambda_cl``)."""
    return train(exp, training, training.objective(training.lambda_cl))


@dataclass(frozen=True)
class Evaluation:
    """How robustness is measured (:data:`ROBUSTNESS`)."""

    eval_steps: int
    eval_restarts: int
    aa_iters: int
    aa_targets: int
    n_robust: int
    eval_loss: str = "ce"

    @classmethod
    def from_params(cls, P: ChapterParams) -> Evaluation:
        return cls(P.eval_steps, P.eval_restarts, P.aa_iters, P.aa_targets, P.n_robust, P.eval_loss)

    @property
    def pgd(self) -> str:
        """The registered PGD attack of ``eval_loss``."""
        return PGD_OF_LOSS[self.eval_loss]


def whitebox_set(exp: S.Experiment, tm: TrainedModel, ev: Evaluation, eps: float) -> AdversarialSet:
    """``tm``'s own PGD examples of every probe (``eval_steps``, ``eval_restarts``, ``eval_loss``; cached)."""
    return cached_adversarial_set(ev.pgd, [tm], exp.bundle, exp.probe_index, eps=eps, steps=ev.eval_steps,
                                  seed=exp.seed, device=exp.device, restarts=ev.eval_restarts)


def transfer_set(exp: S.Experiment, ev: Evaluation, eps: float) -> AdversarialSet:
    """PGD examples crafted on the independently trained held-out network, of the first ``n_robust``
    probes (the only ones the transfer check reads): one set per seed for every model's transfer check
    (cached)."""
    return cached_adversarial_set(ev.pgd, [exp.held()], exp.bundle, exp.probe_index[:ev.n_robust], eps=eps,
                                  steps=ev.eval_steps, seed=exp.seed, device=exp.device, restarts=ev.eval_restarts)


def robustness(exp: S.Experiment, tm: TrainedModel, ev: Evaluation, *, eps: float, whitebox: AdversarialSet,
               transfer: AdversarialSet | None) -> RobustnessReport:
    """AutoAttack's core and the gradient-masking checks of ``tm`` on the first ``n_robust`` probes
    (:mod:`advinterp.attacks.robustness`; cached), reusing ``tm``'s white-box PGD set and the seed's
    transfer set."""
    n = ev.n_robust
    x, y = exp.probes()
    return cached_robustness(tm.key, tm.model, x[:n], y[:n], eps=eps, pgd_x=whitebox.x_adv[:n],
                             transfer_x=None if transfer is None else transfer.x_adv[:n], n_iter=ev.aa_iters,
                             n_targets=ev.aa_targets, pgd_steps=ev.eval_steps, restarts=ev.eval_restarts,
                             seed=exp.seed, pgd_attack=ev.pgd)


@dataclass
class Evaluated:
    """One model evaluated: a table row, its dissection on its own PGD set, and that set."""

    row: dict[str, float]
    dissection: Dissection
    whitebox: AdversarialSet


def evaluate(exp: S.Experiment, tm: TrainedModel, ev: Evaluation, *, eps: float, layer: str, k: int,
             A: torch.Tensor, reference_time: float, transfer: AdversarialSet | None) -> Evaluated:
    """Accuracy, robustness (PGD, AutoAttack's core and the masking checks on the first ``n_robust``
    probes, the same images; PGD on every probe too, ``pgd_acc_all_probes``), consistency on the model's own PGD examples (descriptive: every probe, and
    the fooled ones with the model's own K) and cost of one trained model."""
    x, y = exp.probes()
    adv = whitebox_set(exp, tm, ev, eps)
    diss = neuron_report(tm.model, adv, predict(tm.model, adv.x_adv), [layer], k, A)
    live = diss.table[diss.table.live]
    norm_layer, norm_next = weight_norms(tm.model, layer)
    report = robustness(exp, tm, ev, eps=eps, whitebox=adv, transfer=transfer).row()
    row = {
        "clean_acc": accuracy(tm.model, exp.bundle.test),
        # PGD and AutoAttack on the same images (the first n_robust probes): their gap is the attacks', not
        # the images' (the CPU tier once set PGD on all n_probe probes beside AutoAttack on the first half)
        "pgd_acc": report["pgd_acc"], "pgd_acc_all_probes": accuracy(tm.model, adv.x_adv, y),
        **{f: report[f] for f in ROBUST_FIELDS},
        "aa_drop": report["pgd_acc"] - report["aa_acc"],
        "consis_real": float(live.consis_real.mean()), "consis_adv_true": float(live.consis_adv_true.mean()),
        "consis_adv_target": float(live.consis_adv_target.mean()),
        "n_live": int(diss.table.live.sum()), "dead_units": dead_units(tm.model, x, layer),
        "epoch_seconds": tm.epoch_seconds, "epoch_time_ratio": tm.epoch_seconds / reference_time,
        "train_acc": tm.final_train_acc,
        "train_adv_acc": tm.history[-1].get("adv_acc", float("nan")) if tm.history else float("nan"),
        "weight_norm_layer": norm_layer, "weight_norm_next": norm_next,
        **{f"whitebox_{key}": v for key, v in consistency_on_fooled(tm.model, adv, layer, k, A).items()},
    }
    return Evaluated(row, diss, adv)


def masking_words(table: Any) -> str:
    """Which methods (any seed) fail a gradient-masking check, and which check; "no model" if none.
    ``table`` has a ``method`` column and one 0/1 column per check of :data:`CHECKS`."""
    failed = []
    for method, rows in table.groupby("method", sort=False):
        checks = [c for c in CHECKS if (rows[c] < 1).any()]
        if checks:
            failed.append(f"{method} ({', '.join(c.replace('_', ' ') for c in checks)})")
    return "; ".join(failed) if failed else "no model"


#: the columns of a robustness table: clean accuracy, each attack's accuracy and the gradient-masking checks
ROBUSTNESS_COLUMNS = ("clean_acc", "fgsm_acc", "pgd_acc", "aa_acc", "transfer_acc", "masking", *CHECKS)


def robustness_table(table: Any, by: str) -> Any:
    """Each group's (``by``: a method or a model) mean over seeds of :data:`ROBUSTNESS_COLUMNS` (chapters 4
    and 7 show the same table)."""
    return table.groupby(by, sort=False)[list(ROBUSTNESS_COLUMNS)].mean().round(3)

