"""Results JSON and glued numbers (the *Results* contract).

Each chapter writes ``<results_dir>/<chapter>.json`` as
``{"chapter": ..., "params": {...}, "metrics": {...}}`` with plain floats, ints and strings,
and glues every number it quotes in prose with myst-nb, so no number in the text is typed by
hand.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core import paths
from ..core.cache import atomic_write_text, library_version, notebook_digest
from ..core.params import Chapter

if TYPE_CHECKING:
    import pandas as pd


def plain(value: Any) -> Any:
    """Convert numpy / torch scalars and containers to JSON-native values."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    raise TypeError(f"cannot write {type(value).__name__} {value!r} to a results file")


def write_results(chapter: Chapter | str, params: Mapping[str, Any], metrics: Mapping[str, Any],
                  results_dir: str | Path = "results", seconds: Mapping[str, float] | None = None) -> Path:
    """Write ``<results_dir>/<stem>.json`` atomically and return its path. Besides the parameters and
    metrics it records which parameters differ from the chapter's declared defaults (``overrides``;
    None for a chapter given by its stem only, without a declaration) and the versions of the
    notebook and the library that made it (``provenance``), so a sweep can reuse a default run made by
    the current code instead of repeating it. ``seconds``: what the study spent on each seed (and on
    work of its own), kept beside the provenance for a recorded tier's cost."""
    stem = chapter if isinstance(chapter, str) else chapter.stem
    folder = paths.resolve_results_dir(results_dir)
    path = folder / f"{stem}.json"
    notebook = paths.book_dir() / f"{stem}.ipynb"
    payload = {"chapter": stem, "params": plain(dict(params)), "metrics": plain(dict(metrics)),
               "overrides": None if isinstance(chapter, str) else plain(chapter.overrides(params)),
               "provenance": {"notebook": notebook_digest(stem) if notebook.is_file() else None,
                              "library": library_version()},
               "seconds": {str(k): round(float(v), 1) for k, v in (seconds or {}).items()}}
    atomic_write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", path)
    return path


def publish(chapter: Chapter | str, params: Mapping[str, Any], metrics: Mapping[str, Any], words: Mapping[str, str],
            results_dir: str | Path = "results", seconds: Mapping[str, float] | None = None) -> Path:
    """The end of every chapter: write its results file (with each seed's ``seconds``), glue every
    scalar metric and every verdict word for the prose, and return the file's path."""
    path = write_results(chapter, params, metrics, results_dir, seconds)
    glue_all({k: v for k, v in metrics.items() if not isinstance(v, list | tuple)})
    glue_all(param_words(params), prefix="param_")
    glue_words_all(words)
    return path


def param_words(params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters a chapter's prose may cite as ``{glue:text}`param_<name>```: scalars as they are,
    lists joined by ", " (so a page states the setting that ran, never a typed one)."""
    return {k: ", ".join(map(str, v)) if isinstance(v, list | tuple) else v for k, v in params.items()
            if not isinstance(v, dict)}


def read_results(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1), NaNs ignored. A single value has no spread:
    its std is NaN (written as ``null`` to the results JSON), not 0."""
    arr = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if arr.size == 0:
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else float("nan")


def with_spread(per_seed: Mapping[str, Iterable[float]]) -> dict[str, Any]:
    """``{"m": [v_seed0, v_seed1, ...]}`` -> ``{"m": mean, "m_std": std, "m_per_seed": [v_seed0, ...]}``
    (values in the chapter's seed order; the results file lists the seeds once, in ``params``)."""
    out: dict[str, Any] = {}
    for name, values in per_seed.items():
        values = [float(v) for v in values]
        out[name], out[f"{name}_std"] = mean_std(values)
        out[f"{name}_per_seed"] = values
    return out


def aggregate_seed_runs(per_run: Sequence[Mapping[str, Any]], *, spread_all: bool = False
                        ) -> tuple[dict[str, Any], list[str]]:
    """The metrics a chapter would have reported for all seeds at once, from its single-seed runs
    (in seed order): every per-seed list ``m_per_seed`` is the runs' lists concatenated (so the
    verdicts' intervals see every seed); every ``m`` with a spread ``m_std`` becomes the mean and
    sample std (ddof = 1, :func:`mean_std`) of those per-seed values (or of the runs' ``m``); a
    metric without a spread is kept when every run agrees on it, else left out (it was pooled over
    seeds inside the chapter, or is a combined interval that the per-seed lists decide). Returns the
    metrics and the names left out. ``spread_all``: the runs are of a chapter with one ``seed``
    parameter (chapter 1), whose every numeric metric is that seed's value: each one that differs
    between runs gets a mean and std. Used by a sweep's table (:mod:`advinterp.sweeps.table`) and
    by a recorded sweep (:func:`advinterp.report.recorded.record_sweep`)."""
    names = list(dict.fromkeys(k for m in per_run for k in m))
    out: dict[str, Any] = {}
    left_out = []
    for name in names:
        values = [m.get(name) for m in per_run]
        if name.endswith("_per_seed"):
            out[name] = [v for run in values for v in (run if isinstance(run, list) else [run])]
            continue
        differs = any(v != values[0] for v in values)
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if f"{name}_std" in names or (spread_all and differs and numeric):
            seeds = [v for m in per_run for v in (m.get(f"{name}_per_seed") or [m.get(name)])]
            out[name], out[f"{name}_std"] = mean_std(v for v in seeds if isinstance(v, int | float))
        elif name.endswith("_std") and name[:-4] in names:
            continue
        elif all(v == values[0] for v in values):
            out[name] = values[0]
        else:
            left_out.append(name)
    return out, left_out


def glue_all(metrics: Mapping[str, Any], prefix: str = "") -> None:
    """Glue every metric (``display=False``) so the prose can cite it as ``{glue:text}`name```."""
    from myst_nb import glue

    for name, value in metrics.items():
        value = plain(value)
        glue(prefix + name, float("nan") if value is None else value, display=False)  # "nan" in prose, not an error


def glue_words_all(words: Mapping[str, str]) -> None:
    """:func:`glue_words` for every ``name -> text`` (a study's verdicts)."""
    for name, text in words.items():
        glue_words(name, text)


def glue_words(name: str, text: str) -> None:
    """Glue a piece of prose (cite it as ``{glue:md}`name```), e.g. a verdict decided by an interval."""
    from IPython.display import Markdown
    from myst_nb import glue

    glue(name, Markdown(text), display=False)


def layer_summary(by_layer: "pd.DataFrame", columns: Mapping[str, str]) -> str:
    """A sentence fragment per layer: ``"conv2: target 14.8 %, true 17.0 %"`` (columns maps a
    column of ``by_layer`` to the word printed before its value, formatted as a percentage)."""
    parts = []
    for layer, row in by_layer.iterrows():
        values = ", ".join(f"{word} {100 * float(row[col]):.1f} %" for col, word in columns.items())
        parts.append(f"`{layer}`: {values}")
    return "; ".join(parts)


def format_mean_std(mean: float, std: float | None, digits: int = 3) -> str:
    """``"0.551 ± 0.029"``, or ``"0.551 (n = 1)"`` when there is no spread (one seed)."""
    if std is None or math.isnan(float(std)):
        return f"{mean:.{digits}f} (n = 1)"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def mean_std_table(table: "pd.DataFrame", by: str, columns: list[str]) -> "pd.DataFrame":
    """``mean ± std`` strings per group (std over the rows of a group, i.e. over seeds; ``n = 1``
    for a group of one row)."""
    g = table.groupby(by, sort=False)[columns]
    mean, std = g.mean(), g.std()
    out = mean.copy().astype(object)
    for col in columns:
        out[col] = [format_mean_std(m, s) for m, s in zip(mean[col], std[col])]
    return out


def method_metrics(table: "pd.DataFrame", methods: Mapping[str, str], columns: list[str],
                   by: str = "method") -> dict[str, float]:
    """``{column}_{alias}`` and ``{column}_{alias}_std`` for each ``alias -> value of column by``
    of ``table`` (one row per seed and value)."""
    out: dict[str, float] = {}
    for alias, method in methods.items():
        rows = table[table[by] == method]
        out.update(with_spread({f"{c}_{alias}": rows[c].tolist() for c in columns}))
    return out
