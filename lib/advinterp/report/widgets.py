"""The interactive neuron browser of chapter 2 (ipywidgets; live notebooks only).

The rendered book cannot run Python, so it shows the static galleries instead; in Jupyter,
:func:`neuron_browser` lets a reader pick a layer and a neuron and toggle real / adversarial
top images and patch overlays.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import torch
from torch import nn

from ..attacks.advdata import AdversarialSet
from ..interpret.dissection import Dissection, neuron_gallery_rows


def neuron_browser(model: nn.Module, diss: Dissection, adv: AdversarialSet, target: torch.Tensor,
                   classes: Sequence[str], k_show: int = 8):  # -> ipywidgets.Widget
    """A widget: layer dropdown, neuron slider, real/adversarial toggle, patch checkbox.

    The gallery is drawn into an ``Image`` widget (PNG bytes), not captured by an ``Output`` widget:
    executing a notebook headless (nbclient: papermill, Jupyter Book) intermittently stalls for its
    whole cell timeout on an ``Output`` widget's captured display (jupyter/nbclient#312,
    jupyter/nbconvert#1921), and an image needs no capture at all."""
    import ipywidgets as w

    layers = list(diss.real)
    layer = w.Dropdown(options=layers, description="layer")
    neuron = w.IntSlider(0, 0, diss.real[layers[0]].n_neurons - 1, description="neuron")
    which = w.ToggleButtons(options=["both", "real", "adversarial"], description="probes")
    patches = w.Checkbox(True, description="patches")
    image = w.Image(format="png")

    def redraw(*_: object) -> None:
        neuron.max = diss.real[layer.value].n_neurons - 1
        kinds = ("real", "adversarial") if which.value == "both" else (which.value,)
        rows = neuron_gallery_rows(model, diss, adv, target, layer.value, neuron.value, classes, k_show,
                                   which=kinds, patches=patches.value)
        image.value = gallery_png(rows, classes, k_show)

    for control in (layer, neuron, which, patches):
        control.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox([layer, neuron]), w.HBox([which, patches]), image])


def gallery_png(rows: Sequence, classes: Sequence[str], k_show: int) -> bytes:
    """The neuron gallery of ``rows`` (:func:`advinterp.report.figures.galleries.neuron_rows`) as PNG bytes."""
    import matplotlib.pyplot as plt

    from .figures.galleries import neuron_rows

    fig = neuron_rows(rows, classes, k_show)
    try:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()
    finally:
        plt.close(fig)
