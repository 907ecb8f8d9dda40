"""The sensitivity regulariser and the interpretability metrics, on cases with known answers."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import copy

import numpy as np

from advinterp.interpret import attribution as I
from advinterp.interpret import sanity
from advinterp.models.architectures import Normalize, build_model
from advinterp.models.layers import recording
from advinterp.training.clipping import clip_gradient
from advinterp.training.sensitivity import (FLOOR, SensitivityObjective, exact_jacobian_norm, exact_sensitivity,
                                            jacobian_estimate, projection_estimate, unit_scale)


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict(normalize=Normalize([0.5], [0.5]), flatten=nn.Flatten(),
                                     hidden=nn.Sequential(nn.Linear(16, 6), nn.Tanh()), logits=nn.Linear(6, 3)))


def _mean_projection(model: nn.Module, x: torch.Tensor, units: torch.Tensor, normalization: str,
                     draws: int = 3000) -> torch.Tensor:
    """The projection estimate of the hidden layer's sensitivity, averaged over ``draws`` draws."""
    torch.manual_seed(1)
    out = []
    for _ in range(draws):
        xg = x.detach().requires_grad_(True)
        with recording(model, ["hidden"], detach=False) as acts:
            model(xg)
        a = acts["hidden"].flatten(1)
        scale = None if normalization == "none" else unit_scale(a, normalization).detach()
        out.append(projection_estimate(a, xg, units, scale=scale, create_graph=False).detach())
    return torch.stack(out).mean(0)


@pytest.mark.parametrize("normalization", ["none", "rms"])
def test_projection_estimator_is_unbiased_for_the_exact_sum(normalization):
    model = _tiny()
    x = torch.rand(4, 1, 4, 4)
    units = torch.tensor([0, 2, 5])
    exact = exact_sensitivity(model, x, "hidden", units, normalization=normalization)
    mean = _mean_projection(model, x, units, normalization)
    assert torch.allclose(mean, exact, rtol=0.05), (mean, exact)


def test_objective_forms():
    model = _tiny()
    x, y = torch.rand(5, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1])
    zero = SensitivityObjective(lam=0.0, lam_jac=0.0, layers=("hidden",), units=3)(model, x, y)
    assert torch.allclose(zero.loss, F.cross_entropy(model(x), y))
    # the subset estimator over all units is the exact mean
    out = SensitivityObjective(lam=2.0, lam_jac=0.0, layers=("hidden",), units=6, estimator="subset",
                               normalization="none")(model, x, y)
    exact = exact_sensitivity(model, x, "hidden", torch.arange(6)).mean() / 6
    assert out.stats["sensitivity"] == pytest.approx(float(exact), rel=1e-4)
    out.loss.backward()  # double backward reaches the weights
    assert model.hidden[0].weight.grad is not None and model.hidden[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="units_per_layer=0"):
        SensitivityObjective(units=0)
    with pytest.raises(ValueError, match="estimator='exact'"):
        SensitivityObjective(estimator="exact")
    with pytest.raises(ValueError, match="normalization='batch'"):
        SensitivityObjective(normalization="batch")
    with pytest.raises(ValueError, match="lambda_jac=-1"):
        SensitivityObjective(lam_jac=-1.0)


@pytest.mark.parametrize("max_norm", [1e-3, 1e6])
def test_the_surrogate_has_the_losss_value_and_torchs_clipped_gradient(max_norm):
    model, x, y = _tiny(), torch.rand(5, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1])
    loss = F.cross_entropy(model(x), y) + 0.1 * model(x).pow(2).mean()
    surrogate, norm = clip_gradient(loss, model, max_norm)
    assert float(surrogate.detach()) == pytest.approx(float(loss.detach()))
    model.zero_grad()
    surrogate.backward()
    ours = [p.grad.clone() for p in model.parameters()]
    reference = copy.deepcopy(model)
    reference.zero_grad()
    (F.cross_entropy(reference(x), y) + 0.1 * reference(x).pow(2).mean()).backward()
    torch_norm = torch.nn.utils.clip_grad_norm_(reference.parameters(), max_norm)
    assert norm == pytest.approx(float(torch_norm), rel=1e-5)
    for g, r in zip(ours, (p.grad for p in reference.parameters())):
        assert torch.allclose(g, r, rtol=1e-5, atol=1e-9)
    total = float(torch.linalg.vector_norm(torch.cat([g.flatten() for g in ours])))
    assert total <= max_norm * (1 + 1e-4) and (max_norm < norm or total == pytest.approx(norm, rel=1e-5))


def test_the_objective_clips_its_gradient_and_logs_how_often():
    model, x, y = _tiny(), torch.rand(5, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1])
    out = SensitivityObjective(lam=1.0, lam_jac=0.1, layers=("hidden",), units=3, max_grad_norm=1e-3)(model, x, y)
    assert out.stats["clipped"] == 1.0 and out.stats["grad_norm"] > 1e-3
    model.zero_grad()
    out.loss.backward()
    total = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert float(total) == pytest.approx(1e-3, rel=1e-3)
    off = SensitivityObjective(lam=1.0, lam_jac=0.1, layers=("hidden",), units=3, max_grad_norm=0.0)(model, x, y)
    assert "clipped" not in off.stats
    with pytest.raises(ValueError, match="nas_max_grad_norm=-1"):
        SensitivityObjective(max_grad_norm=-1.0)


def test_a_nearly_silent_unit_is_measured_against_the_floor():
    """A unit that fires weakly on one image of the batch: its s_j^2 is at least FLOOR times the
    layer's mean square, so its relative sensitivity stays bounded."""
    a = torch.rand(64, 8) + 0.5
    a[:, 0] = 0.0
    a[3, 0] = 1e-4
    s2 = unit_scale(a, "rms") ** 2
    assert float(s2[0]) >= FLOOR * float(a.pow(2).mean()) * (1 - 1e-6)
    assert torch.allclose(s2[1:], a[:, 1:].pow(2).mean(0) + FLOOR * a.pow(2).mean(), rtol=1e-6)


def _rescaled(model: nn.Module, c: float) -> nn.Module:
    """conv2's weights and bias times c, fc1's weights divided by c: the same function (ReLU, max-pool)."""
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.conv2[0].weight.mul_(c)
        other.conv2[0].bias.mul_(c)
        other.fc1[0].weight.div_(c)
    return other


@pytest.mark.parametrize("estimator", ["projection", "subset"])
def test_relative_sensitivity_is_invariant_to_relu_rescaling(estimator):
    torch.manual_seed(0)
    model = build_model("small_cnn", (1, 28, 28), 10, [0.13], [0.31])
    x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    c = 7.0
    scaled = _rescaled(model, c)
    assert torch.allclose(model(x), scaled(x), atol=1e-4)

    def term(m: nn.Module, normalization: str) -> float:
        objective = SensitivityObjective(lam=1.0, lam_jac=0.0, layers=("conv2",), units=8, estimator=estimator,
                                         normalization=normalization)
        torch.manual_seed(3)  # the same units and Rademacher draws for both models
        stats = objective(m, x, y).stats
        return stats.get("sensitivity", stats["penalty"])  # lambda = 1, no Jacobian term: the penalty is R

    assert term(scaled, "rms") == pytest.approx(term(model, "rms"), rel=1e-3)
    assert term(scaled, "none") == pytest.approx(c ** 2 * term(model, "none"), rel=1e-3)
    # the gradient with respect to the scale vanishes too: d R(c) / d c = 0 at c = 1
    xg = x.detach().requires_grad_(True)
    with recording(model, ["conv2"], detach=False) as acts:
        model(xg)
    a = acts["conv2"].flatten(1)
    scale = torch.ones((), requires_grad=True)
    torch.manual_seed(3)
    units = torch.randperm(a.shape[1])[:64]
    r = projection_estimate(a * scale, xg, units, scale=unit_scale(a * scale, "rms")).mean()
    (g,) = torch.autograd.grad(r, scale)
    assert float(r.detach()) > 0 and abs(float(g)) < 1e-3 * float(r.detach())


def test_joint_projection_is_unbiased_for_both_terms():
    model = _tiny()
    x, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
    lam, lam_jac = 2.0, 0.5
    r = exact_sensitivity(model, x, "hidden", torch.arange(6), normalization="rms").mean() / 6
    j = exact_jacobian_norm(model, x).mean()
    objective = SensitivityObjective(lam=lam, lam_jac=lam_jac, layers=("hidden",), units=6)
    torch.manual_seed(4)
    draws = [objective(model, x, y).stats["penalty"] for _ in range(3000)]
    assert float(np.mean(draws)) == pytest.approx(float(lam * r + lam_jac * j), rel=0.05)


def test_jacobian_estimator_is_unbiased():
    model = _tiny()
    x = torch.rand(3, 1, 4, 4)
    exact = exact_jacobian_norm(model, x)
    torch.manual_seed(2)
    xg = x.detach().requires_grad_(True)
    logits = model(xg)
    draws = torch.stack([jacobian_estimate(logits, xg, create_graph=False).detach() for _ in range(4000)])
    assert torch.allclose(draws.mean(0), exact, rtol=0.05), (draws.mean(0), exact)
    out = SensitivityObjective(lam=0.0, lam_jac=0.5, layers=("hidden",), units=2)(model, x, torch.tensor([0, 1, 2]))
    assert out.stats["penalty"] > 0 and out.loss > F.cross_entropy(model(x), torch.tensor([0, 1, 2]))


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
    p0 = float(torch.softmax(model(x), 1)[0, 0].detach())
    assert auc_good == pytest.approx((0.5 * (1 / 16) * (p0 + 0.5) + (15 / 16) * 0.5) / p0, rel=1e-3)
    # relative to p(x): the same curve shape at another confidence gives the same number
    assert float(I.deletion_auc(_Linear(w * 2), x, good, target, steps=16)) > 0


def test_infidelity_and_sensitivity_vanish_for_a_linear_model():
    torch.manual_seed(0)
    model = _Linear(torch.randn(3, 16))
    x = torch.rand(4, 1, 4, 4)
    target = torch.tensor([0, 1, 2, 0])
    explain = I.explainer(model, "saliency")
    attr = explain(x, target=target)
    assert torch.allclose(attr.flatten(1), model.w[target].detach())
    assert float(I.infidelity(model, x, attr, target).abs().max()) < 1e-6
    assert float(I.sensitivity_max(explain, x, target).max()) < 1e-6


@pytest.mark.parametrize("method", I.METHODS)
def test_every_metric_runs_on_colour_images_in_channels_last_memory(method):
    """The book's networks are channels-last; a colour map then is not contiguous (Captum's
    sensitivity-max flattened it with ``view`` and failed on CIFAR-10, never on one-channel MNIST)."""
    torch.manual_seed(0)
    model = build_model("small_cnn", (3, 16, 16), 10, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)).eval()
    x = torch.rand(3, 3, 16, 16).to(memory_format=torch.channels_last)
    out = I.evaluate_attributions(model, x, method, digit_mask=False, sens_max_images=2)
    assert torch.isfinite(out["sens_max"][:2]).all() and out["sens_max"][2:].isnan().all()
    assert all(len(v) == len(x) for k, v in out.items() if k != "attributions")


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
        assert set(out) == {*I.HIGHER_IS_BETTER, "attributions"}
        assert all(v.shape == (3,) for k, v in out.items() if k != "attributions")
    with pytest.raises(ValueError, match="attribution='lime'"):
        I.explainer(model, "lime")


def test_infidelity_is_scale_free():
    """Normalised infidelity: scaling the logits (and hence the attributions) by 10 changes nothing."""
    torch.manual_seed(0)
    model = build_model("small_cnn", (1, 28, 28), 10, [0.13], [0.31]).eval()
    x = torch.rand(4, 1, 28, 28)
    target = model(x).argmax(1)
    big = copy.deepcopy(model)
    with torch.no_grad():
        big.logits.weight.mul_(10)
        big.logits.bias.mul_(10)
    attr = I.explainer(model, "saliency")(x, target=target)
    torch.manual_seed(1)
    small_inf = I.infidelity(model, x, attr, target)
    torch.manual_seed(1)
    big_inf = I.infidelity(big, x, 10 * attr, target)
    assert torch.allclose(small_inf, big_inf, rtol=1e-3) and float(small_inf.max()) <= 1.0


def test_infidelity_agrees_with_captum():
    """Ours times E[d^2] is Captum's normalised infidelity for the same perturbations."""
    from captum.metrics import infidelity as captum_infidelity

    torch.manual_seed(0)
    model = build_model("small_cnn", (1, 28, 28), 10, [0.13], [0.31]).eval()
    x = torch.rand(3, 1, 28, 28)
    target = model(x).argmax(1)
    attr = I.explainer(model, "saliency")(x, target=target)
    noises = []

    def perturb(inputs):
        noise = torch.randn_like(inputs) * 0.1
        noises.append(noise)
        return noise, inputs - noise

    torch.manual_seed(5)
    theirs = captum_infidelity(model, perturb, x, attr, target=target, n_perturb_samples=16, normalize=True)
    noise = noises[0].view(3, 16, 1, 28, 28) if noises[0].shape[0] == 48 else None
    assert noise is not None
    with torch.no_grad():
        logits = lambda z: model(z).gather(1, target.repeat_interleave(16).view(-1, 1)).squeeze(1)
        xs = x.repeat_interleave(16, 0)
        d = (logits(xs) - logits(xs - noise.reshape(48, 1, 28, 28))).view(3, 16)
    torch.manual_seed(5)
    ours = I.infidelity(model, x, attr, target)
    assert torch.allclose(ours * d.pow(2).mean(1), theirs.detach(), rtol=1e-3, atol=1e-7)


def test_faithfulness_correlation_and_sparseness():
    torch.manual_seed(0)
    w = torch.randn(2, 16)
    model = _Linear(w)
    x = torch.rand(3, 1, 4, 4)
    target = torch.tensor([0, 1, 0])
    exact = w[target].view(3, 1, 4, 4) * x  # a linear model's exact attribution: the logit drop is its sum
    assert torch.allclose(I.faithfulness_correlation(model, x, exact, target), torch.ones(3), atol=1e-5)
    assert float(I.faithfulness_correlation(model, x, -exact, target).max()) < -0.99
    one = torch.zeros(1, 1, 4, 4)
    one[0, 0, 1, 2] = 5.0
    assert float(I.sparseness(one)) > 0.9 and float(I.sparseness(torch.ones(1, 1, 4, 4))) < 1e-6


def test_sparseness_agrees_with_quantus():
    import quantus

    a = torch.rand(5, 1, 6, 6) - 0.5
    ours = I.sparseness(a).numpy()
    theirs = quantus.Sparseness(disable_warnings=True).evaluate_batch(x_batch=np.zeros((5, 1, 6, 6)),
                                                                      a_batch=a.abs().double().numpy())
    assert np.allclose(ours, theirs, rtol=1e-6)


def _trained_tiny_cnn() -> nn.Module:
    """A small_cnn fitted to a toy problem (the label is the quadrant that holds a bright square)."""
    torch.manual_seed(0)
    model = build_model("small_cnn", (1, 28, 28), 4, [0.5], [0.5])
    x, y = _quadrant_images(256)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(40):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    assert (model(x).argmax(1) == y).float().mean() > 0.9
    return model.eval()


def _quadrant_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.randint(0, 4, (n,))
    x = torch.rand(n, 1, 28, 28) * 0.3
    for i, label in enumerate(y.tolist()):
        r, c = divmod(label, 2)
        x[i, 0, 14 * r + 3:14 * r + 11, 14 * c + 3:14 * c + 11] += 0.7
    return x, y


def _saliency(model: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return I.explainer(model, "saliency")(x, target=t)


def test_mprt_flags_a_constant_explanation_and_passes_gradients():
    model = _trained_tiny_cnn()
    x = _quadrant_images(8)[0]
    t = model(x).argmax(1)
    pattern = torch.rand(1, 1, 28, 28)
    constant = sanity.mprt(model, x, t, lambda m, xs, ts: pattern.expand(len(xs), -1, -1, -1).clone())
    assert not sanity.passes(constant) and torch.allclose(sanity.last_correlation(constant), torch.ones(8))
    gradients = sanity.mprt(model, x, t, _saliency)
    assert list(gradients)[1] == "logits" and sanity.passes(gradients)
    assert torch.allclose(gradients["original"], torch.ones(8))


def test_mprt_agrees_with_quantus():
    import quantus

    model = _trained_tiny_cnn()
    x = _quadrant_images(6)[0]
    t = model(x).argmax(1)
    ours = sanity.mprt(model, x, t, _saliency, seed=42)

    def explain(model, inputs, targets, **kwargs):
        xs = torch.as_tensor(inputs, dtype=torch.float32)
        return _saliency(model, xs, torch.as_tensor(targets)).detach().numpy()

    metric = quantus.MPRT(layer_order="top_down", seed=42, disable_warnings=True, normalise=False, abs=True)
    theirs = metric(model=model, x_batch=x.numpy(), y_batch=t.numpy(), a_batch=None, explain_func=explain,
                    device="cpu", batch_size=64)
    assert [k for k in theirs if k != "original"] == [k for k in ours if k != "original"]
    for layer, values in theirs.items():
        assert np.allclose(ours[layer].numpy(), np.asarray(values), atol=1e-4), layer


def test_spearman_matches_scipy():
    from scipy.stats import spearmanr

    a, b = torch.rand(3, 50), torch.rand(3, 50)
    a[0, :10] = 0.5  # ties
    ours = sanity.spearman(a, b)
    for i in range(3):
        assert float(ours[i]) == pytest.approx(spearmanr(a[i].numpy(), b[i].numpy())[0], abs=1e-6)


def test_deletion_gain_is_what_the_maps_order_adds_over_a_random_order():
    """A model that is as sensitive to every pixel gains nothing from any order; a decisive pixel
    ranked first gains over a random order; the random-order curve is the model's, not the map's."""
    w = torch.zeros(2, 16)
    w[0, 0] = 50.0
    model = _Linear(w)
    x = torch.zeros(4, 1, 4, 4)
    x[:, 0, 0, 0] = 1.0
    target = torch.zeros(4, dtype=torch.long)
    good = torch.zeros_like(x)
    good[:, 0, 0, 0] = 1.0
    with torch.random.fork_rng():
        torch.manual_seed(0)
        random_order = I.deletion_auc(model, x, None, target, steps=16)
    gain = random_order - I.deletion_auc(model, x, good, target, steps=16)
    assert (gain > 0.1).all()
    flat = _Linear(torch.zeros(2, 16))  # no pixel matters
    with torch.random.fork_rng():
        torch.manual_seed(0)
        assert torch.allclose(I.deletion_auc(flat, x, None, target, steps=16), I.deletion_auc(flat, x, good, target, steps=16))


def test_deletion_and_faithfulness_delete_to_the_attributions_own_baseline():
    """A linear model's exact attribution against a baseline b is w * (x - b): with b as what a deleted
    pixel becomes, faithfulness correlation is 1 and the fully deleted image is b (issue 32: deleting to
    black while integrated gradients explains against the mean image scored another question)."""
    torch.manual_seed(0)
    w = torch.randn(2, 16)
    model = _Linear(w)
    x, target = torch.rand(3, 1, 4, 4), torch.tensor([0, 1, 0])
    b = torch.full((1, 1, 4, 4), 0.4)
    exact = w[target].view(3, 1, 4, 4) * (x - b)
    assert torch.allclose(I.faithfulness_correlation(model, x, exact, target, baseline=b), torch.ones(3), atol=1e-5)
    _, probs = I.deletion_curve(model, x, exact, target, steps=4, baseline=b)
    full = torch.softmax(model(b.expand_as(x)), 1).gather(1, target.view(-1, 1)).squeeze(1)
    assert torch.allclose(probs[:, -1], full, atol=1e-6)
    net = build_model("small_cnn", (3, 8, 8), 10, (0.5, 0.4, 0.3), (0.25, 0.25, 0.25))
    fill = I.attribution_baseline(net, torch.rand(2, 3, 8, 8))
    assert torch.allclose(fill[:, :, 0, 0], torch.tensor([[0.5, 0.4, 0.3]] * 2))
