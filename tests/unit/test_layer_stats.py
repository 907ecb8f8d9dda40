"""A layer's dissection as a function of its images: the batched summaries agree with the consistency
module's p^T A p and agreement, resampling keeps what it measures, and the random-sign control and
the joint attack keep to their budgets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from advinterp.attacks import linf
from advinterp.interpret import consistency as C
from advinterp.interpret import layer_stats as L


def _probes(n: int = 120, neurons: int = 16, classes: int = 5, seed: int = 0) -> L.LayerProbes:
    g = torch.Generator().manual_seed(seed)
    return L.LayerProbes(torch.relu(torch.randn(n, neurons, generator=g)), torch.relu(torch.randn(n, neurons, generator=g)),
                         torch.randint(0, classes, (n,), generator=g), torch.randint(0, classes, (n,), generator=g))


def test_summaries_agree_with_the_consistency_module():
    p, A = _probes(), torch.eye(5) * 0.6 + 0.4
    s = L.summarize(p, 10, A)
    v_real, i_real = p.real.T.topk(10, dim=1)
    v_pert, i_pert = p.perturbed.T.topk(10, dim=1)
    live = (v_real[:, 0] > 0) & (v_pert[:, 0] > 0)
    dominant = C.dominant_class(p.y[i_real][live], 5)
    assert s["consis_real"] == pytest.approx(float(C.neuron_consistency(p.y[i_real][live], A).mean()))
    assert s["consis_adv_true"] == pytest.approx(float(C.neuron_consistency(p.y[i_pert][live], A).mean()))
    assert s["consis_adv_target"] == pytest.approx(float(C.neuron_consistency(p.target[i_pert][live], A).mean()))
    assert s["target_agreement"] == pytest.approx(float(C.agreement(p.target[i_pert][live], dominant).mean()))
    assert s["true_agreement"] == pytest.approx(float(C.agreement(p.y[i_pert][live], dominant).mean()))
    assert s["consis_gap"] == pytest.approx(s["consis_adv_true"] - s["consis_real"])
    assert s["n_live"] == int(live.sum())


def test_batched_resamples_equal_one_at_a_time():
    p, A = _probes(seed=1), torch.eye(5)
    idx = np.random.default_rng(0).integers(0, len(p), (7, len(p)))
    many = L.summarize_many(p, 8, A, idx, max_elements=3 * len(p) * 16)  # forces several chunks
    for row, i in enumerate(idx):
        one = L.summarize(p, 8, A, i)
        for name in L.SUMMARIES:
            assert many[name][row] == pytest.approx(one[name])


def test_identical_perturbed_and_real_images_give_no_gap():
    p = _probes(seed=2)
    same = L.LayerProbes(p.real, p.real, p.y, p.target)
    s = L.summarize(same, 10, torch.eye(5))
    assert s["consis_gap"] == pytest.approx(0.0) and s["true_agreement"] >= s["target_agreement"] - 1


def test_selection_k_is_a_selection_or_nothing():
    assert L.selection_k(20, 500) == 20 and L.selection_k(20, 40) == 10 and L.selection_k(20, 12) == 0


def test_random_sign_control_stays_in_the_budget_and_ignores_the_model():
    x = torch.rand(8, 1, 6, 6)
    out = linf.random_sign([], x, torch.zeros(8, dtype=torch.long), eps=0.1,
                           generator=torch.Generator().manual_seed(0)).x_adv
    assert (out - x).abs().max() <= 0.1 + 1e-6 and out.min() >= 0 and out.max() <= 1
    inside = (x > 0.1) & (x < 0.9)
    assert torch.allclose((out - x).abs()[inside], torch.full_like(x[inside], 0.1), atol=1e-6)
    assert "noise" in linf.CONTROLS and "noise" not in linf.EVAL_ATTACKS and "noise" in linf.PROBE_SETS


def test_joint_pgd_fools_every_model_it_can_within_the_budget():
    torch.manual_seed(0)
    models = [torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 3)) for _ in range(2)]
    x, y = torch.rand(16, 1, 6, 6), torch.randint(0, 3, (16,))
    out = linf.pgd_ensemble(models, x, y, eps=0.5, steps=20, restarts=2, generator=torch.Generator().manual_seed(0))
    assert (out.x_adv - x).abs().max() <= 0.5 + 1e-6
    fooled_all = torch.stack([m(out.x_adv).argmax(1) != y for m in models]).all(0)
    single = [linf.pgd([m], x, y, eps=0.5, steps=20).x_adv for m in models]
    assert fooled_all.float().mean() >= 0.5
    assert all(float((m(s).argmax(1) != y).float().mean()) >= 0.5 for m, s in zip(models, single))
