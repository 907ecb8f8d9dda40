"""One module per chapter study. Each declares its chapter's parameters (``CHAPTER``), checks them
without loading data (``validate``), loads the data and checks what depends on it (``setup``), runs
the study over the chapter's seeds (``run``) and summarises it into the metrics whose names it owns
(``summarize``), plus the verdict words its prose glues (``verdicts``).

==============================  =====================  ==========================================
chapter                         study                  what it runs
==============================  =====================  ==========================================
01-adversarial-examples         ``transfer``           attacks, success curves, ensemble transfer
02-neurons-and-patches          ``neurons``            top-K images, patches, target agreement
03-neuron-consistency           ``consistency``        consis(n), representation consistency
04-consistent-loss              ``consistent_loss``    standard vs AT vs consistent-loss training
05-tracing-and-detection        ``tracing``            influential neurons, agreement detector
06-error-detection              ``wrong_predictions``  conductance + mutation wrong-prediction detectors
07-sensitivity-regularization   ``interpretability``   attribution metrics of every training method
08-side-by-side                 ``side_by_side``       every method in one table, from a sweep
==============================  =====================  ==========================================

``setting`` holds what chapters share: the :class:`~advinterp.studies.setting.Experiment` of one
seed, the shared parameter declarations and the chapters' ``validate`` / ``setup``; ``variants``
holds what chapters 4, 5 and 7 share (the trained model variants and their evaluation).
:data:`STUDIES` is the one registry of chapters.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from ..core.params import Chapter

STUDIES: dict[str, str] = {
    "01-adversarial-examples": "transfer",
    "02-neurons-and-patches": "neurons",
    "03-neuron-consistency": "consistency",
    "04-consistent-loss": "consistent_loss",
    "05-tracing-and-detection": "tracing",
    "06-error-detection": "wrong_predictions",
    "07-sensitivity-regularization": "interpretability",
    "08-side-by-side": "side_by_side",
}


def study(stem: str) -> ModuleType:
    """The study module of chapter ``stem``."""
    if stem not in STUDIES:
        raise KeyError(f"no study for chapter {stem!r}; known: {sorted(STUDIES)}")
    return import_module(f"{__name__}.{STUDIES[stem]}")


def chapter(stem: str) -> Chapter:
    """The parameter declaration of chapter ``stem``."""
    return study(stem).CHAPTER  # type: ignore[no-any-return]


def declared_names() -> dict[str, tuple[str, ...]]:
    """Every chapter's declared parameter names, by stem."""
    return {stem: chapter(stem).names for stem in STUDIES}
