"""Recording (and editing) any named layer without changing the model (forward hooks).

A "neuron" in this book is one channel of a conv layer's output (a map ``(H, W)``) or one unit
of a dense layer's output, after the layer's ReLU (see :mod:`advinterp.models.architectures`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from ..core._helpers import chunks, eval_mode, model_device
from ..core.params import choice
from ..core.validation import fail

STATISTIC = choice("statistic", "max", ("max", "mean"), "a conv channel's activation on an image: spatial max | mean")


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """The sub-module called ``name``; a ``ValueError`` lists the valid names otherwise."""
    if not isinstance(name, str):
        fail("layer", name, "a layer name (string)")
    try:
        return model.get_submodule(name)
    except AttributeError:
        top = [n for n, _ in model.named_children()]
        fail("layer", name, f"a named layer of this model, e.g. one of {top}")
        raise


@contextmanager
def recording(model: nn.Module, layers: Sequence[str], *, detach: bool = True) -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, each forward pass stores the output of every layer in ``layers``.

    >>> with recording(model, ["conv2", "fc1"]) as acts:
    ...     logits = model(x)
    >>> acts["conv2"].shape  # (N, C, H, W)
    """
    store: dict[str, torch.Tensor] = {}
    handles = []
    for name in layers:
        module = get_layer(model, name)

        def hook(_m: nn.Module, _i: object, out: torch.Tensor, name: str = name) -> None:
            store[name] = out.detach() if detach else out

        handles.append(module.register_forward_hook(hook))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


@contextmanager
def editing(model: nn.Module, layer: str, fn: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Within the block, the output of ``layer`` is replaced by ``fn(output)`` on every forward."""
    module = get_layer(model, layer)
    handle = module.register_forward_hook(lambda _m, _i, out: fn(out))
    try:
        yield
    finally:
        handle.remove()


@torch.no_grad()
def activations(
    model: nn.Module,
    x: torch.Tensor,
    layers: Sequence[str],
    *,
    batch_size: int = 256,
    with_logits: bool = False,
) -> dict[str, torch.Tensor]:
    """Outputs of ``layers`` (and ``"logits"`` if asked) for all of ``x``, batched, on CPU.

    The model's train/eval mode is left as found; it runs in eval mode.
    """
    device = model_device(model)
    out: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    if with_logits:
        out["logits"] = []
    with eval_mode(model), recording(model, layers) as acts:
        for part in chunks(len(x), batch_size):
            logits = model(x[part].to(device))
            for name in layers:
                out[name].append(acts[name].cpu())
            if with_logits:
                out["logits"].append(logits.cpu())
    return {k: torch.cat(v) for k, v in out.items()}


def neuron_values(act: torch.Tensor, statistic: str = "max") -> torch.Tensor:
    """One number per neuron and image: a conv map reduced by spatial ``max`` or ``mean``;
    a dense unit's value as is. Returns ``(N, n_neurons)``."""
    if act.ndim == 2:
        return act
    if act.ndim != 4:
        raise ValueError(f"expected a dense (N, D) or conv (N, C, H, W) activation, got {tuple(act.shape)}")
    STATISTIC.validate(statistic)
    return act.amax(dim=(2, 3)) if statistic == "max" else act.mean(dim=(2, 3))


@torch.no_grad()
def neuron_matrix(model: nn.Module, x: torch.Tensor, layers: Sequence[str], *, statistic: str = "max",
                  batch_size: int = 256) -> dict[str, torch.Tensor]:
    """``(images, neurons)`` per layer: every neuron's value on every image of ``x``
    (:func:`neuron_values`, reduced batch by batch so conv maps are never all held), on CPU."""
    STATISTIC.validate(statistic)
    device = model_device(model)
    out: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    with eval_mode(model), recording(model, layers) as acts:
        for part in chunks(len(x), batch_size):
            model(x[part].to(device))
            for name in layers:
                out[name].append(neuron_values(acts[name].float(), statistic).cpu())
    return {k: torch.cat(v) for k, v in out.items()}


@torch.no_grad()
def dead_units(model: nn.Module, x: torch.Tensor, layer: str, batch_size: int = 512) -> int:
    """Number of units (channels) of ``layer`` that never fire (> 0) on any image of ``x``."""
    act = activations(model, x, [layer], batch_size=batch_size)[layer]
    return int((neuron_values(act, "max").amax(0) <= 0).sum())


def weight_norms(model: nn.Module, layer: str) -> tuple[float, float]:
    """L2 norms of the weights of ``layer`` and of the next top-level layer with weights (e.g. fc1 and
    logits): a rescaling of a ReLU layer by c and the next by 1/c shows here and nowhere else."""
    children = [name for name, _ in model.named_children()]
    top = layer.split(".")[0]
    if top not in children:
        fail("layer", layer, f"a layer of this model, one of {children}")

    def norm(module: nn.Module) -> float:
        ws = [p for n, p in module.named_parameters() if n.endswith("weight") and p.ndim > 1]
        return float(torch.sqrt(sum((w.detach().float() ** 2).sum() for w in ws))) if ws else float("nan")

    after = [getattr(model, n) for n in children[children.index(top) + 1:]]
    nxt = next((m for m in after if any(p.ndim > 1 for p in m.parameters())), None)
    return norm(get_layer(model, layer)), norm(nxt) if nxt is not None else float("nan")
