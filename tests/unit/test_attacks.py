"""Attacks: bounds, range, strength on trained models, targets, transfer, and no side effects."""

from __future__ import annotations

import pytest
import torch

from advinterp import attacks, evaluation

EPS = 0.3


def _all_attacks(model, others, x, y):
    g = torch.Generator().manual_seed(0)
    yield "fgsm", attacks.fgsm(model, x, y, EPS)
    yield "illc", attacks.illc(model, x, EPS, steps=10)[0]
    yield "illc-kurakin", attacks.illc(model, x, EPS)[0]
    yield "pgd", attacks.pgd(model, x, y, EPS, steps=10, generator=g)
    yield "pgd-targeted", attacks.pgd(model, x, (y + 1) % 10, EPS, steps=10, targeted=True, restarts=2)
    yield "ensemble", attacks.ensemble_attack([model, *others], x, y, EPS, steps=10, num_classes=10, generator=g)[0]


def test_bounds_and_range(zoo_models, probes):
    x, y = probes[0][:64], probes[1][:64]
    model = zoo_models["small_cnn"].model
    for name, x_adv in _all_attacks(model, [zoo_models["mlp"].model], x, y):
        assert x_adv.shape == x.shape, name
        assert float((x_adv - x).abs().max()) <= EPS + 1e-6, name
        assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0, name


def test_models_mode_and_gradients_untouched(zoo_models, probes):
    x, y = probes[0][:32], probes[1][:32]
    model, other = zoo_models["small_cnn"].model, zoo_models["mlp"].model
    model.train()  # a model in training mode with gradients present, one parameter frozen
    other.eval()
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)
    frozen = next(other.parameters())
    frozen.requires_grad_(False)
    before = [(p.requires_grad, p.grad.clone() if p.grad is not None else None)
              for m in (model, other) for p in m.parameters()]
    list(_all_attacks(model, [other], x, y))
    after = [(p.requires_grad, p.grad) for m in (model, other) for p in m.parameters()]
    assert model.training and not other.training
    for (rg0, g0), (rg1, g1) in zip(before, after):
        assert rg0 == rg1
        assert (g0 is None and g1 is None) or torch.equal(g0, g1)
    frozen.requires_grad_(True)
    for p in model.parameters():
        p.grad = None
    model.eval()


def test_attacks_succeed_far_above_clean_error(zoo_models, probes):
    x, y = probes
    model = zoo_models["small_cnn"].model
    pred = evaluation.predict(model, x)
    clean_error = 1 - evaluation.accuracy(pred, y)
    for name, x_adv in (("fgsm", attacks.fgsm(model, x, y, EPS)),
                        ("pgd", attacks.pgd(model, x, y, EPS, steps=20))):
        adv_error = 1 - evaluation.accuracy(evaluation.predict(model, x_adv), y)
        assert adv_error > clean_error + 0.5, (name, clean_error, adv_error)


def test_targeted_attacks_reach_their_target(zoo_models, probes):
    x, y = probes[0][:200], probes[1][:200]
    model = zoo_models["small_cnn"].model
    pred = evaluation.predict(model, x)
    target = attacks.random_targets(y, 10, torch.Generator().manual_seed(1))
    assert not (target == y).any()
    x_pgd = attacks.pgd(model, x, target, EPS, steps=40, targeted=True)
    assert evaluation.targeted_success(pred, evaluation.predict(model, x_pgd), y, target) > 0.9
    x_ll, y_ll = attacks.illc(model, x, EPS, steps=40)
    assert torch.equal(y_ll, evaluation.logits_of(model, x).argmin(1))
    assert evaluation.targeted_success(pred, evaluation.predict(model, x_ll), y, y_ll) > 0.5
    members = [zoo_models[n].model for n in ("small_cnn", "wide_cnn", "mlp")]
    x_ens, t = attacks.ensemble_attack(members, x, y, EPS, steps=20, target=target)
    for m in members:
        p = evaluation.predict(m, x)
        assert evaluation.targeted_success(p, evaluation.predict(m, x_ens), y, t) > 0.8


def test_ensemble_transfers_better_than_single_models(zoo_models, probes):
    """Liu et al.'s finding at equal budget: the ensemble's targeted examples reach their target on
    a held-out network more often than single-model attacks do (averaged over the members)."""
    x, y = probes
    names = ("small_cnn", "wide_cnn", "mlp")
    held = zoo_models["small_resnet"].model
    target = attacks.random_targets(y, 10, torch.Generator().manual_seed(2))
    pred = evaluation.predict(held, x)

    def transfer(ms):
        x_adv, _ = attacks.ensemble_attack(ms, x, y, EPS, steps=20, target=target)
        return evaluation.targeted_success(pred, evaluation.predict(held, x_adv), y, target)

    ensemble = transfer([zoo_models[n].model for n in names])
    singles = [transfer([zoo_models[n].model]) for n in names]
    assert ensemble > sum(singles) / len(singles), (ensemble, singles)


def test_illc_default_schedule():
    assert attacks.illc_defaults(0.3) == (80, 1 / 255)
    assert attacks.illc_defaults(8 / 255) == (10, 1 / 255)


@pytest.mark.parametrize("eps", [-0.1, 2.0])
def test_bad_eps(zoo_models, probes, eps):
    with pytest.raises(ValueError, match=f"eps={eps}"):
        attacks.fgsm(zoo_models["mlp"].model, probes[0][:2], probes[1][:2], eps)


def test_batched_equals_unbatched(zoo_models, probes):
    x, y = probes[0][:40], probes[1][:40]
    model = zoo_models["mlp"].model
    whole = attacks.fgsm(model, x, y, 0.1)
    parts = attacks.in_batches(lambda a, b: attacks.fgsm(model, a, b, 0.1), x, y, batch_size=16)
    assert torch.allclose(whole, parts)
