"""The interactive neuron browser of chapter 2 (ipywidgets; live notebooks only).

The rendered book cannot run Python, so it shows the static galleries instead; in Jupyter,
:func:`neuron_browser` lets a reader pick a layer and a neuron and toggle real / adversarial
top images and patch overlays.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..attacks.advdata import AdversarialSet
from ..interpret.dissection import Dissection, neuron_gallery_rows


def neuron_browser(model: nn.Module, diss: Dissection, adv: AdversarialSet, target: torch.Tensor,
                   classes: Sequence[str], k_show: int = 8):  # -> ipywidgets.Widget
    """A widget: layer dropdown, neuron slider, real/adversarial toggle, patch checkbox."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    from .figures.galleries import neuron_rows

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
