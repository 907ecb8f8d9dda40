"""Chapter 1's study: adversarial examples, single-model attacks and the ensemble attack's transfer.

For the chapter's seed: train the dissected model, the other ensemble members and the held-out
network (cached), measure each attack's success rate against the budget eps on the probe set (with
the random-sign control of the same budget as its chance level), and measure how the
ensemble-optimisation attack (Dong et al.'s adversarial dataset) transfers to every member and to
the held-out network, against the same attack on ``model`` alone (control).

The claim decided here is Liu et al.'s (ensembles transfer better), the tool behind the book: it is
shown with the papers' claims and never counted among them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..attacks.advdata import AdversarialSet
from ..attacks.success import CURVE, success_vs_eps, transfer_table
from ..core.params import Chapter, ChapterParams, listof
from ..core.validation import fail
from ..models.architectures import MODELS
from ..models.predict import accuracy, predict
from ..report.settings import Setting
from ..training.loop import SEED
from ..core.stats import SeedEffect, newcombe_paired, per_seed_metrics
from ..report import claims
from . import default_validate
from . import setting as S
from .dissect import MIN_MEMBER_SUCCESS


# ----------------------------------------------------------------------------- declarations

EPS_GRID = listof(S.EPS, "eps_grid", [0.05, 0.1, 0.15, 0.2, 0.25, 0.3], "budgets of the success-rate curve")


def _relations(P: ChapterParams) -> None:
    S.check_setting(P)
    if P.ensemble == []:
        fail("ensemble", P.ensemble, "at least one other member (an ensemble of one is a single-model attack)")


CHAPTER = Chapter("01-adversarial-examples", (
    *S.DATA, S.ENSEMBLE, S.ENSEMBLE_LOSS, S.HELDOUT, S.EPOCHS, S.MAX_TRAIN, S.PRETRAINED, S.EPS, EPS_GRID, S.ATTACK_STEPS, S.N_PROBE,
    SEED, S.DEVICE, S.RESULTS_DIR), _relations)

validate = default_validate(CHAPTER)

#: the effect the claim is decided by
TRANSFER = claims.Effect(
    "effect_transfer", "targeted transfer to the held-out network, ensemble set minus one-network set", 0.05,
    "5 points of targeted success: less would not change which adversarial set a study should use", declared="6838ddf")

#: the claim this chapter tests (decided the same way on its results at scale; intro scorecard)
CLAIMS = (
    claims.claim("ensemble_transfer", "Liu et al. 2017 (the tool behind the book)", "Targeted adversarial "
                   "examples crafted on an ensemble transfer to a held-out network more often than those crafted "
                   "on one network", CHAPTER.stem, TRANSFER, counted=False,
                   short="ensemble examples transfer better"),
)

#: what ran beside what the paper ran (the page's settings table; docs/papers.md gives the paper's values)
SETTINGS = (
    Setting('data', ('dataset',),
            'ILSVRC-2012'),
    Setting('networks', ('model',),
            'AlexNet, VGG-16, ResNet-18'),
    Setting('ensemble members', ('ensemble',),
            'k models, equal weights (which ones: not stated)'),
    Setting('ensemble loss', ('ensemble_loss',),
            'log of the averaged probabilities of y* (Liu et al.)'),
    Setting('attack budget', ('eps',),
            'not stated (our reading: L-inf bound eps)'),
    Setting('attack steps', ('attack_steps',),
            'ensemble: not stated (Adam or sign-gradient steps); ILLC: a = 1/255, T = min(eps*255+4, 1.25*eps*255)'),
    Setting('held-out network (transfer)', ('heldout',),
            'not stated'),
    Setting('probe images', ('n_probe',),
            'not stated'),
)


# ----------------------------------------------------------------------------- setup

def setup(P: ChapterParams) -> S.Setup:
    """Load the data (and check what depends on it); the setup's one experiment is the chapter's."""
    return S.setup(P)


# ----------------------------------------------------------------------------- run

def transfer_effect(model: nn.Module, ensemble_set: AdversarialSet, single_set: AdversarialSet) -> SeedEffect:
    """Targeted success on ``model`` of the ensemble set minus that of the single-model set (same
    probes, same targets), over the probes ``model`` classifies correctly (the rates' own
    denominator), with Newcombe's interval for paired rates."""
    if not torch.equal(ensemble_set.target, single_set.target):
        fail("single_set", "targets differ", "the ensemble set's probes with the same targets")
    ok = predict(model, ensemble_set.x) == ensemble_set.y
    hit_ens = predict(model, ensemble_set.x_adv[ok]) == ensemble_set.target[ok]
    hit_single = predict(model, single_set.x_adv[ok]) == single_set.target[ok]
    return newcombe_paired(hit_ens.numpy(), hit_single.numpy())


@dataclass
class Result:
    """What chapter 1 shows: test accuracies, the success curve, the transfer table (with the
    single-model control as its last row), the adversarial sets behind them and the paired effects."""

    clean: dict[str, float]
    curve: pd.DataFrame
    table: pd.DataFrame
    ensemble_set: AdversarialSet
    single_set: AdversarialSet
    transfer: SeedEffect
    iterative: dict[str, SeedEffect]


def run(setup: S.Setup) -> Result:
    """The whole study for the chapter's seed (its seconds in ``setup.seconds``)."""
    with S.timed(setup, setup.seeds[0]):
        return _run(setup)


def _run(setup: S.Setup) -> Result:
    P, exp = setup.P, setup.first
    members = exp.members()
    held = exp.held()
    all_models = {**{n: m.model for n, m in members.items()}, P.heldout: held.model}
    clean = {n: accuracy(m, exp.bundle.test) for n, m in all_models.items()}
    x, y = exp.probes()
    curve, fooled = success_vs_eps(exp.net, x, y, sorted({*P.eps_grid, P.eps}), steps=P.attack_steps, seed=P.seed,
                                   num_classes=exp.bundle.num_classes, device=P.device)
    ens = exp.adversarial("ensemble")
    single = S.Experiment.from_params(P, ensemble=()).adversarial("ensemble")  # same attack, `model` alone
    table = transfer_table(ens, all_models)
    table["role"] = ["member"] * len(members) + ["held out"]
    control = transfer_table(single, {P.heldout: held.model})
    table.loc[control_row(P)] = [*control.iloc[0].tolist(), "control"]
    ok = predict(exp.net, x) == y
    iterative = {a: newcombe_paired(fooled[(a, P.eps)][ok].numpy(), fooled[("fgsm", P.eps)][ok].numpy())
                 for a in ("illc", "pgd")}
    return Result(clean, curve, table, ens, single, transfer_effect(held.model, ens, single), iterative)


def control_row(P: ChapterParams) -> str:
    """The transfer table's row of the single-model control."""
    return f"{P.heldout} (attack on {P.model} only)"


# ----------------------------------------------------------------------------- summarize

def summarize(result: Result, setup: S.Setup) -> dict[str, Any]:
    """Chapter 1's metrics (the names are this function's)."""
    P = setup.P
    at_eps = result.curve[result.curve.eps == P.eps].set_index("attack")["success_rate"]
    table = result.table
    members = table[table.role == "member"]
    return {
        "clean_acc": result.clean[P.model],
        **{f"{a}_success": at_eps[a] for a in CURVE},
        "ensemble_success_members": members["targeted_success"].min(),
        "ensemble_transfer_heldout": table.loc[P.heldout, "targeted_success"],
        "ensemble_untargeted_heldout": table.loc[P.heldout, "untargeted_success"],
        "single_transfer_heldout": table.loc[control_row(P), "targeted_success"],
        "max_linf": max(result.curve["max_linf"].max(), result.ensemble_set.max_linf, result.single_set.max_linf),
        "eps": P.eps, "heldout_clean_acc": result.clean[P.heldout],
        **per_seed_metrics(TRANSFER.name, {P.seed: result.transfer}),
        **{k: v for a, e in result.iterative.items() for k, v in per_seed_metrics(f"{a}_minus_fgsm", {P.seed: e}).items()},
    }


# ----------------------------------------------------------------------------- verdicts

def networks_words(P: ChapterParams) -> str:
    """The networks of this run in words (the page types none): the ensemble's members, then the
    held-out one, each with its architecture's summary."""
    def named(name: str) -> str:
        return f"`{name}` ({MODELS[name].summary})"

    members = [named(n) for n in (P.model, *P.ensemble)]
    return f"{len(members)} networks form the ensemble: " + "; ".join(members) + f". {named(P.heldout)} is held out"


def verdicts(result: Result, setup: S.Setup, metrics: dict[str, Any]) -> dict[str, str]:
    """Words the prose glues, decided by intervals."""
    signs = [1 if e.lo > 0 else -1 if e.hi < 0 else 0 for e in result.iterative.values()]
    iterative = ("stronger than" if all(s > 0 for s in signs) else "weaker than" if all(s < 0 for s in signs)
                 else "not clearly stronger than (an interval reaches 0)")
    weakest = metrics["ensemble_success_members"]
    enough = ("enough for chapters 2-3 to dissect it (they need" if weakest >= MIN_MEMBER_SUCCESS else
              "short of what chapters 2-3 need to dissect it, so their claims on it are not decided (they need")
    return {**claims.claim_words(CLAIMS, setup.P.public(), metrics), "iterative_verdict": iterative,
            "member_success_enough": f"{enough} {MIN_MEMBER_SUCCESS:.0%} on every member)",
            "networks_words": networks_words(setup.P)}
