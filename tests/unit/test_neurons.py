"""Top-K mining, patches, consistency and representation metrics on constructed cases."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from advinterp.interpret import consistency as C
from advinterp.interpret import patches, representation
from advinterp.interpret.topk import mine_topk


class _Probe(nn.Module):
    """'conv' exposes the input itself as C channel maps, 'dense' its flattening."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv, self.dense, self.head = nn.Identity(), nn.Flatten(), nn.Linear(channels, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv(x)
        self.dense(a)
        return self.head(a.mean((2, 3)))


def _probe_model(channels: int = 3) -> nn.Module:
    return _Probe(channels)


@pytest.mark.parametrize("statistic", ["max", "mean"])
def test_streaming_topk_equals_full_sort(statistic):
    torch.manual_seed(0)
    x = torch.rand(203, 3, 5, 5)
    labels = torch.randint(0, 4, (203,))
    model = _probe_model()
    got = mine_topk(model, x, ["conv", "dense"], 11, statistic=statistic, quantile=0.01, labels={"true": labels},
                    batch_size=17)
    conv_values = x.amax((2, 3)) if statistic == "max" else x.mean((2, 3))
    for layer, full in (("conv", conv_values), ("dense", x.flatten(1))):
        ref_v, ref_i = full.T.topk(11, dim=1)
        assert torch.equal(got[layer].indices, ref_i) and torch.allclose(got[layer].values, ref_v)
        assert torch.equal(got[layer].labels["true"], labels[ref_i])
        assert torch.equal(got[layer].labels["pred"], model(x).argmax(1)[ref_i])
    # the patch threshold is the exact dataset-wide top-1 % value of every channel's map values
    per_channel = x.transpose(0, 1).reshape(3, -1)
    m = int(torch.ceil(torch.tensor(0.01 * per_channel.shape[1])))
    assert torch.allclose(got["conv"].threshold, per_channel.topk(m, dim=1).values[:, -1])
    assert got["conv"].spatial and not got["dense"].spatial


def test_mining_memory_does_not_grow_with_the_probe_set():
    """Kept state per layer is K x neurons (+ at most max_samples x neurons for the threshold)."""
    model = _probe_model()
    small = mine_topk(model, torch.rand(50, 3, 5, 5), ["dense"], 5, quantile=0.02)
    large = mine_topk(model, torch.rand(500, 3, 5, 5), ["dense"], 5, quantile=0.002)
    assert small["dense"].values.shape == large["dense"].values.shape == (75, 5)


def test_sampled_patch_threshold_is_within_its_rank_error():
    """Beyond max_samples values a neuron's threshold comes from a uniform sample: the share of all
    its values above the estimate stays within 5 standard deviations of the rank error of q."""
    from advinterp.interpret.topk import TopQuantile

    torch.manual_seed(0)
    q, samples = 0.005, 2 ** 14
    values = torch.distributions.Exponential(torch.tensor([1.0, 0.2, 5.0])).sample((400_000,)).T  # (3, N)
    sketch = TopQuantile(q, values.shape[1], max_samples=samples)
    for block in values.split(10_000, dim=1):
        sketch.update(block)
    assert sum(k.shape[1] for k in sketch.kept) <= 1.05 * samples  # bounded memory
    share_above = (values >= sketch.threshold()[:, None]).float().mean(1)
    sd = (q * (1 - q) / samples) ** 0.5
    assert ((share_above - q).abs() <= 5 * sd).all(), share_above
    exact = TopQuantile(q, 1000, max_samples=samples)  # few values: every one is kept, exact
    exact.update(values[:, :1000])
    assert torch.equal(exact.threshold(), values[:, :1000].topk(5, dim=1).values[:, -1])


def test_dead_neurons_are_not_live():
    x = torch.rand(20, 1, 5, 5)
    x[:, :, 0, 0] = 0  # pixel (0, 0) never fires
    got = mine_topk(_probe_model(1), x, ["dense"], 3)["dense"]
    assert not bool(got.live[0]) and bool(got.live[1:].all())


def test_bad_k_and_statistic():
    with pytest.raises(ValueError, match="k=21"):
        mine_topk(_probe_model(), torch.rand(20, 3, 5, 5), ["dense"], 21)
    with pytest.raises(ValueError, match="statistic='median'"):
        mine_topk(_probe_model(), torch.rand(20, 3, 5, 5), ["dense"], 2, statistic="median")


def test_patches_lie_where_the_map_is_high():
    x = torch.zeros(2, 1, 20, 20)
    x[0, 0, 2:6, 12:18] = 1.0   # a bright block top-right
    x[1, 0, 14:19, 1:5] = 0.8   # and bottom-left
    masks = patches.neuron_patches(_probe_model(1), x, "conv", torch.tensor([0, 0]), torch.tensor([0.5, 0.5]))
    assert masks.shape == (2, 20, 20) and masks[0].any() and masks[1].any()
    assert not (masks[0] & (x[0, 0] == 0)).any() and not (masks[1] & (x[1, 0] == 0)).any()
    assert patches.bounding_box(masks[0]) == (2, 12, 5, 17)
    assert patches.bounding_box(torch.zeros(3, 3, dtype=torch.bool)) is None


def test_patch_masks_upsample_small_maps():
    maps = torch.zeros(1, 2, 2)
    maps[0, 0, 0] = 1.0  # top-left cell of a 2x2 map
    mask = patches.patch_masks(maps, torch.tensor([0.5]), (8, 8))[0]
    assert mask[0, 0] and not mask[7, 7] and mask[:4, :4].sum() > mask[4:, 4:].sum()


def test_consistency_half_cat_half_dog_is_0_6():
    """docs/papers.md's check: top images half cat, half dog, CIFAR-10 path similarity (A = 0.2)."""
    from advinterp.interpret import affinity

    A = affinity.cifar10()
    labels = torch.tensor([[3] * 10 + [5] * 10])  # cat = 3, dog = 5
    assert torch.allclose(C.neuron_consistency(labels, A), torch.tensor([0.6]))


def test_consistency_extremes_and_agreement():
    eye = torch.eye(4)
    labels = torch.tensor([[1, 1, 1, 1], [0, 1, 2, 3], [2, 2, 3, 3]])
    assert torch.allclose(C.neuron_consistency(labels, eye), torch.tensor([1.0, 0.25, 0.5]))
    assert torch.allclose(C.neuron_consistency(labels, torch.ones(4, 4)), torch.ones(3))
    assert C.dominant_class(labels, 4).tolist() == [1, 0, 2]
    assert torch.allclose(C.agreement(labels, torch.tensor([1, 3, 3])), torch.tensor([1.0, 0.25, 0.5]))
    with pytest.raises(ValueError):
        C.label_histograms(torch.tensor([[5]]), 4)


def test_representation_metrics_on_constructed_vectors():
    a = torch.tensor([[1.0, 0.0], [1.0, 2.0], [0.0, 0.0]])
    b = torch.tensor([[0.0, 3.0], [2.0, 4.0], [1.0, 1.0]])
    assert torch.allclose(representation.cosine(a, b), torch.tensor([0.0, 1.0, 0.0]))
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert torch.allclose(representation.pearson(x, 3 * x + 1), torch.tensor([1.0]))
    assert torch.allclose(representation.pearson(x, -x), torch.tensor([-1.0]))
    feats = torch.tensor([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [12.0, 10.0]])
    labels = torch.tensor([0, 0, 1, 1])
    means = representation.class_means(feats, labels, 2)
    assert torch.allclose(means, torch.tensor([[1.0, 0.0], [11.0, 10.0]]))
    nn_labels = representation.knn_labels(torch.tensor([[11.0, 9.0], [0.5, 0.1]]), feats, labels, 2)
    assert nn_labels.tolist() == [[1, 1], [0, 0]]
    A = torch.tensor([[1.0, 0.2], [0.2, 1.0]])
    lc = representation.local_consistency(nn_labels, torch.tensor([0, 0]), A)
    assert torch.allclose(lc, torch.tensor([0.2, 1.0]))
    m = representation.representation_metrics(feats[2:], feats[:2], torch.tensor([0, 0]), torch.tensor([1, 1]),
                                              means, nn_labels, A)
    assert (m["cs_target"] > m["cs_true"]).all()


def test_the_neuron_browser_draws_each_choice_into_an_image():
    """Chapter 2's widget redraws its gallery as PNG bytes (no Output widget, whose captured display
    stalls headless execution: jupyter/nbclient#312) when the reader picks another neuron or probe set."""
    pytest.importorskip("ipywidgets")
    from advinterp.attacks.advdata import AdversarialSet
    from advinterp.interpret.dissection import neuron_report
    from advinterp.report.widgets import neuron_browser

    torch.manual_seed(0)
    x = torch.rand(12, 3, 6, 6)
    y = torch.randint(0, 4, (12,))
    adv = AdversarialSet("pgd", 0.1, x, (x + 0.05).clamp(0, 1), y, (y + 1) % 4, torch.arange(12))
    model = _probe_model()
    diss = neuron_report(model, adv, adv.target, ["conv"], 3, torch.eye(4))
    browser = neuron_browser(model, diss, adv, adv.target, ["a", "b", "c", "d"], k_show=3)
    (layer, neuron), (which, _), image = browser.children[0].children, browser.children[1].children, browser.children[2]
    first = image.value
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    assert neuron.max == 2 and layer.value == "conv"
    neuron.value = 2
    assert image.value[:8] == b"\x89PNG\r\n\x1a\n" and image.value != first
    both = image.value
    which.value = "real"
    assert image.value != both
