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
    assert abs(float(consistency_term(a, b).detach())) < 1e-6  # 1 - cos(a, a): zero up to rounding
    obj = AdversarialObjective(attack="fgsm", eps=0.2, steps=1, alpha=0.0, lam=1.0, clean_weight=1.0)
    model.zero_grad()
    out = obj(model, x, y)
    term = out.loss - F.cross_entropy(model(x), y)
    assert float(term.detach()) > 0
    term.backward()
    assert model.conv1[0].weight.grad is not None and model.conv1[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("c", [0.01, 0.5, 3.0, 250.0])
def test_default_term_is_invariant_to_rescaling_and_the_squared_one_is_not(c):
    """A ReLU layer scaled by c (the next by 1/c) computes the same predictions; the default cosine
    term must not change, the literal squared distance changes by c^2."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(6, 16, generator=g), torch.rand(6, 16, generator=g)
    assert torch.allclose(consistency_term(c * a, c * b), consistency_term(a, b), atol=1e-6)
    assert torch.allclose(consistency_term(c * a, c * b, "squared"), c ** 2 * consistency_term(a, b, "squared"),
                          rtol=1e-4)
    assert 0.0 <= float(consistency_term(a, b)) <= 2.0
    with pytest.raises(ValueError, match="^consistency='l1' is not allowed"):
        consistency_term(a, b, "l1")


def test_rescaling_the_network_leaves_predictions_and_the_cosine_term_unchanged():
    model, (x, _) = _model().eval(), _batch()
    scaled = _model().eval()
    scaled.load_state_dict(model.state_dict())
    with torch.no_grad():
        scaled.fc1[0].weight.mul_(4.0)
        scaled.fc1[0].bias.mul_(4.0)
        scaled.logits.weight.div_(4.0)
    x_adv = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    terms = {}
    for name, m in (("base", model), ("scaled", scaled)):
        with activations.recording(m, ["fc1"]) as acts:
            logits = m(x)
            phi = acts["fc1"]
            m(x_adv)
            phi_adv = acts["fc1"]
        terms[name] = (logits, consistency_term(phi, phi_adv), consistency_term(phi, phi_adv, "squared"))
    assert torch.allclose(terms["base"][0], terms["scaled"][0], atol=1e-4)
    assert torch.allclose(terms["base"][1], terms["scaled"][1], atol=1e-6)
    assert float(terms["scaled"][2]) == pytest.approx(16 * float(terms["base"][2]), rel=1e-3)


def test_anchor_clean_sends_no_gradient_through_the_clean_branch():
    phi = torch.rand(5, 8, requires_grad=True)
    phi_adv = torch.rand(5, 8, requires_grad=True)
    consistency_term(phi.detach(), phi_adv).backward()
    assert phi.grad is None and phi_adv.grad is not None and phi_adv.grad.abs().sum() > 0
    model, (x, y) = _model(), _batch()
    obj = AdversarialObjective(attack="fgsm", eps=0.2, steps=1, alpha=0.0, lam=1.0, anchor_clean=True)
    seen = {}
    handle = model.fc1.register_forward_hook(lambda m, i, o: seen.setdefault(len(seen), o))
    out = obj(model, x, y)
    handle.remove()
    clean_phi = seen[len(seen) - 2]  # the objective's two forward passes: clean, then adversarial
    (g_clean,) = torch.autograd.grad(out.loss - F.cross_entropy(out.logits, y), clean_phi, retain_graph=True,
                                     allow_unused=True)
    assert g_clean is None or float(g_clean.abs().sum()) == 0.0


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
    base = AdversarialObjective(attack="fgsm_rs", eps=0.1, steps=2, alpha=0.5, layer="conv2", consistency="squared")
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


def test_fooled_only_keeps_exactly_the_successful_attacks():
    from advinterp.attacks.advdata import AdversarialSet
    from advinterp.interpret.dissection import consistency_on_fooled, fooled

    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        model[1].bias.zero_()
    x = torch.tensor([[[[1.0, 0.0]]], [[[1.0, 0.0]]], [[[0.0, 1.0]]], [[[0.0, 1.0]]]])
    x_adv = torch.tensor([[[[0.0, 1.0]]], [[[1.0, 0.0]]], [[[1.0, 0.0]]], [[[1.0, 0.0]]]])
    y = torch.tensor([0, 0, 1, 0])  # the last image is misclassified before the attack: not a success
    adv = AdversarialSet("pgd", 1.0, x, x_adv, y, torch.full_like(y, -1), torch.arange(4))
    assert fooled(model, adv).tolist() == [True, False, True, False]
    stats = consistency_on_fooled(model, adv, "1", 2, torch.eye(2))
    assert stats["n_fooled"] == 2 and stats["feature_dist"] >= 0
    assert all(v != v for k, v in stats.items() if k not in ("n_fooled", "k", "feature_dist"))  # too few: NaN


def test_permuted_concepts_give_chance_auc_on_constructed_data():
    """Concepts that carry the signal separate clean from adversarial inputs; shuffling them among
    neurons leaves an AUC near 0.5 when the readout structure carries no signal."""
    g = torch.Generator().manual_seed(0)
    n, neurons, classes = 400, 40, 4
    concept = torch.arange(neurons) % classes
    live = torch.ones(neurons, dtype=torch.bool)
    pred = torch.randint(0, classes, (2 * n,), generator=g)
    # clean inputs: influential neurons share the predicted class; adversarial: random neurons
    pd = torch.rand(2 * n, neurons, generator=g)
    pd[:n] += 5.0 * (concept.view(1, -1) == pred[:n].view(-1, 1))
    A = torch.eye(classes)
    s = tracing.agreement_score(pd, pred, concept, A, 5)
    assert tracing.detection_auc(s[:n], s[n:]) > 0.9
    aucs = []
    for seed in range(20):
        shuffled = tracing.permuted_concepts(concept, live, torch.Generator().manual_seed(seed))
        assert sorted(shuffled.tolist()) == sorted(concept.tolist())
        sp = tracing.agreement_score(pd, pred, shuffled, A, 5)
        aucs.append(tracing.detection_auc(sp[:n], sp[n:]))
    assert abs(sum(aucs) / len(aucs) - 0.5) < 0.05
