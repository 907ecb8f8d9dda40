"""What chapters 2-3 dissect: the images each network is read on (the attacked network's fooled
images, the held-out network's images on the attack's target), the gate on a weak adversarial set,
and the margin-loss PGD of the robustness evaluation (issue 32, items 3-5)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from advinterp.attacks import linf, robustness
from advinterp.attacks.advdata import AdversarialSet
from advinterp.interpret import dissection
from advinterp.interpret.dissection import fooled, reached_target
from advinterp.studies import dissect


class _Lookup(nn.Module):
    """A "network" whose logits are the one-hot of a label stored in the image's first pixel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(x.flatten(1)[:, 0].round().long(), 4).float()


def _set(clean: list[int], adv: list[int], y: list[int], target: list[int]) -> AdversarialSet:
    as_images = lambda labels: torch.tensor(labels, dtype=torch.float32).view(-1, 1, 1, 1)  # noqa: E731
    return AdversarialSet("ensemble", 0.1, as_images(clean), as_images(adv), torch.tensor(y), torch.tensor(target),
                          torch.arange(len(y)))


def test_the_held_out_network_is_read_on_the_images_it_labels_as_the_target():
    #            correct+on target, correct+other wrong, wrong before, still correct
    s = _set(clean=[0, 1, 3, 3], adv=[2, 0, 1, 3], y=[0, 1, 2, 3], target=[2, 2, 1, 0])
    net = _Lookup()
    assert fooled(net, s).tolist() == [True, True, False, False]
    assert reached_target(net, s).tolist() == [True, False, False, False]
    assert dissection.IMAGES["held-out"] is reached_target and dissection.IMAGES["attacked"] is fooled
    untargeted = _set(clean=[0, 1, 3, 3], adv=[2, 0, 1, 3], y=[0, 1, 2, 3], target=[-1, -1, -1, -1])
    assert reached_target(net, untargeted).tolist() == fooled(net, untargeted).tolist()


def test_dissecting_an_unknown_network_role_fails_naming_it():
    s = _set(clean=[0], adv=[1], y=[0], target=[1])
    with pytest.raises(ValueError, match="network='student'"):
        dissection.perturbed_layers(_Lookup(), s, s, [], 1, torch.eye(4), statistic="max", n_boot=2, seed=0,
                                 effects={}, network="student")


def test_a_weak_adversarial_set_is_not_dissected_and_the_page_says_why():
    strong = dissect.success_metrics({0: {"a": 0.97, "b": 0.93}, 1: {"a": 0.99, "b": 0.91}})
    assert strong["member_success_min_per_seed"] == [0.93, 0.91] and dissect.weak_set(strong) is None
    per_seed = {0: {"a": 0.97, "b": 0.93}, 1: {"a": 0.99, "b": 0.35}}
    reason = dissect.weak_set(dissect.success_metrics(per_seed))
    assert reason is not None and "35%" in reason and f"{dissect.MIN_MEMBER_SUCCESS:.0%}" in reason
    assert "not decided" in dissect.success_words(per_seed) and "`b` 64.0%" in dissect.success_words(per_seed)
    # an untargeted set, or results made before the measurement: nothing to gate
    assert dissect.success_metrics({0: {}}) == {} and dissect.weak_set({}) is None


def test_the_margin_loss_is_the_largest_other_logit_minus_the_true_one():
    logits = torch.tensor([[2.0, 1.0, 0.0], [2.0, 1.0, 0.0]])
    assert linf.margin_loss(logits, torch.tensor([0, 2])).tolist() == [-1.0, 2.0]


def test_margin_pgd_keeps_to_its_budget_and_is_an_option_of_the_evaluation_only():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    x, y = torch.rand(16, 3, 2, 2), torch.randint(0, 3, (16,))
    out = linf.pgd_margin([model], x, y, eps=0.05, steps=5, generator=torch.Generator().manual_seed(0))
    assert float((out.x_adv - x).abs().max()) <= 0.05 + 1e-6 and out.x_adv.min() >= 0 and out.x_adv.max() <= 1
    assert "pgd_margin" not in linf.TRAINING_ATTACKS and "pgd_margin" not in linf.EVAL_ATTACKS
    with pytest.raises(ValueError, match="pgd_attack='fgsm'"):
        robustness.evaluate_robustness(model, x, y, eps=0.05, transfer_x=None, pgd_attack="fgsm")


def test_the_two_ensemble_losses_agree_for_one_member_and_keep_to_the_budget():
    """With one member log(mean p) = sum log p: the two losses are the same attack; with two they
    differ, and both stay in the eps-ball and aim at the same drawn targets."""
    torch.manual_seed(0)
    a, b = (nn.Sequential(nn.Flatten(), nn.Linear(12, 4)) for _ in range(2))
    x, y = torch.rand(8, 3, 2, 2), torch.randint(0, 4, (8,))
    target = linf.random_targets(y, 4, torch.Generator().manual_seed(1))
    one = [linf.run(name, [a], x, y, eps=0.1, steps=5, target=target).x_adv for name in ("ensemble", "ensemble_logp")]
    assert torch.allclose(one[0], one[1], atol=1e-6)
    two = linf.ensemble_logp([a, b], x, y, eps=0.1, steps=5, target=target)
    assert float((two.x_adv - x).abs().max()) <= 0.1 + 1e-6 and torch.equal(two.target, target)
    assert linf.ATTACKS["ensemble_logp"].internal and "ensemble_logp" not in linf.EVAL_ATTACKS


def test_the_experiment_builds_the_ensemble_set_with_its_loss():
    from advinterp.studies import setting as S

    assert S.ENSEMBLE_ATTACK == {"probabilities": "ensemble", "log_probabilities": "ensemble_logp"}
    assert set(S.ENSEMBLE_LOSS.validate(v) for v in S.ENSEMBLE_ATTACK) == set(S.ENSEMBLE_ATTACK)
    with pytest.raises(ValueError, match="ensemble_loss='logits'"):
        S.ENSEMBLE_LOSS.validate("logits")


def test_dong_et_als_rows_dissect_the_last_conv_layer():
    """Issue 44, item 6: the neuron rows read the last conv layer's channels; the dense layer feeding the
    logits is an extension, not measured when no layer beyond the conv layer is dissected."""
    from advinterp.studies.dissect import dense_extension, dissected_deepest, dong_layer

    small = {"model": "small_cnn", "layers": None}
    assert dong_layer(small) == "conv2" and dissected_deepest(small) == "fc1" and dense_extension(small) is None
    assert dong_layer({"model": "small_cnn", "layers": ["conv1", "conv2", "fc1"]}) == "conv2"
    assert dong_layer({"model": "resnet20", "layers": None}) == "layer3"
    assert "beyond" in dense_extension({"model": "resnet20", "layers": None})
    assert dong_layer({"model": "mlp", "layers": None}) == "fc1"
    assert "model" in dense_extension({})
