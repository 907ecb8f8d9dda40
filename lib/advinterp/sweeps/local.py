"""The local engine of the sweep runner: one run after another in this process
(``python -m advinterp.sweep SPEC``, the default ``--engine local``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core import progress
from .runs import execute
from .spec import Run


def execute_all(runs: list[Run], root: Path, *, name: str, notebooks: Path | None = None,
                progress_bar: bool = True) -> list[dict[str, Any]]:
    """Execute ``runs`` in order (:func:`advinterp.sweeps.runs.execute`) under a progress bar named
    after sweep ``name``; returns their statuses in the order given."""
    bar = progress.bar(runs, desc=f"sweep {name}", disable=not progress_bar)
    statuses = []
    for run in bar:
        bar.set_postfix_str(f"{run.chapter} {run.run_id[:30]}")
        statuses.append(execute(run, root, notebooks=notebooks))
    return statuses
