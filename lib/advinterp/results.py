"""Results JSON and glued numbers (the *Results* contract).

Each chapter writes ``<results_dir>/<chapter>.json`` as
``{"chapter": ..., "params": {...}, "metrics": {...}}`` with plain floats, ints and strings,
and glues every number it quotes in prose with myst-nb, so no number in the text is typed by
hand.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import paths
from .cache import atomic_write_text


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


def write_results(chapter: str, params: Mapping[str, Any], metrics: Mapping[str, Any],
                  results_dir: str | Path = "results") -> Path:
    """Write ``<results_dir>/<chapter>.json`` atomically and return its path."""
    folder = paths.resolve_results_dir(results_dir)
    path = folder / f"{chapter}.json"
    payload = {"chapter": chapter, "params": plain(dict(params)), "metrics": plain(dict(metrics))}
    atomic_write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", path)
    return path


def read_results(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value), NaNs ignored."""
    arr = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if arr.size == 0:
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def with_spread(per_seed: Mapping[str, Iterable[float]]) -> dict[str, float]:
    """``{"m": [v_seed0, v_seed1, ...]}`` -> ``{"m": mean, "m_std": std}``."""
    out: dict[str, float] = {}
    for name, values in per_seed.items():
        out[name], out[f"{name}_std"] = mean_std(values)
    return out


def glue_all(metrics: Mapping[str, Any], prefix: str = "") -> None:
    """Glue every metric (``display=False``) so the prose can cite it as ``{glue:text}`name```."""
    from myst_nb import glue

    for name, value in metrics.items():
        glue(prefix + name, plain(value), display=False)


def compare(a: float, b: float, *, tol: float = 0.0, higher: str = "higher than", lower: str = "lower than",
            same: str = "the same as") -> str:
    """The word for how ``a`` relates to ``b`` (for glued prose whose verdict follows the numbers)."""
    if abs(a - b) <= tol:
        return same
    return higher if a > b else lower


def glue_words(name: str, text: str) -> None:
    """Glue a piece of prose (cite it as ``{glue:md}`name```), e.g. a verdict from :func:`compare`."""
    from IPython.display import Markdown
    from myst_nb import glue

    glue(name, Markdown(text), display=False)
