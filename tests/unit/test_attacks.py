"""Attacks: bounds, range, strength on trained models, targets, transfer, and no side effects."""

from __future__ import annotations

import pytest
import torch

from advinterp.attacks import linf as attacks
from advinterp.models import predict as evaluation
from advinterp.attacks.linf import targeted_success

EPS = 0.3


def _all_attacks(model, others, x, y):
    """Every registered attack through the one calling convention (and ILLC with Kurakin's schedule)."""
    g = torch.Generator().manual_seed(0)
    target = attacks.random_targets(y, 10, g)
    for name in attacks.ATTACKS:
        out = attacks.run(name, [model, *others], x, y, eps=EPS, steps=10, generator=g, restarts=2, target=target)
        yield name, out.x_adv
    yield "illc-kurakin", attacks.illc([model], x, y, eps=EPS).x_adv


def _acc(model, x, y):
    return float((evaluation.predict(model, x) == y).float().mean())


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
    clean_error = 1 - evaluation.accuracy(model, x, y)
    for name in ("fgsm", "fgsm_rs", "pgd"):
        x_adv = attacks.run(name, [model], x, y, eps=EPS, steps=20).x_adv
        adv_error = 1 - evaluation.accuracy(model, x_adv, y)
        assert adv_error > clean_error + 0.5, (name, clean_error, adv_error)


def test_targeted_attacks_reach_their_target(zoo_models, probes):
    x, y = probes[0][:200], probes[1][:200]
    model = zoo_models["small_cnn"].model
    pred = evaluation.predict(model, x)
    target = attacks.random_targets(y, 10, torch.Generator().manual_seed(1))
    assert not (target == y).any()
    x_one, t = attacks.ensemble([model], x, y, eps=EPS, steps=40, target=target)
    assert torch.equal(t, target)
    assert targeted_success(pred, evaluation.predict(model, x_one), y, target) > 0.9
    x_ll, y_ll = attacks.illc([model], x, y, eps=EPS, steps=40)
    assert torch.equal(y_ll, evaluation.logits_of(model, x).argmin(1))
    assert targeted_success(pred, evaluation.predict(model, x_ll), y, y_ll) > 0.5
    members = [zoo_models[n].model for n in ("small_cnn", "wide_cnn", "mlp")]
    x_ens, t = attacks.ensemble(members, x, y, eps=EPS, steps=20, target=target)
    for m in members:
        p = evaluation.predict(m, x)
        assert targeted_success(p, evaluation.predict(m, x_ens), y, t) > 0.8


def test_ensemble_transfers_better_than_single_models(zoo_models, probes):
    """Liu et al.'s finding at equal budget: the ensemble's targeted examples reach their target on
    a held-out network more often than single-model attacks do (averaged over the members)."""
    x, y = probes
    names = ("small_cnn", "wide_cnn", "mlp")
    held = zoo_models["small_resnet"].model
    target = attacks.random_targets(y, 10, torch.Generator().manual_seed(2))
    pred = evaluation.predict(held, x)

    def transfer(ms):
        x_adv, _ = attacks.ensemble(ms, x, y, eps=EPS, steps=20, target=target)
        return targeted_success(pred, evaluation.predict(held, x_adv), y, target)

    ensemble = transfer([zoo_models[n].model for n in names])
    singles = [transfer([zoo_models[n].model]) for n in names]
    assert ensemble > sum(singles) / len(singles), (ensemble, singles)


def test_illc_default_schedule():
    assert attacks.illc_defaults(0.3) == (80, 1 / 255)
    assert attacks.illc_defaults(8 / 255) == (10, 1 / 255)


@pytest.mark.parametrize("name", list(attacks.ATTACKS))
@pytest.mark.parametrize("eps", [-0.1, 2.0])
def test_bad_eps(zoo_models, probes, eps, name):
    x, y = probes[0][:2], probes[1][:2]
    with pytest.raises(ValueError, match=f"eps={eps}"):
        attacks.run(name, [zoo_models["mlp"].model], x, y, eps=eps, target=y)


def test_unknown_attack_names_the_parameter(zoo_models, probes):
    with pytest.raises(ValueError, match=r"^train_attack='cw' is not allowed: one of 'fgsm', 'fgsm_rs'"):
        attacks.run("cw", [zoo_models["mlp"].model], probes[0][:2], probes[1][:2], eps=0.1,
                    allowed=attacks.TRAINING_ATTACKS, param="train_attack")
    with pytest.raises(ValueError, match=r"^target=None is not allowed"):
        attacks.run("ensemble", [zoo_models["mlp"].model], probes[0][:2], probes[1][:2], eps=0.1)


def test_registry_flags_match_what_attacks_return(zoo_models, probes):
    """One convention: every attack returns (x_adv, target); target is -1 exactly for the untargeted ones."""
    x, y = probes[0][:16], probes[1][:16]
    model = zoo_models["small_cnn"].model
    for name, spec in attacks.ATTACKS.items():
        out = attacks.run(name, [model], x, y, eps=0.1, steps=2, target=(y + 1) % 10)
        assert isinstance(out, attacks.AttackOutput)
        assert bool((out.target >= 0).all()) == spec.targeted, name
    assert attacks.EVAL_ATTACKS == ("fgsm", "illc", "pgd", "ensemble")
    assert attacks.TRAINING_ATTACKS == ("fgsm", "fgsm_rs", "illc", "pgd")


def test_default_step_size_is_the_one_documented():
    assert attacks.default_step_size(0.3, 10) == pytest.approx(0.075)


def test_batched_equals_unbatched(zoo_models, probes):
    x, y = probes[0][:40], probes[1][:40]
    model = zoo_models["mlp"].model
    whole = attacks.fgsm([model], x, y, eps=0.1).x_adv
    parts = attacks.in_batches(lambda a, b: attacks.fgsm([model], a, b, eps=0.1), x, y, batch_size=16)
    assert torch.allclose(whole, parts.x_adv)


def test_adversarial_sets_are_cached_bounded_and_targeted(zoo_models, mnist5k, tmp_cache):
    from advinterp.attacks.advdata import cached_adversarial_set, make_adversarial_set
    from advinterp.data.probes import probe_indices

    idx = probe_indices(mnist5k.test, 20, 0)
    members = [zoo_models[n] for n in ("small_cnn", "mlp")]
    first = cached_adversarial_set("ensemble", members, mnist5k, idx, eps=0.2, steps=3, seed=0, device="cpu")
    again = cached_adversarial_set("ensemble", members, mnist5k, idx, eps=0.2, steps=3, seed=0, device="cpu")
    assert torch.equal(first.x_adv, again.x_adv) and torch.equal(first.target, again.target)
    assert len(list(tmp_cache.rglob("ensemble-*.pt"))) == 1, "the second call loads the cached set"
    assert first.targeted and not (first.target == first.y).any() and first.max_linf <= 0.2 + 1e-6
    pgd = make_adversarial_set("pgd", [m.model for m in members], first.x, first.y, eps=0.2, steps=3,
                               num_classes=10, seed=0, device="cpu")
    assert not pgd.targeted and (pgd.target == -1).all()
    with pytest.raises(ValueError, match="^attack='fgsm_rs' is not allowed"):
        make_adversarial_set("fgsm_rs", [members[0].model], first.x, first.y, eps=0.2, steps=1, num_classes=10,
                             seed=0)
