from __future__ import annotations

import pytest
import torch

from advinterp.models import architectures as models
from advinterp.models import layers as activations

SMALL = ["small_cnn", "wide_cnn", "mlp", "small_resnet", "vgg_cifar", "resnet20"]


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_small_models_forward_and_named_layers(name, shape):
    torch.manual_seed(0)
    m = models.build_model(name, shape, 10, [0.5] * shape[0], [0.25] * shape[0]).eval()
    x = torch.rand(3, *shape)
    assert m(x).shape == (3, 10)
    assert isinstance(m[0], models.Normalize)
    spec = models.MODELS[name]
    acts = activations.activations(m, x, spec.layers)
    for layer in spec.conv_layers:
        assert acts[layer].ndim == 4 and (acts[layer] >= 0).all(), "conv neurons are post-ReLU maps"
    for layer in spec.dense_layers:
        assert acts[layer].ndim == 2 and (acts[layer] >= 0).all()


def test_normalisation_is_inside_the_model():
    m = models.build_model("mlp", (1, 4, 4), 2, [0.5], [0.25])
    z = m.normalize(torch.full((1, 1, 4, 4), 0.75))
    assert torch.allclose(z, torch.full_like(z, 1.0))


@pytest.mark.parametrize("name,layer", [("alexnet", "features.11"), ("vgg16", "features.29"),
                                        ("resnet18", "layer4")])
def test_torchvision_models_without_weights(name, layer):
    m = models.build_model(name, (3, 64, 64), 7, [0.5] * 3, [0.2] * 3).eval()
    x = torch.rand(2, 3, 64, 64)
    with activations.recording(m, [layer]) as acts:
        out = m(x)
    assert out.shape == (2, 7) and acts[layer].ndim == 4 and (acts[layer] >= 0).all()
    assert not any(getattr(mod, "inplace", False) for mod in m.modules())


def test_pretrained_offline_says_how_to_get_weights(monkeypatch, tmp_path):
    import urllib.error

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(FileNotFoundError, match=r"pretrained resnet18 weights are not in .*checkpoints"):
        models.build_model("resnet18", (3, 224, 224), 1000, [0.5] * 3, [0.2] * 3, pretrained=True)


def test_bad_model_choices():
    with pytest.raises(ValueError, match="model='nope' is not allowed"):
        models.build_model("nope", (1, 28, 28), 10, [0.5], [0.2])
    with pytest.raises(ValueError, match="model='alexnet'"):
        models.build_model("alexnet", (1, 28, 28), 10, [0.5], [0.2])
    with pytest.raises(ValueError, match="pretrained=True"):
        models.build_model("small_cnn", (1, 28, 28), 10, [0.5], [0.2], pretrained=True)


def test_recording_and_editing_leave_no_hooks():
    m = models.build_model("small_cnn", (1, 28, 28), 10, [0.5], [0.25]).eval()
    x = torch.rand(2, 1, 28, 28)
    base = m(x)
    with activations.editing(m, "fc1", torch.zeros_like):
        edited = m(x)
    assert torch.allclose(edited, m.logits.bias.expand(2, -1))
    assert torch.allclose(m(x), base)
    assert all(not mod._forward_hooks for mod in m.modules())
    with pytest.raises(ValueError, match="layer='nope' is not allowed"):
        activations.get_layer(m, "nope")


def test_neuron_values_statistics():
    act = torch.arange(2 * 3 * 2 * 2, dtype=torch.float).view(2, 3, 2, 2)
    assert torch.equal(activations.neuron_values(act, "max"), act.amax((2, 3)))
    assert torch.allclose(activations.neuron_values(act, "mean"), act.mean((2, 3)))
    dense = torch.rand(4, 5)
    assert activations.neuron_values(dense) is dense
    with pytest.raises(ValueError, match="statistic='median'"):
        activations.neuron_values(act, "median")


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_every_architecture_has_a_summary_for_the_page(name):
    """Chapter 1 words its networks from the architectures (never typed): a short phrase each."""
    summary = models.MODELS[name].summary
    assert summary and "\n" not in summary and not summary.endswith(".") and len(summary) < 120


def test_chapter_1_words_the_networks_that_ran():
    from advinterp.core.params import ChapterParams
    from advinterp.studies.transfer import networks_words

    words = networks_words(ChapterParams(model="small_cnn", ensemble=["small_resnet"], heldout="wide_cnn"))
    ensemble, held = words.split(". ")
    assert ensemble.startswith("2 networks form the ensemble: `small_cnn` (") and "`small_resnet` (" in ensemble
    assert held.startswith("`wide_cnn` (") and held.endswith("is held out") and "wide_cnn" not in ensemble
