"""AutoAttack's core (APGD-CE, APGD-T with targeted DLR) and the gradient-masking checks, on the
book's own model; checked against an independent implementation (torchattacks' APGD, installed
with --no-deps as a test-only oracle: tests/requirements-oracles.txt)."""

from __future__ import annotations

import pytest
import torch

from advinterp.attacks import apgd, linf, robustness
from advinterp.models.predict import predict


def _acc(model, x, y) -> float:
    return float((predict(model, x) == y).float().mean())


def test_checkpoints_follow_the_paper():
    w = apgd.checkpoints(100)
    assert w[:4] == [22, 41, 57, 70] and w[-1] <= 100 and w == sorted(set(w))


def test_dlr_is_invariant_to_shift_and_scale_of_the_logits():
    z = torch.randn(6, 10)
    y = torch.randint(0, 10, (6,))
    t = (y + 1) % 10
    for target in (None, t):
        assert torch.allclose(apgd.dlr_loss(z, y, target), apgd.dlr_loss(3.0 * z + 1.5, y, target), atol=1e-5)


def test_apgd_stays_in_the_ball_and_beats_pgd(zoo_models, probes):
    model = zoo_models["small_cnn"].model
    x, y = probes[0][:100], probes[1][:100]
    eps = 0.1
    gen = torch.Generator().manual_seed(0)
    for attack in (lambda: apgd.apgd_ce([model], x, y, eps=eps, n_iter=50, generator=gen),
                   lambda: apgd.apgd_t([model], x, y, eps=eps, n_iter=30, n_targets=2, generator=gen),
                   lambda: apgd.autoattack([model], x, y, eps=eps, n_iter=50, n_targets=2, generator=gen)):
        adv = attack().x_adv
        assert float((adv - x).abs().max()) <= eps + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    aa = _acc(model, apgd.autoattack([model], x, y, eps=eps, n_iter=50, n_targets=2, generator=gen).x_adv, y)
    pgd = _acc(model, linf.pgd([model], x, y, eps=eps, steps=20, generator=gen).x_adv, y)
    assert aa <= pgd + 1e-9, (aa, pgd)


def test_apgd_agrees_with_torchattacks(zoo_models, probes):
    """Same or lower robust accuracy than torchattacks' APGD-CE with the same budget and iterations
    (an implementation of the same paper written independently of ours)."""
    import torchattacks

    model = zoo_models["small_cnn"].model.eval()
    x, y = probes[0][:200], probes[1][:200]
    eps, n_iter = 0.1, 50
    ours = _acc(model, apgd.apgd_ce([model], x, y, eps=eps, n_iter=n_iter,
                                    generator=torch.Generator().manual_seed(0)).x_adv, y)
    oracle = torchattacks.APGD(model, norm="Linf", eps=eps, steps=n_iter, n_restarts=1, loss="ce", seed=0)
    theirs = _acc(model, oracle(x, y), y)
    assert ours <= theirs + 0.02, (ours, theirs)
    assert ours < _acc(model, x, y) - 0.1  # the attack does something at all


def test_masking_checks_pass_for_a_standard_model_and_flag_constructed_failures(zoo_models, probes):
    model, source = zoo_models["small_cnn"].model, zoo_models["small_resnet"].model
    x, y = probes[0][:100], probes[1][:100]
    transfer = linf.pgd([source], x, y, eps=0.1, steps=10).x_adv
    r = robustness.evaluate_robustness(model, x, y, eps=0.1, transfer_x=transfer, n_iter=20, n_targets=1, pgd_steps=10)
    assert not r.masking, r
    given = linf.pgd([model], x, y, eps=0.1, steps=10).x_adv  # PGD examples made before: reused, not redone
    reused = robustness.evaluate_robustness(model, x, y, eps=0.1, transfer_x=transfer, pgd_x=given, n_iter=20,
                                            n_targets=1, pgd_steps=10)
    assert reused.pgd_acc == pytest.approx(float((model(given).argmax(1) == y).float().mean()))
    assert reused.aa_acc <= reused.pgd_acc + 1e-9
    assert r.aa_acc <= r.pgd_acc + 1e-9 and r.curve[-1] <= robustness.ZERO_LEVEL
    assert r.eps_grid == robustness.eps_grid(0.1) and len(r.curve) == len(r.eps_grid)
    flags = robustness.checks(fgsm_acc=0.3, pgd_acc=0.5, aa_acc=0.5, transfer_acc=0.2, curve=(0.6, 0.5, 0.55, 0.3))
    assert flags == {"monotone": False, "reaches_zero": False, "whitebox_le_transfer": False,
                     "iterative_le_single": False}


def test_robustness_is_cached(zoo_models, probes, tmp_cache):
    model, source = zoo_models["small_cnn"], zoo_models["small_resnet"]
    x, y = probes[0][:30], probes[1][:30]
    transfer = linf.pgd([source.model], x, y, eps=0.1, steps=3).x_adv
    kw = dict(eps=0.1, transfer_x=transfer, n_iter=5, n_targets=1, pgd_steps=3)
    first = robustness.cached_robustness(model.key, model.model, x, y, **kw)
    assert any(tmp_cache.rglob("*.pt"))
    assert robustness.cached_robustness(model.key, model.model, x, y, **kw) == first


def test_bad_parameters_name_themselves(zoo_models, probes):
    model = zoo_models["small_cnn"].model
    x, y = probes[0][:4], probes[1][:4]
    with pytest.raises(ValueError, match="loss='l2'"):
        apgd.apgd(model, x, y, eps=0.1, loss="l2")
    with pytest.raises(ValueError, match="^target=None"):
        apgd.apgd(model, x, y, eps=0.1, loss="dlr_targeted")
    with pytest.raises(ValueError, match="aa_iters=0"):
        robustness.evaluate_robustness(model, x, y, eps=0.1, transfer_x=None, n_iter=0)
