"""Parameter sweeps: run chapters through papermill over a grid, resumably, into one table.

The machinery of the entry point ``python -m advinterp.sweep configs/sweeps/side-by-side.yaml``
(or ``make sweep``; :mod:`advinterp.sweep`) and of chapter 8, one concept a module:

* :mod:`~advinterp.sweeps.spec`: the YAML spec (format there), checked against the chapters'
  ``parameters`` cells before anything runs, and expanded into its runs (``split: seeds``: one run
  per seed);
* :mod:`~advinterp.sweeps.runs`: one run: its folder ``runs/<name>/<chapter>/<run>/``, whether it is
  complete (an interrupted sweep resumes; a run made by an older notebook or library is redone),
  executing it with papermill, recording its failure (the others go on), adopting the chapter's own
  results file;
* the engines, chosen by name from :data:`ENGINES`: :mod:`~advinterp.sweeps.local` (one run after
  another in this process) and :mod:`~advinterp.sweeps.ray` (each run a Ray task, imported only
  when chosen). Every engine writes each run's files atomically into that run's own folder through
  :func:`~advinterp.sweeps.runs.execute`, so the guarantees above hold for both;
* :mod:`~advinterp.sweeps.table`: the table ``runs/<name>/table.csv`` (one row per run, a
  ``split: seeds`` group aggregated into one row) and ``runs.csv`` (every single run).

:func:`run_sweep` puts them together.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core import paths
from ..core.validation import check_choice, fail
from . import local
from .table import collect
from .runs import adopt, execute, is_complete, record_failure, run_dir
from .spec import SPLITS, Run, expand, load_spec

#: an engine runs a sweep's runs that are not complete:
#: ``runner(runs, root, *, name, notebooks, progress_bar, **options) -> statuses``
Engine = Callable[..., list[dict[str, Any]]]


def _on_ray(runs: list[Run], root: Path, **options: Any) -> list[dict[str, Any]]:
    """The Ray engine (:func:`advinterp.sweeps.ray.execute_all`), imported only now: importing the
    package does not import Ray."""
    from . import ray

    return ray.execute_all(runs, root, **options)


#: how a sweep's runs are executed, by the name ``--engine`` takes: the one table engines are chosen from
ENGINES: dict[str, Engine] = {"local": local.execute_all, "ray": _on_ray}


def run_sweep(spec_path: str | Path, runs_root: str | Path | None = None, *, progress_bar: bool = True,
              notebooks: Path | None = None, force: bool = False, reuse_results: str | Path | None = None,
              engine: str = "local", overrides: dict[str, Any] | None = None, **engine_options: Any) -> Path:
    """Execute every incomplete run of the spec (every run with ``force``), then collect the
    table; returns its path. With ``reuse_results`` (a results folder, e.g. the book's
    ``results``), a run that the chapter has just made with the same parameters, notebook and
    library is adopted from there instead of executed again (:func:`~advinterp.sweeps.runs.adopt`).
    ``engine`` is a key of :data:`ENGINES`; ``engine_options`` go to the Ray engine
    (:func:`advinterp.sweeps.ray.execute_all`: ``address``, ``gpus_per_run``, ``cpus_per_run``,
    ``max_retries``); ``overrides`` as in :func:`~advinterp.sweeps.spec.load_spec`."""
    check_choice("engine", engine, ENGINES)
    if engine == "local" and engine_options:
        fail("engine_options", sorted(engine_options), "none with engine='local' (they configure engine='ray')")
    spec = load_spec(spec_path, notebooks, overrides=overrides)
    root = Path(runs_root) if runs_root is not None else paths.repo_root() / "runs"
    root = root / spec["name"]
    runs = expand(spec)
    todo = [r for r in runs if force or not is_complete(root, r, notebooks)]
    if reuse_results is not None and not force:
        todo = [r for r in todo if not adopt(r, root, notebooks=notebooks, results_dir=reuse_results)]
    ENGINES[engine](todo, root, name=spec["name"], notebooks=notebooks, progress_bar=progress_bar, **engine_options)
    return collect(spec, root)


__all__ = ["ENGINES", "SPLITS", "Engine", "Run", "adopt", "collect", "execute", "expand", "is_complete", "load_spec",
           "record_failure", "run_dir", "run_sweep"]
