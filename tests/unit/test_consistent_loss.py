"""The consistent loss as a loss hook; prediction difference; the agreement detector."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advinterp.attacks import linf as attacks
from advinterp.interpret import influence, tracing
from advinterp.models import layers as activations
from advinterp.training import loop as training
from advinterp.models.layers import dead_units
from advinterp.training.adversarial import AdversarialObjective, consistency_term, dead_fraction, madry
from advinterp.models.architectures import build_model


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("small_cnn", (1, 28, 28), 10, [0.13], [0.31])


def _batch(n: int = 16):
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_lambda_zero_is_the_adversarial_training_loss():
    model, (x, y) = _model(), _batch()
    obj = AdversarialObjective(attack="fgsm", eps=0.1, steps=1, alpha=0.7, lam=0.0)
    out = obj(model, x, y)
    x_adv = attacks.fgsm([model], x, y, eps=0.1).x_adv
    expected = F.cross_entropy(model(x), y) + 0.7 * F.cross_entropy(model(x_adv), y)
    assert torch.allclose(out.loss, expected)
    lam = dataclasses.replace(obj, lam=2.0)(model, x, y)
    assert torch.allclose(lam.loss, expected + 2.0 * lam.stats["consistency"], atol=1e-6)


def test_madry_objective_uses_only_the_adversarial_batch():
    model, (x, y) = _model(), _batch()
    obj = madry(0.1, 1, attack="fgsm")
    x_adv = attacks.fgsm([model], x, y, eps=0.1).x_adv
    assert torch.allclose(obj(model, x, y).loss, F.cross_entropy(model(x_adv), y))


def test_consistency_term_is_zero_without_perturbation_and_its_gradient_flows():
    model, (x, y) = _model(), _batch()
    with activations.recording(model, ["fc1"], detach=False) as acts:
        model(x)
        a = acts["fc1"]
        model(x)
        b = acts["fc1"]
    assert abs(float(consistency_term(a, b).detach())) < 1e-12
    obj = AdversarialObjective(attack="fgsm", eps=0.2, steps=1, alpha=0.0, lam=1.0, clean_weight=1.0)
    model.zero_grad()
    out = obj(model, x, y)
    term = out.loss - F.cross_entropy(model(x), y)
    assert float(term.detach()) > 0
    term.backward()
    assert model.conv1[0].weight.grad is not None and model.conv1[0].weight.grad.abs().sum() > 0


def test_normalised_variant_is_scale_invariant():
    a, b = torch.rand(4, 8), torch.rand(4, 8)
    assert torch.allclose(consistency_term(3 * a, 3 * b, normalize=True), consistency_term(a, b, normalize=True))
    assert not torch.allclose(consistency_term(3 * a, 3 * b), consistency_term(a, b))


def test_dead_unit_counts():
    phi = torch.tensor([[0.0, 1.0, 0.0], [0.0, 2.0, 3.0]])
    assert dead_fraction(phi) == pytest.approx(1 / 3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU())
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.copy_(torch.tensor([-1.0, 1.0, -1.0]))
    assert dead_units(model, torch.rand(5, 1, 2, 2), "2") == 2


def test_bad_objective_settings():
    with pytest.raises(ValueError, match="lambda=-1"):
        AdversarialObjective(lam=-1)
    with pytest.raises(ValueError, match="train_attack='cw'"):
        AdversarialObjective(attack="cw")
    with pytest.raises(ValueError, match="alpha=0 is not allowed: a positive weight when clean_weight=0"):
        AdversarialObjective(alpha=0, clean_weight=0)


def test_with_lambda_changes_only_the_consistency_weight_and_validates():
    base = AdversarialObjective(attack="fgsm_rs", eps=0.1, steps=2, alpha=0.5, layer="conv2", normalize=True)
    cl = base.with_lambda(7.0)
    assert cl.lam == 7.0 and base.lam == 0.0
    assert {k: v for k, v in cl.describe().items() if k != "lam"} == {k: v for k, v in base.describe().items() if k != "lam"}
    with pytest.raises(ValueError, match="lambda=-1"):
        base.with_lambda(-1.0)


def test_adversarial_training_runs_through_the_loop_and_is_cached(tmp_cache):
    cfg = training.TrainConfig(model="small_cnn", epochs=1, max_train=128)
    obj = AdversarialObjective(attack="pgd", eps=0.1, steps=2, lam=1.0)
    first = training.train(cfg, obj, device="cpu", progress=False)
    assert {"ce_clean", "ce_adv", "consistency", "dead_fraction"} <= set(first.history[0])
    assert training.train(cfg, obj, device="cpu", progress=False).from_cache
    assert training.model_key(cfg, obj) != training.model_key(cfg, dataclasses.replace(obj, lam=2.0))


@pytest.mark.parametrize("layer,kind", [("fc1", "zero"), ("conv2", "mean")])
@pytest.mark.parametrize("log_odds", [False, True])
def test_batched_prediction_difference_equals_a_loop(layer, kind, log_odds):
    model, (x, _) = _model().eval(), _batch(6)
    base = influence.baseline_values(model, x, layer, kind)
    pd, target = influence.prediction_difference(model, x, layer, base, log_odds=log_odds, chunk=7, batch_size=4)
    n = base.shape[0]
    with torch.no_grad():
        p = torch.softmax(model(x), 1).gather(1, target.view(-1, 1)).squeeze(1)
        for j in range(n):
            def ablate(out, j=j):
                out = out.clone()
                out[:, j] = base[j]
                return out

            with activations.editing(model, layer, ablate):
                q = torch.softmax(model(x), 1).gather(1, target.view(-1, 1)).squeeze(1)
            ref = (influence._log_odds(p) - influence._log_odds(q)) if log_odds else p - q
            assert torch.allclose(pd[:, j], ref, atol=1e-5), j


def test_a_neuron_that_feeds_nothing_has_zero_prediction_difference():
    model, (x, _) = _model().eval(), _batch(5)
    with torch.no_grad():
        model.logits.weight[:, 7] = 0.0  # fc1 unit 7 no longer reaches the logits
    pd, _ = influence.prediction_difference(model, x, "fc1", torch.zeros(128))
    # an identity up to float rounding, which differs between CPUs' kernels (-1.5e-8 seen): a tolerance
    assert torch.allclose(pd[:, 7], torch.zeros(len(x)), atol=1e-6)


def test_agreement_score_and_detector_on_a_constructed_case():
    A = torch.eye(3)
    concept = torch.tensor([0, 1, 2, 0])
    pd = torch.tensor([[0.9, 0.1, 0.0, 0.8], [0.1, 0.9, 0.8, 0.0]])
    s = tracing.agreement_score(pd, torch.tensor([0, 2]), concept, A, k=2)
    assert torch.allclose(s, torch.tensor([1.0, 0.5]))
    sw = tracing.agreement_score(pd, torch.tensor([0, 2]), concept, A, k=2, weighted=True)
    assert torch.allclose(sw, torch.tensor([1.0, 0.8 / 1.7]))
    clean, adv = torch.tensor([0.9, 0.8, 1.0]), torch.tensor([0.1, 0.2])
    assert tracing.detection_auc(clean, adv) == 1.0
    assert tracing.detection_auc(adv, clean) == 0.0
    assert tracing.detection_auc(torch.full((4,), 0.5), torch.full((4,), 0.5)) == 0.5
