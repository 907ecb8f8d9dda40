"""One module per chapter study, each keeping one written contract, :class:`Study`: it declares its
chapter's parameters (``CHAPTER``) and the papers' claims it decides (``CLAIMS``), checks the
parameters without loading data (``validate``: :func:`default_validate` unless a chapter needs
more), loads the data and checks what depends on it (``setup``), runs the study over the chapter's
seeds (``run``), summarises it into the metrics whose names it owns (``summarize``) and gives the
verdict words its prose glues (``verdicts``). A chapter notebook ends with one call,
:func:`advinterp.studies.ending.conclude`, which publishes the results and shows the claims' findings.
No chapter study imports another: what several share lives in ``setting`` (the experiment of one
seed, shared parameters), ``variants`` (trained model variants, chapters 4, 5 and 7) and ``dissect``
(layer-by-layer dissection, chapters 2 and 3); chapter 8 reads the other chapters' results through
the columns each study exports (``SIDE_BY_SIDE``) and :func:`study`.

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
seed, the shared parameter declarations and ``setup``; ``variants`` holds what chapters 4, 5 and 7
share (the trained model variants and their evaluation); ``dissect`` what chapters 2 and 3 share (and
Dong et al.'s settings, which chapters 2-5 show).
:data:`STUDIES` is the one registry of chapters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..core.params import Chapter, ChapterParams, check_unknown, injected_parameters

if TYPE_CHECKING:
    from ..report.settings import Setting
    from ..report.claims import Claim

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


@runtime_checkable
class Study(Protocol):
    """The contract of a chapter study (a module; typing checks modules against protocols, PEP 544).

    ``setup`` returns the chapter's set-up (data, models to load, checked relations), ``run`` its
    result over every seed; both are the study's own types. ``summarize`` returns plain metrics (JSON
    numbers and strings; ``<name>_per_seed`` for every effect a claim reads) and ``verdicts`` the
    words the prose glues. ``CLAIMS`` is empty for a chapter that decides none (chapter 8), and so is
    ``SETTINGS`` (:class:`advinterp.report.settings.Setting`) for a chapter that reproduces no paper's run."""

    CHAPTER: Chapter
    CLAIMS: tuple[Claim, ...]
    #: the settings that matter to the claims, beside the paper's (the page's "what ran" table)
    SETTINGS: tuple[Setting, ...]

    def validate(self, namespace: Mapping[str, Any]) -> ChapterParams: ...

    def setup(self, P: ChapterParams) -> Any: ...

    def run(self, setup: Any) -> Any: ...

    def summarize(self, result: Any, setup: Any) -> dict[str, Any]: ...

    def verdicts(self, result: Any, setup: Any, metrics: dict[str, Any]) -> dict[str, str]: ...


@dataclass(frozen=True)
class SideBySide:
    """What chapter 8 reads of one chapter's results (a row of a sweep's table per run), under the
    names the chapter's own study gives them; a study exports it as ``SIDE_BY_SIDE``.

    ``cells``: chapter 8's column -> {method alias: metric name}; ``curve``: the rows of a curve one
    run's metrics hold (chapter 4: every measure against lambda; a missing metric raises KeyError
    with its name); ``across_eps``: measures chapter 8 reads across the sweep's runs against eps
    (chapter 3); ``values``: scalars of the run chapter 8 reports (e.g. ``lambda_cl``)."""

    cells: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    curve: Callable[[Mapping[str, Any]], list[dict[str, Any]]] | None = None
    across_eps: tuple[str, ...] = ()
    values: tuple[str, ...] = ()


def default_validate(chapter: Chapter) -> Callable[[Mapping[str, Any]], ChapterParams]:
    """The ``validate`` of a study: every parameter of ``chapter`` read from a notebook's ``globals()``
    and checked, after :func:`advinterp.core.params.check_unknown` on the names papermill injected
    (a name no chapter declares stops it, with the closest declared names); no data loaded, no model
    built."""
    def validate(namespace: Mapping[str, Any]) -> ChapterParams:
        check_unknown(chapter, injected_parameters(namespace), declared_names())
        return chapter.validate(namespace)

    validate.__doc__ = f"Check every parameter of chapter {chapter.stem} (no data loaded, no model built)."
    return validate


def study(stem: str) -> ModuleType:
    """The study module of chapter ``stem``."""
    if stem not in STUDIES:
        raise KeyError(f"no study for chapter {stem!r}; known: {sorted(STUDIES)}")
    return import_module(f"{__name__}.{STUDIES[stem]}")


def studies() -> dict[str, Study]:
    """Every chapter's study, by stem, in chapter order."""
    return {stem: study(stem) for stem in STUDIES}  # type: ignore[misc]


def exports() -> dict[str, SideBySide]:
    """What chapter 8 reads of each chapter that exports it (``SIDE_BY_SIDE``), by stem, in order."""
    return {stem: s.SIDE_BY_SIDE for stem, s in studies().items() if hasattr(s, "SIDE_BY_SIDE")}


def declared_claims() -> dict[str, tuple[Claim, ...]]:
    """Every chapter's claims (its study's ``CLAIMS``), by stem, in chapter order."""
    return {stem: s.CLAIMS for stem, s in studies().items()}


def chapter(stem: str) -> Chapter:
    """The parameter declaration of chapter ``stem``."""
    return study(stem).CHAPTER  # type: ignore[no-any-return]


def declared_names() -> dict[str, tuple[str, ...]]:
    """Every chapter's declared parameter names, by stem."""
    return {stem: chapter(stem).names for stem in STUDIES}
