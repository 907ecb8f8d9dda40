"""The end of every chapter notebook, one call: :func:`conclude` publishes the study's results (the
results file, every scalar metric and verdict word glued for the prose) and shows the chapter's
"At scale" section, its claims decided on this page's results and in every recorded tier
(:func:`advinterp.report.claims.at_scale`), with the tiers' key figures; before it, the settings
that ran on this page and in each tier beside the paper's (:mod:`advinterp.report.settings`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..report import recorded, results, settings
from ..report.tables import Table
from ..report import claims
from . import STUDIES, Study
from . import study as study_of


@dataclass(frozen=True)
class Conclusion:
    """What :func:`conclude` wrote and showed."""

    path: Path                                  # the results file
    metrics: dict[str, Any]                     # the study's summary (what the file holds)
    scale: claims.ScaleSection | None         # the "At scale" table and words (None: no claims)
    n_recorded_figures: int                     # recorded tiers' figures shown


def setting_runs(stem: str, params: dict[str, Any], folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """The runs a chapter's settings table compares: this page's parameters, then each recorded tier's
    (under the tier's name; a tier that has not run the chapter is left out)."""
    runs = {"this page": params}
    for tier, label in recorded.TIERS.items():
        record, _ = recorded.scale_record(stem, tier, folder)
        if record is not None:
            runs[label] = record.params
    return runs


def tier_frame(run: str, folder: Path | None = None) -> pd.DataFrame:
    """Every chapter of recorded run ``run``: each setting its study declares (``SETTINGS``), the paper's
    value and the run's, worded from the parameters of the record the chapter's pages read
    (:func:`advinterp.report.recorded.load`: its per-seed runs when the tier was recorded in stretches),
    with whether that record is current or stale (:func:`advinterp.report.recorded.record_state`, on the
    chapter's first row); one row per chapter and setting, none for a chapter that reproduces no paper's run."""
    frames = []
    for stem in recorded.run_chapters(run, folder):
        if stem in STUDIES and study_of(stem).SETTINGS:
            record = recorded.load(run, stem, folder)
            frame = settings.settings_frame(study_of(stem).SETTINGS, {"recorded": record.params})
            state = [recorded.record_state(record, folder)] + [""] * (len(frame) - 1)  # on the chapter's first row
            frames.append(frame.assign(chapter=recorded.chapter_number(stem), record=state))
    columns = ["chapter", "record", "setting", settings.PAPER, "recorded"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def tier_settings(run: str, folder: Path | None = None) -> Table:
    """:func:`tier_frame` for display: what a recorded tier ran beside what the papers ran."""
    return Table(tier_frame(run, folder), font_size="0.85em")


def conclude(study: Study, result: Any, setup: Any, results_dir: str | Path = "results", *,
             show: bool = True) -> Conclusion:
    """Summarise ``result`` (``study.summarize``), publish it with the study's verdict words
    (:func:`advinterp.report.results.publish`), then decide ``study.CLAIMS`` on the file just written
    and in each recorded tier, glue the section's words (``scale_summary``) and, with ``show``,
    display its table and the tiers' figures (in a notebook). A study without claims (chapter 8)
    only publishes."""
    metrics = study.summarize(result, setup)
    path = results.publish(study.CHAPTER, setup.P.public(), metrics, study.verdicts(result, setup, metrics),
                           results_dir, getattr(setup, "seconds", None))
    if not study.CLAIMS:
        return Conclusion(path, metrics, None, 0)
    scale = claims.at_scale(study.CLAIMS, claims.observations(results.read_results(path)))
    results.glue_words_all(scale.words)
    shown = 0
    if show:
        from IPython.display import display

        display(settings.settings_table(study.SETTINGS, setting_runs(study.CHAPTER.stem, setup.P.public())))
        display(claims.styled(scale.table))
        shown = recorded.show_figures(study.CHAPTER.stem)
    return Conclusion(path, metrics, scale, shown)
