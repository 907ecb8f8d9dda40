"""Prediction difference: how much each neuron of a layer contributes to a prediction.

After Zintgraf et al. (2017), as Dong et al. use it to trace predictions (version A, sec. 6;
our reading): for image x with prediction y_hat and neuron n of a layer,

``PD_n(x) = p(y_hat | x) - p(y_hat | x, a_n <- b_n)``

where the neuron's activation (a whole channel map for a conv layer) is replaced by a baseline
``b_n``: zero, or its mean over a reference set. The log-odds form is
``log2 odds p(y_hat|x) - log2 odds p(y_hat|x, a_n <- b_n)``. A large positive PD means the
prediction relies on the neuron.

All neurons of a layer are evaluated at once: a forward hook replaces the layer's output
``(B, N, ...)`` by ``B x chunk`` copies, each with one neuron ablated, so the layers before it
run once per image and the layers after it see a larger batch. The layer must feed the rest of
the network only through its output (true for every layer in :data:`advinterp.models.architectures.MODELS`'
analysed lists; not for a layer inside a residual block).
"""

from __future__ import annotations

import torch
from torch import nn

from ..core._helpers import chunks, eval_mode, model_device
from ..core.params import choice
from ..models.layers import activations, get_layer


BASELINE = choice("baseline", "zero", ("zero", "mean"), "replacement of an ablated neuron: zero | mean")


def baseline_values(model: nn.Module, x_ref: torch.Tensor, layer: str, kind: str = "zero") -> torch.Tensor:
    """The per-neuron replacement: zeros, or the mean activation (map) over ``x_ref``: shape of
    one image's layer output."""
    BASELINE.validate(kind)
    act = activations(model, x_ref[:1] if kind == "zero" else x_ref, [layer])[layer]
    return torch.zeros_like(act[0]) if kind == "zero" else act.mean(0)


def _log_odds(p: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    p = p.clamp(eps, 1 - eps)
    return torch.log2(p / (1 - p))


@torch.no_grad()
def prediction_difference(
    model: nn.Module,
    x: torch.Tensor,
    layer: str,
    baseline: torch.Tensor,
    *,
    target: torch.Tensor | None = None,
    log_odds: bool = False,
    chunk: int = 64,
    batch_size: int = 32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PD of every neuron of ``layer`` for every image: returns ``(pd (N_images, n_neurons),
    target)``; ``target`` defaults to the model's prediction ``y_hat``. Eval mode, restored."""
    device = model_device(model)
    module = get_layer(model, layer)
    base = baseline.to(device)
    n_neurons = base.shape[0]
    state: dict[str, int] = {}

    def hook(_m: nn.Module, _i: object, out: torch.Tensor) -> torch.Tensor:
        lo, hi = state["lo"], state["hi"]
        k = hi - lo
        rep = out.unsqueeze(1).repeat(1, k, *([1] * (out.ndim - 1)))  # (B, k, N, ...)
        idx = torch.arange(k, device=out.device)
        rep[:, idx, lo + idx] = base[lo:hi].unsqueeze(0).to(out.dtype)
        return rep.reshape(-1, *out.shape[1:])

    rows, targets = [], []
    with eval_mode(model):
        for part in chunks(len(x), batch_size):
            xb = x[part].to(device)
            p = torch.softmax(model(xb).float(), 1)
            t = p.argmax(1) if target is None else target[part].to(device)
            p_t = p.gather(1, t.view(-1, 1)).squeeze(1)
            parts = []
            handle = module.register_forward_hook(hook)
            try:
                for lo in range(0, n_neurons, chunk):
                    state["lo"], state["hi"] = lo, min(n_neurons, lo + chunk)
                    k = state["hi"] - lo
                    q = torch.softmax(model(xb).float(), 1).view(len(xb), k, -1)
                    parts.append(q.gather(2, t.view(-1, 1, 1).expand(-1, k, 1)).squeeze(2))
            finally:
                handle.remove()
            q_t = torch.cat(parts, 1)
            pd = (_log_odds(p_t).unsqueeze(1) - _log_odds(q_t)) if log_odds else (p_t.unsqueeze(1) - q_t)
            rows.append(pd.cpu())
            targets.append(t.cpu())
    return torch.cat(rows), torch.cat(targets)


def top_influential(pd: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` neurons with the largest PD per image: ``(values, indices)``, each ``(N, k)``."""
    return pd.topk(min(k, pd.shape[1]), dim=1)
