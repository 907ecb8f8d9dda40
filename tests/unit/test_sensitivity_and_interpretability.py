"""The sensitivity regulariser and the interpretability metrics, on cases with known answers."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advinterp.interpret import attribution as I
from advinterp.models.architectures import Normalize, build_model
from advinterp.training.sensitivity import SensitivityObjective, exact_sensitivity, projection_estimate
from advinterp.models.layers import recording


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict(normalize=Normalize([0.5], [0.5]), flatten=nn.Flatten(),
                                     hidden=nn.Sequential(nn.Linear(16, 6), nn.Tanh()), logits=nn.Linear(6, 3)))


def test_projection_estimator_is_unbiased_for_the_exact_sum():
    model = _tiny()
    x = torch.rand(4, 1, 4, 4)
    units = torch.tensor([0, 2, 5])
    exact = exact_sensitivity(model, x, "hidden", units)
    torch.manual_seed(1)
    draws = []
    for _ in range(4000):
        xg = x.detach().requires_grad_(True)
        with recording(model, ["hidden"], detach=False) as acts:
            model(xg)
        draws.append(projection_estimate(acts["hidden"].flatten(1), xg, units, create_graph=False).detach())
    mean = torch.stack(draws).mean(0)
    assert torch.allclose(mean, exact, rtol=0.05), (mean, exact)


def test_objective_forms():
    model = _tiny()
    x, y = torch.rand(5, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1])
    zero = SensitivityObjective(lam=0.0, layers=("hidden",), units=3)(model, x, y)
    assert torch.allclose(zero.loss, F.cross_entropy(model(x), y))
    # the subset estimator over all units is the exact mean
    out = SensitivityObjective(lam=2.0, layers=("hidden",), units=6, estimator="subset")(model, x, y)
    exact = exact_sensitivity(model, x, "hidden", torch.arange(6)).mean() / 6
    assert out.stats["sensitivity"] == pytest.approx(float(exact), rel=1e-4)
    out.loss.backward()  # double backward reaches the weights
    assert model.hidden[0].weight.grad is not None and model.hidden[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="units_per_layer=0"):
        SensitivityObjective(units=0)
    with pytest.raises(ValueError, match="estimator='exact'"):
        SensitivityObjective(estimator="exact")


class _Linear(nn.Module):
    """f(x) = W x on flattened images, with a Normalize(0, 1) layer so the mean baseline is 0."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.normalize = Normalize([0.0], [1.0])
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalize(x).flatten(1) @ self.w.T


def test_alignment_and_relevance_mass():
    x = torch.rand(2, 1, 3, 3)
    assert torch.allclose(I.alignment(x, 2 * x), torch.ones(2))
    g = torch.zeros_like(x)
    g[:, 0, 0, 0] = 1.0
    x2 = torch.zeros_like(x)
    x2[:, 0, 1, 1] = 1.0
    assert torch.allclose(I.alignment(x2, g), torch.zeros(2))
    attr = torch.zeros(1, 1, 2, 2)
    attr[0, 0, 0, 0] = -3.0
    mask = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    assert torch.allclose(I.relevance_mass(attr, mask), torch.ones(1))
    assert torch.allclose(I.relevance_mass(torch.ones(1, 1, 2, 2), mask), torch.tensor([0.25]))


def test_deletion_prefers_the_decisive_pixel():
    w = torch.zeros(2, 16)
    w[0, 0] = 50.0  # only pixel 0 matters: class 0 wins while it is on
    model = _Linear(w)
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 0, 0] = 1.0
    target = torch.tensor([0])
    good = torch.zeros_like(x)
    good[0, 0, 0, 0] = 1.0
    bad = torch.ones_like(x)
    bad[0, 0, 0, 0] = 0.0
    auc_good = float(I.deletion_auc(model, x, good, target, steps=16))
    auc_bad = float(I.deletion_auc(model, x, bad, target, steps=16))
    assert auc_good < auc_bad
    assert auc_good == pytest.approx(0.5 * (1 / 16) * (1.0 + 0.5) + (15 / 16) * 0.5, rel=1e-3)


def test_infidelity_and_sensitivity_vanish_for_a_linear_model():
    torch.manual_seed(0)
    model = _Linear(torch.randn(3, 16))
    x = torch.rand(4, 1, 4, 4)
    target = torch.tensor([0, 1, 2, 0])
    explain = I.explainer(model, "saliency")
    attr = explain(x, target=target)
    assert torch.allclose(attr.flatten(1), model.w[target].detach())
    assert float(I.infidelity(model, x, attr, target).max()) < 1e-8
    assert float(I.sensitivity_max(explain, x, target).max()) < 1e-6


def test_integrated_gradients_is_complete_for_a_linear_model():
    model = _Linear(torch.randn(3, 16))
    x = torch.rand(2, 1, 4, 4)
    target = torch.tensor([1, 2])
    attr = I.explainer(model, "integrated_gradients")(x, target=target)
    assert torch.allclose(attr.flatten(1).sum(1), model(x).gather(1, target.view(-1, 1)).squeeze(1), atol=1e-4)


def test_evaluate_attributions_on_a_real_model():
    model = build_model("small_cnn", (1, 28, 28), 10, [0.13], [0.31]).eval()
    x = torch.rand(3, 1, 28, 28)
    for method in I.METHODS:
        out = I.evaluate_attributions(model, x, method)
        assert set(out) == {"infidelity", "sens_max", "deletion_auc", "alignment", "relevance_mass", "attributions"}
        assert all(v.shape == (3,) for k, v in out.items() if k != "attributions")
    with pytest.raises(ValueError, match="attribution='lime'"):
        I.explainer(model, "lime")
