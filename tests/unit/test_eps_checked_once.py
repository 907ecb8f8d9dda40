"""The attack budget ``eps`` is checked once per call of a public entry point, not once per batch,
step or restart; a bad value still stops every entry point with the ``ValueError`` that names it."""

from __future__ import annotations

import re
from collections import Counter, OrderedDict

import pytest
import torch
from torch import nn

from advinterp.attacks import advdata, apgd, linf, robustness
from advinterp.core import validation
from advinterp.training import loop as training
from advinterp.training.adversarial import AdversarialObjective

#: the names the budget is checked under (the attacks' and the training attack's)
BUDGETS = ("eps", "train_eps")


@pytest.fixture
def eps_checks(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Counts, by parameter name, the calls of the number check behind :data:`advinterp.attacks.linf.EPS`."""
    counts: Counter = Counter()
    check = validation.check_number

    def counting(name, value, *args, **kwargs):
        counts[name] += 1
        return check(name, value, *args, **kwargs)

    monkeypatch.setattr(validation, "check_number", counting)
    return counts


def _budget_checks(counts: Counter) -> int:
    return sum(counts[n] for n in BUDGETS)


def _tiny() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A small 10-class network and 12 random images (three batches of 4)."""
    torch.manual_seed(0)
    model = nn.Sequential(OrderedDict(flatten=nn.Flatten(), fc1=nn.Linear(16, 32), relu=nn.ReLU(), fc2=nn.Linear(32, 10)))
    return model.eval(), torch.rand(12, 1, 4, 4), torch.randint(0, 10, (12,))


def test_the_counter_sees_the_budget_check(eps_checks):
    linf.EPS.validate(0.1)
    assert eps_checks["eps"] == 1


@pytest.mark.parametrize("attack", ["pgd", "ensemble", "noise"])
def test_an_adversarial_set_checks_eps_once_for_all_batches(eps_checks, attack):
    model, x, y = _tiny()
    out = advdata.make_adversarial_set(attack, [model], x, y, eps=0.1, steps=2, num_classes=10, seed=0,
                                       device="cpu", batch_size=4, restarts=2)
    assert len(out) == 12 and out.max_linf <= 0.1 + 1e-6
    assert _budget_checks(eps_checks) == 1, eps_checks


def test_a_robustness_evaluation_checks_eps_once(eps_checks):
    """FGSM, PGD with restarts, AutoAttack's core (APGD-CE and APGD-T per target) and the PGD curve
    over the eps grid, each over three batches: one check of eps."""
    model, x, y = _tiny()
    report = robustness.evaluate_robustness(model, x, y, eps=0.1, transfer_x=None, n_iter=3, n_targets=2,
                                            pgd_steps=2, restarts=2, batch_size=4)
    assert len(report.curve) == len(report.eps_grid) > 1
    assert _budget_checks(eps_checks) == 1, eps_checks


def test_cached_robustness_checks_eps_once(eps_checks, tmp_cache):
    model, x, y = _tiny()
    robustness.cached_robustness("tiny", model, x, y, eps=0.1, transfer_x=None, n_iter=2, n_targets=2, pgd_steps=2)
    assert _budget_checks(eps_checks) == 1, eps_checks


def test_a_prepared_attack_checks_eps_once_for_all_batches(eps_checks):
    model, x, y = _tiny()
    attack = linf.prepare("pgd", eps=0.1, steps=2, restarts=2)
    linf.in_batches(lambda xb, yb: attack([model], xb, yb), x, y, batch_size=4)
    assert _budget_checks(eps_checks) == 1, eps_checks


def test_an_epoch_of_adversarial_training_checks_eps_once(eps_checks, tmp_cache):
    """The objective checks ``train_eps`` when it is built; its attack on each of the epoch's batches
    and the end-of-epoch monitor do not check it again."""
    config = training.TrainConfig(model="mlp", epochs=1, batch_size=64, max_train=256)
    tm = training.train(config, AdversarialObjective(attack="pgd", eps=0.1, steps=1), device="cpu", progress=False)
    assert len(tm.history) == 1
    assert eps_checks["train_eps"] == 1 and eps_checks["eps"] == 0, eps_checks


@pytest.mark.parametrize("eps", [0.0, -0.1, 1.5, float("nan"), "0.1", None])
def test_every_entry_point_rejects_a_bad_eps(eps):
    model, x, y = _tiny()
    calls = {
        "eps": [
            lambda: linf.run("pgd", [model], x, y, eps=eps),
            lambda: linf.prepare("fgsm", eps=eps),
            lambda: linf.fgsm([model], x, y, eps=eps),
            lambda: linf.random_sign([model], x, y, eps=eps),
            lambda: apgd.apgd(model, x, y, eps=eps),
            lambda: apgd.apgd_ce([model], x, y, eps=eps),
            lambda: apgd.apgd_t([model], x, y, eps=eps),
            lambda: apgd.autoattack([model], x, y, eps=eps),
            lambda: robustness.eps_grid(eps),
            lambda: robustness.evaluate_robustness(model, x, y, eps=eps, transfer_x=None),
            lambda: robustness.cached_robustness("tiny", model, x, y, eps=eps, transfer_x=None),
            lambda: advdata.make_adversarial_set("fgsm", [model], x, y, eps=eps, steps=None, num_classes=10, seed=0),
        ],
        "train_eps": [lambda: AdversarialObjective(eps=eps)],
    }
    for name, entry_points in calls.items():
        for call in entry_points:
            with pytest.raises(ValueError, match=rf"^{name}={re.escape(repr(eps))} is not allowed: a number in \(0\.0, 1\.0\]"):
                call()


def test_the_other_settings_are_checked_under_their_names():
    model, x, y = _tiny()
    with pytest.raises(ValueError, match="^steps=0 is not allowed"):
        linf.prepare("pgd", eps=0.1, steps=0)
    with pytest.raises(ValueError, match="^restarts=0 is not allowed"):
        linf.run("pgd", [model], x, y, eps=0.1, restarts=0)
    with pytest.raises(ValueError, match="^step_size=2.0 is not allowed"):
        AdversarialObjective(step_size=2.0)
    with pytest.raises(ValueError, match="^attack_steps=0 is not allowed"):
        advdata.make_adversarial_set("pgd", [model], x, y, eps=0.1, steps=0, num_classes=10, seed=0)
    with pytest.raises(ValueError, match="^pgd_steps=0 is not allowed"):
        robustness.evaluate_robustness(model, x, y, eps=0.1, transfer_x=None, pgd_steps=0)
    with pytest.raises(ValueError, match="^n_targets=0 is not allowed"):
        apgd.autoattack([model], x, y, eps=0.1, n_targets=0)
