"""The interactive neuron browser of chapter 2 (ipywidgets; live notebooks only).

The rendered book cannot run Python, so it shows the static galleries instead; in Jupyter,
:func:`neuron_browser` lets a reader pick a layer and a neuron and toggle real / adversarial
top images and patch overlays.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .advdata import AdversarialSet
from .dissection import Dissection


def neuron_gallery_rows(model: nn.Module, diss: Dissection, adv: AdversarialSet, target: torch.Tensor, layer: str,
                        neuron: int, classes: Sequence[str], k_show: int, *, which: Sequence[str] = ("real", "adversarial"),
                        patches: bool = True) -> list[dict[str, object]]:
    """Rows for :func:`advinterp.plotting.neuron_rows`: the neuron's top real images (with patch
    masks for conv layers) and its top adversarial images titled ``true -> target``."""
    from .patches import neuron_patches

    rows: list[dict[str, object]] = []
    for kind in which:
        top = (diss.real if kind == "real" else diss.adversarial)[layer]
        idx = top.indices[neuron, :k_show]
        images = adv.x[idx] if kind == "real" else adv.x_adv[idx]
        masks = None
        if patches and top.spatial:
            masks = neuron_patches(model, images, layer, torch.full((len(idx),), neuron),
                                   top.threshold[neuron].expand(len(idx)))
        if kind == "real":
            titles = [classes[int(adv.y[i])] for i in idx]
        else:
            titles = [f"{classes[int(adv.y[i])]}→{classes[int(target[i])]}" for i in idx]
        rows.append({"images": images, "masks": masks, "titles": titles, "label": f"{layer} #{neuron}\n{kind}"})
    return rows


def neuron_browser(model: nn.Module, diss: Dissection, adv: AdversarialSet, target: torch.Tensor,
                   classes: Sequence[str], k_show: int = 8):  # -> ipywidgets.Widget
    """A widget: layer dropdown, neuron slider, real/adversarial toggle, patch checkbox."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    from .plotting import neuron_rows

    layers = list(diss.real)
    layer = w.Dropdown(options=layers, description="layer")
    neuron = w.IntSlider(0, 0, diss.real[layers[0]].n_neurons - 1, description="neuron")
    which = w.ToggleButtons(options=["both", "real", "adversarial"], description="probes")
    patches = w.Checkbox(True, description="patches")
    out = w.Output()

    def redraw(*_: object) -> None:
        neuron.max = diss.real[layer.value].n_neurons - 1
        kinds = ("real", "adversarial") if which.value == "both" else (which.value,)
        rows = neuron_gallery_rows(model, diss, adv, target, layer.value, neuron.value, classes, k_show,
                                   which=kinds, patches=patches.value)
        out.clear_output(wait=True)
        with out:
            fig = neuron_rows(rows, classes, k_show)
            display(fig)
            plt.close(fig)

    for control in (layer, neuron, which, patches):
        control.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox([layer, neuron]), w.HBox([which, patches]), out])
