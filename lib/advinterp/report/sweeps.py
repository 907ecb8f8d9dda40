"""Parameter sweeps: run chapters through papermill over a grid, resumably, into one table.

The machinery of the entry point ``python -m advinterp.sweep configs/sweeps/side-by-side.yaml``
(or ``make sweep``; :mod:`advinterp.sweep`) and of chapter 8. It reads a YAML spec::

    name: side-by-side            # output folder runs/<name>/
    runs:
      - chapter: 03-neuron-consistency
        grid: {eps: [0.1, 0.2, 0.3]}      # every combination of the listed values
        params: {attack: ensemble}          # fixed for every run of the block
      - chapter: 04-consistent-loss         # no grid: one run

Each run executes the chapter with papermill's Python API and writes
``runs/<name>/<chapter>/<run>/notebook.ipynb``, its results JSON and a ``status.json``. A run whose
results exist with status ``ok`` is skipped (unless the chapter notebook or the library has changed
since), so
an interrupted sweep resumes where it stopped; a failing run is recorded with its error and the
others go on. :func:`collect` gathers every run
into ``runs/<name>/table.csv``: one row per run, the chapter, the parameters and the metrics as
columns.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..core import paths, progress
from ..core.cache import atomic_write_text, key_of, library_version
from ..core.validation import fail


@dataclass(frozen=True)
class Run:
    """One chapter execution of a sweep."""

    chapter: str
    params: dict[str, Any]

    @property
    def run_id(self) -> str:
        items = "_".join(f"{k}={v}" for k, v in sorted(self.params.items()) if not isinstance(v, list | dict))
        slug = "".join(c if c.isalnum() or c in "=._-" else "-" for c in items)[:60] or "default"
        return f"{slug}-{key_of(self.params, 8)}"


def book_dir() -> Path:
    """Where chapter notebooks live (``<repo>/book``)."""
    return paths.repo_root() / "book"


def load_spec(path: str | Path, notebooks: Path | None = None, *, name: str = "sweep") -> dict[str, Any]:
    """Read and check a sweep spec (see the module docstring); ``name`` is the parameter that gave
    its path, for error messages."""
    notebooks = notebooks or book_dir()
    path = Path(path)
    if not path.is_file():
        fail(name, str(path), "a YAML sweep specification file (e.g. configs/sweeps/side-by-side.yaml)")
    spec = yaml.safe_load(path.read_text()) or {}
    if not isinstance(spec.get("name"), str) or not spec["name"]:
        fail("name", spec.get("name"), "a non-empty sweep name in the spec")
    if not isinstance(spec.get("runs"), list) or not spec["runs"]:
        fail("runs", spec.get("runs"), "a non-empty list of {chapter, grid, params} blocks")
    for block in spec["runs"]:
        chapter = block.get("chapter")
        if not isinstance(chapter, str) or not (notebooks / f"{chapter}.ipynb").is_file():
            fail("chapter", chapter, "the stem of a notebook in book/ (e.g. 03-neuron-consistency)")
        for key in ("grid", "params"):
            if not isinstance(block.get(key, {}), dict):
                fail(key, block.get(key), "a mapping of parameter names to values")
        for name, values in block.get("grid", {}).items():
            if not isinstance(values, list) or not values:
                fail(f"grid.{name}", values, "a non-empty list of values")
    return spec


def expand(spec: dict[str, Any]) -> list[Run]:
    """Every run of the spec, in order."""
    runs = []
    for block in spec["runs"]:
        grid = block.get("grid", {})
        names = list(grid)
        for combo in itertools.product(*(grid[n] for n in names)):
            runs.append(Run(block["chapter"], {**block.get("params", {}), **dict(zip(names, combo))}))
    return runs


def run_dir(root: Path, run: Run) -> Path:
    return root / run.chapter / run.run_id


def notebook_digest(chapter: str, notebooks: Path | None = None) -> str:
    """Digest of a chapter notebook's source: a run made with an older version is not complete."""
    import hashlib

    return hashlib.sha256(((notebooks or book_dir()) / f"{chapter}.ipynb").read_bytes()).hexdigest()[:16]


def is_complete(root: Path, run: Run, notebooks: Path | None = None) -> bool:
    """Finished with status ``ok``, its results present, and made by the current notebook and library."""
    folder = run_dir(root, run)
    status = folder / "status.json"
    if not status.is_file() or not (folder / "results" / f"{run.chapter}.json").is_file():
        return False
    recorded = json.loads(status.read_text())
    return (recorded.get("status") == "ok" and recorded.get("notebook") == notebook_digest(run.chapter, notebooks)
            and recorded.get("library") == library_version())


def adopt(run: Run, root: Path, *, notebooks: Path | None = None, results_dir: str | Path = "results") -> bool:
    """Reuse the chapter's own results file (``<results_dir>/<chapter>.json``, written when the
    chapter ran with its defaults, e.g. earlier in the same book build) as this run's results when it
    was made with exactly this run's parameters (its recorded ``overrides`` equal the run's) by the
    current notebook and library. Returns whether the run was adopted (its status says so)."""
    source = paths.resolve_results_dir(results_dir) / f"{run.chapter}.json"
    if not source.is_file():
        return False
    payload = json.loads(source.read_text())
    provenance = payload.get("provenance") or {}
    if (payload.get("overrides") != json.loads(json.dumps(run.params, default=str))
            or provenance.get("notebook") != notebook_digest(run.chapter, notebooks)
            or provenance.get("library") != library_version()):
        return False
    folder = run_dir(root, run)
    atomic_write_text(source.read_text(), folder / "results" / f"{run.chapter}.json")
    status = {"status": "ok", "chapter": run.chapter, "params": run.params, "seconds": 0.0,
              "adopted_from": str(source), "notebook": provenance["notebook"], "library": provenance["library"]}
    atomic_write_text(json.dumps(status, indent=1, default=str), folder / "status.json")
    return True


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Redirect file descriptor 2 (inherited by kernel processes) to ``path`` within the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def execute(run: Run, root: Path, *, timeout: int = 3600, notebooks: Path | None = None) -> dict[str, Any]:
    """Run one chapter with papermill; returns (and writes) its status."""
    import papermill as pm

    notebooks = notebooks or book_dir()
    folder = run_dir(root, run)
    folder.mkdir(parents=True, exist_ok=True)
    params = {**run.params, "results_dir": str((folder / "results").resolve())}
    start = time.time()
    try:
        with _stderr_to(folder / "kernel.log"):  # kernel chatter goes to the run's log, not the caller's output
            pm.execute_notebook(str(notebooks / f"{run.chapter}.ipynb"), str(folder / "notebook.ipynb"),
                                parameters=params, cwd=str(notebooks), progress_bar=False,
                                execution_timeout=timeout, kernel_name="python3")
        status = {"status": "ok"}
    except Exception as err:  # recorded, the sweep goes on
        status = {"status": "failed", "error": f"{type(err).__name__}: {err}"[-4000:],
                  "traceback": traceback.format_exc()[-4000:]}
    status.update({"chapter": run.chapter, "params": run.params, "seconds": round(time.time() - start, 1),
                   "notebook": notebook_digest(run.chapter, notebooks), "library": library_version()})
    atomic_write_text(json.dumps(status, indent=1, default=str), folder / "status.json")
    return status


def run_sweep(spec_path: str | Path, runs_root: str | Path | None = None, *, progress_bar: bool = True,
              notebooks: Path | None = None, force: bool = False, reuse_results: str | Path | None = None) -> Path:
    """Execute every incomplete run of the spec (every run with ``force``), then collect the
    table; returns its path. With ``reuse_results`` (a results folder, e.g. the book's
    ``results``), a run that the chapter has just made with the same parameters, notebook and
    library is adopted from there instead of executed again (:func:`adopt`)."""
    spec = load_spec(spec_path, notebooks)
    root = Path(runs_root) if runs_root is not None else paths.repo_root() / "runs"
    root = root / spec["name"]
    runs = expand(spec)
    todo = [r for r in runs if force or not is_complete(root, r, notebooks)]
    if reuse_results is not None and not force:
        todo = [r for r in todo if not adopt(r, root, notebooks=notebooks, results_dir=reuse_results)]
    bar = progress.bar(todo, desc=f"sweep {spec['name']}", disable=not progress_bar)
    for run in bar:
        bar.set_postfix_str(f"{run.chapter} {run.run_id[:30]}")
        execute(run, root, notebooks=notebooks)
    return collect(spec, root)


def collect(spec: dict[str, Any], root: Path) -> Path:
    """Gather every run of ``spec`` under ``root`` into ``root/table.csv`` (one row per run)."""
    import pandas as pd

    rows = []
    for run in expand(spec):
        folder = run_dir(root, run)
        status_file = folder / "status.json"
        status = json.loads(status_file.read_text()) if status_file.is_file() else {"status": "not run"}
        row: dict[str, Any] = {"chapter": run.chapter, "run": run.run_id, "status": status.get("status"),
                               "error": status.get("error", ""), "seconds": status.get("seconds")}
        row.update({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in run.params.items()})
        results_file = folder / "results" / f"{run.chapter}.json"
        if results_file.is_file():
            for k, v in json.loads(results_file.read_text())["metrics"].items():
                row[k if k not in row else f"{k}_metric"] = v
        rows.append(row)
    table = root / "table.csv"
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(pd.DataFrame(rows).to_csv(index=False), table)
    return table
