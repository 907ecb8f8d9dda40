"""Architectures, each with its input normalisation as the first layer.

Because normalisation lives inside the model, every model maps images in ``[0, 1]`` to logits
and attacks work in pixel units. Models compute in channels-last memory (the normalisation layer
hands on its output that way, and :func:`build_model` stores the weights that way): on a CPU,
max-pooling and convolutions run two to three times faster on it (measured on 2 cores: a small
CNN's forward pass on 500 MNIST digits 43 ms channels-first, 14 ms channels-last); the numbers a
layer computes are the same up to floating-point rounding. Layers carry names so that later chapters can address
"neurons" (conv channels, dense units) by name through :mod:`advinterp.models.layers`.

==================  ================  ======================================================
name                input             analysed layers (post-ReLU)
==================  ================  ======================================================
``small_cnn``       28x28 grey (any)  ``conv1`` (16 ch), ``conv2`` (32 ch), ``fc1`` (128)
``wide_cnn``        28x28 grey (any)  ``conv1`` (64 ch, 5x5), ``fc1`` (128)
``mlp``             any               ``fc1`` (256), ``fc2`` (128)
``small_resnet``    28x28 grey (any)  ``block1``, ``block2`` (32 ch), ``fc1`` (64)
``vgg_cifar``       32x32 colour      ``conv1``..``conv6`` (32-128 ch), ``fc1`` (256)
``resnet20``        32x32 colour      ``layer1``, ``layer2``, ``layer3`` (64 ch)
``alexnet``         224 ImageNet      ``features.11`` (conv5), ``features.8``, ``classifier.5``
``vgg16``           224 ImageNet      ``features.29`` (conv5_3), ``features.22``, ``classifier.4``
``resnet18``        224 ImageNet      ``layer4``, ``layer3``
``resnet50``        224 ImageNet      ``layer4``, ``layer3`` (a held-out network for ImageNet)
==================  ================  ======================================================

The last four are torchvision's ImageNet models; ``pretrained=True`` loads their weights
(torchvision fetches them into ``$TORCH_HOME`` when online).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..core.params import choice
from ..core.validation import check_choice, fail
from ..data.datasets import IMAGENET_MEAN, IMAGENET_STD


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, as a layer (buffers, no parameters)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = (x - self.mean) / self.std
        return out.contiguous(memory_format=torch.channels_last) if out.ndim == 4 else out

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"


def _conv(cin: int, cout: int, k: int = 3, bn: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, padding=k // 2, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _dense(nin: int, nout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(nin, nout), nn.ReLU())


def _flat_size(body: nn.Module, shape: tuple[int, int, int]) -> int:
    with torch.no_grad():
        return int(body(torch.zeros(1, *shape)).numel())


def small_cnn(shape: tuple[int, int, int], num_classes: int) -> OrderedDict[str, nn.Module]:
    """Two 3x3 conv layers (16, 32 channels) with max-pooling, a 128-unit dense layer."""
    c = shape[0]
    body = OrderedDict(conv1=_conv(c, 16), pool1=nn.MaxPool2d(2), conv2=_conv(16, 32), pool2=nn.MaxPool2d(2),
                       flatten=nn.Flatten())
    n = _flat_size(nn.Sequential(body), shape)
    return OrderedDict(**body, fc1=_dense(n, 128), logits=nn.Linear(128, num_classes))


def wide_cnn(shape: tuple[int, int, int], num_classes: int) -> OrderedDict[str, nn.Module]:
    """One wide 5x5 conv layer (64 channels), 4x4 pooling, a 128-unit dense layer."""
    body = OrderedDict(conv1=_conv(shape[0], 64, 5), pool1=nn.MaxPool2d(4), flatten=nn.Flatten())
    n = _flat_size(nn.Sequential(body), shape)
    return OrderedDict(**body, fc1=_dense(n, 128), logits=nn.Linear(128, num_classes))


def mlp(shape: tuple[int, int, int], num_classes: int) -> OrderedDict[str, nn.Module]:
    """A two-hidden-layer perceptron (256, 128 units)."""
    n = shape[0] * shape[1] * shape[2]
    return OrderedDict(flatten=nn.Flatten(), fc1=_dense(n, 256), fc2=_dense(256, 128),
                       logits=nn.Linear(128, num_classes))


class BasicBlock(nn.Module):
    """The ResNet basic block (He et al. 2016) with an optional projection shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1, bn: bool = True) -> None:
        super().__init__()
        norm: Callable[[int], nn.Module] = nn.BatchNorm2d if bn else (lambda _: nn.Identity())
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=not bn)
        self.bn1 = norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=not bn)
        self.bn2 = norm(cout)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=not bn), norm(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


def small_resnet(shape: tuple[int, int, int], num_classes: int) -> OrderedDict[str, nn.Module]:
    """A stem and two residual blocks with batch norm (16 -> 32 channels), a 64-unit dense layer."""
    return OrderedDict(
        stem=_conv(shape[0], 16, bn=True), block1=BasicBlock(16, 16, 1), block2=BasicBlock(16, 32, 2),
        pool=nn.AdaptiveAvgPool2d(4), flatten=nn.Flatten(), fc1=_dense(32 * 16, 64),
        logits=nn.Linear(64, num_classes),
    )


def vgg_cifar(shape: tuple[int, int, int], num_classes: int) -> OrderedDict[str, nn.Module]:
    """A small VGG-style CNN: 3 stages of two 3x3 convs (32, 64, 128 ch) with BN, a 256-unit layer."""
    widths = [32, 32, 64, 64, 128, 128]
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    cin = shape[0]
    for i, w in enumerate(widths, start=1):
        layers[f"conv{i}"] = _conv(cin, w, bn=True)
        cin = w
        if i % 2 == 0:
            layers[f"pool{i // 2}"] = nn.MaxPool2d(2)
    layers["flatten"] = nn.Flatten()
    n = _flat_size(nn.Sequential(layers), shape)
    layers["fc1"] = _dense(n, 256)
    layers["logits"] = nn.Linear(256, num_classes)
    return layers


def resnet20(shape: tuple[int, int, int], num_classes: int) -> OrderedDict[str, nn.Module]:
    """The CIFAR ResNet-20 of He et al. (2016): 3 stages of 3 basic blocks, 16/32/64 channels."""

    def stage(cin: int, cout: int, stride: int) -> nn.Sequential:
        return nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout), BasicBlock(cout, cout))

    return OrderedDict(
        stem=nn.Sequential(nn.Conv2d(shape[0], 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()),
        layer1=stage(16, 16, 1), layer2=stage(16, 32, 2), layer3=stage(32, 64, 2),
        pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), logits=nn.Linear(64, num_classes),
    )


def _torchvision(name: str, num_classes: int, pretrained: bool) -> OrderedDict[str, nn.Module]:
    import torchvision

    builder = getattr(torchvision.models, name)
    if pretrained:
        if num_classes != 1000:
            fail("model", name, f"pretrained ImageNet weights predict 1000 classes, the data has {num_classes}; "
                 "use pretrained=False to train it from scratch")
        weights = torchvision.models.get_model_weights(name).DEFAULT
        try:
            net = builder(weights=weights)
        except Exception as err:
            hub = torch.hub.get_dir()
            raise FileNotFoundError(
                f"the pretrained {name} weights are not in {hub}/checkpoints and could not be downloaded "
                f"({type(err).__name__}). On a machine with network run `python -c \"import torchvision; "
                f"torchvision.models.{name}(weights='DEFAULT')\"` and copy {weights.url.rsplit('/', 1)[-1]} "
                f"into {hub}/checkpoints (or set $TORCH_HOME).") from err
    else:
        net = builder(num_classes=num_classes)
    for m in net.modules():  # in-place ReLUs would corrupt recorded activations and hooks
        if isinstance(m, nn.ReLU):
            m.inplace = False
    children = list(net.named_children())
    # torchvision flattens inside forward(); make it a layer so the model is a plain Sequential
    head = {"alexnet": "classifier", "vgg16": "classifier", "resnet18": "fc", "resnet50": "fc"}[name]
    out: OrderedDict[str, nn.Module] = OrderedDict()
    for child_name, child in children:
        if child_name == head:
            out["flatten"] = nn.Flatten()
        out[child_name] = child
    return out


@dataclass(frozen=True)
class ModelSpec:
    """What the book knows about an architecture."""

    builder: Callable[..., OrderedDict[str, nn.Module]] | None
    conv_layers: tuple[str, ...]
    dense_layers: tuple[str, ...]
    #: "small" (MNIST/CIFAR-size images), "any" (flattens any input), "imagenet" (>= 64 px)
    family: str
    torchvision: bool = False

    @property
    def layers(self) -> tuple[str, ...]:
        return self.conv_layers + self.dense_layers

    @property
    def summary(self) -> str:
        """The architecture in a few words: its builder's first docstring sentence, lower-cased, or
        "torchvision's ImageNet network" for those built by torchvision."""
        if self.builder is None or not self.builder.__doc__:
            return "torchvision's ImageNet network"
        first = self.builder.__doc__.strip().split("\n\n")[0].replace("\n", " ")
        first = " ".join(first.split()).rstrip(".")
        return first[:1].lower() + first[1:]


MODELS: dict[str, ModelSpec] = {
    "small_cnn": ModelSpec(small_cnn, ("conv1", "conv2"), ("fc1",), "small"),
    "wide_cnn": ModelSpec(wide_cnn, ("conv1",), ("fc1",), "small"),
    "mlp": ModelSpec(mlp, (), ("fc1", "fc2"), "any"),
    "small_resnet": ModelSpec(small_resnet, ("block1", "block2"), ("fc1",), "small"),
    "vgg_cifar": ModelSpec(vgg_cifar, tuple(f"conv{i}" for i in range(1, 7)), ("fc1",), "small"),
    "resnet20": ModelSpec(resnet20, ("layer1", "layer2", "layer3"), (), "small"),
    "alexnet": ModelSpec(None, ("features.8", "features.11"), ("classifier.5",), "imagenet", True),
    "vgg16": ModelSpec(None, ("features.22", "features.29"), ("classifier.4",), "imagenet", True),
    "resnet18": ModelSpec(None, ("layer3", "layer4"), (), "imagenet", True),
    "resnet50": ModelSpec(None, ("layer3", "layer4"), (), "imagenet", True),
}


MODEL = choice("model", "small_cnn", MODELS, "architecture (see advinterp.models.architectures)")
TORCHVISION_MODELS = tuple(m for m, s in MODELS.items() if s.torchvision)


def check_fits(name: str, value: str, input_shape: tuple[int, int, int], pretrained: bool = False) -> str:
    """``value`` (parameter ``name``) must be a known architecture that fits images of ``input_shape``
    (no model is built)."""
    MODEL.validate(value, name)
    spec = MODELS[value]
    if spec.family == "imagenet" and min(input_shape[1:]) < 64:
        fail(name, value, f"a model for these {input_shape} images: one of "
             f"{[m for m, s in MODELS.items() if s.family != 'imagenet']}")
    if spec.torchvision and input_shape[0] != 3:
        fail(name, value, "a model for grey images (torchvision ImageNet models need 3 channels)")
    if pretrained and not spec.torchvision:
        fail("pretrained", pretrained, f"False for {name}={value!r}: only {', '.join(TORCHVISION_MODELS)} have weights")
    return value


def check_layer(name: str, value: object, model: str) -> str:
    """``value`` (parameter ``name``) must be one of ``model``'s analysed layers (no model is built)."""
    layers = MODELS[model].layers
    if not isinstance(value, str) or value not in layers:
        fail(name, value, f"a named layer of {model}, one of {list(layers)}")
    return value  # type: ignore[return-value]


def build_model(
    name: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    pretrained: bool = False,
) -> nn.Sequential:
    """Build architecture ``name`` for images of ``input_shape`` with ``num_classes`` outputs.

    The result is an ``nn.Sequential`` whose first layer is :class:`Normalize` (ImageNet
    statistics for pretrained torchvision models) and whose children carry the layer names
    of the table above. ``pretrained`` is only meaningful for the torchvision models.
    """
    check_choice("model", name, MODELS)
    spec = MODELS[name]
    if pretrained and not spec.torchvision:
        fail("pretrained", pretrained, f"False for model={name!r} (only alexnet, vgg16, resnet18, resnet50 have weights)")
    if spec.family == "imagenet" and min(input_shape[1:]) < 64:
        fail("model", name, f"an ImageNet-size model needs images of at least 64 px; these are {input_shape}")
    if spec.torchvision:
        if input_shape[0] != 3:
            fail("model", name, f"a torchvision ImageNet model needs 3-channel images, these have {input_shape[0]}")
        if pretrained:
            mean, std = IMAGENET_MEAN, IMAGENET_STD
        body = _torchvision(name, num_classes, pretrained)
    else:
        assert spec.builder is not None
        body = spec.builder(input_shape, num_classes)
    model = nn.Sequential(OrderedDict(normalize=Normalize(mean, std), **body))
    return model.to(memory_format=torch.channels_last)


def analysed_layers(name: str, which: str = "deepest") -> list[str]:
    """The layers chapters dissect by default: ``"deepest"`` = the deepest conv layer and the first
    dense hidden layer (Dong et al.'s choice at small scale); ``"all"`` = every analysed layer."""
    check_choice("model", name, MODELS)
    spec = MODELS[name]
    if which == "deepest":
        return [*spec.conv_layers[-1:], *spec.dense_layers[:1]]
    check_choice("which", which, ("deepest", "all"))
    return list(spec.layers)
