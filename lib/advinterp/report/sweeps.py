"""Parameter sweeps: run chapters through papermill over a grid, resumably, into one table.

The machinery of the entry point ``python -m advinterp.sweep configs/sweeps/side-by-side.yaml``
(or ``make sweep``; :mod:`advinterp.sweep`) and of chapter 8. It reads a YAML spec::

    name: side-by-side            # output folder runs/<name>/
    params_file: configs/cifar10-gpu.yaml   # optional: parameters of every run (as papermill -f)
    params: {device: cuda}                   # optional: likewise, over params_file
    runs:
      - chapter: 03-neuron-consistency
        grid: {eps: [0.1, 0.2, 0.3]}      # every combination of the listed values
        params: {attack: ensemble}          # fixed for every run of the block
      - chapter: 04-consistent-loss         # no grid: one run
      - chapter: 07-sensitivity-regularization
        split: seeds                        # one run per seed of the chapter's ``seeds`` list

Each run executes the chapter with papermill's Python API and writes
``runs/<name>/<chapter>/<run>/notebook.ipynb``, its results JSON and a ``status.json``. A run whose
results exist with status ``ok`` is skipped (unless the chapter notebook or the library has changed
since), so
an interrupted sweep resumes where it stopped; a failing run is recorded with its error and the
others go on. :func:`collect` gathers every run
into ``runs/<name>/table.csv``: one row per run, the chapter, the parameters and the metrics as
columns (and every single run into ``runs.csv``).

``split: seeds`` turns one run into one run per seed (``seeds: [s]``), so seeds can run in
parallel (:mod:`advinterp.report.sweep_ray`); :func:`collect` then writes one row for the group
with what the chapter would have reported for all its seeds at once: for every metric ``m`` that
the chapter reports with a spread ``m_std``, the mean and sample std of the runs' ``m``
(:func:`aggregate_seed_runs`). A metric without a spread that differs between the seed runs is
pooled over seeds inside the chapter (e.g. a bootstrap over seeds and images) and cannot be
recombined from single-seed runs: its cell is left empty and the row's ``aggregated`` column names
it.

Engines: ``local`` runs one run after another in this process; ``ray`` hands each run to a Ray
worker (:func:`advinterp.report.sweep_ray.execute_all`). Every engine writes each run's files
atomically into that run's own folder, so the guarantees above hold for both.
"""

from __future__ import annotations

import ast
import contextlib
import itertools
import json
import os
import socket
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..core import paths, progress
from ..core.cache import atomic_write_text, key_of, library_version
from ..core.validation import check_choice, fail
from .results import mean_std

#: how a sweep's runs are executed (see the module docstring)
ENGINES = ("local", "ray")
#: what a block's ``split`` may ask for
SPLITS = ("seeds",)


@dataclass(frozen=True)
class Run:
    """One chapter execution of a sweep. ``group`` holds, for a run made by ``split: seeds``, the
    parameters of the whole group (every seed), whose row :func:`collect` aggregates."""

    chapter: str
    params: dict[str, Any]
    group: dict[str, Any] | None = field(default=None, compare=False)
    #: parameters every run of the sweep shares (``params_file``, top-level ``params``): left out of
    #: the readable part of the run id (its key still covers them)
    common: tuple[str, ...] = field(default=(), compare=False)

    @property
    def run_id(self) -> str:
        shown = {k: v for k, v in sorted(self.params.items()) if k not in self.common}
        if self.group is not None:
            shown["seed"] = self.params["seeds"][0]
        items = "_".join(f"{k}={v}" for k, v in shown.items() if not isinstance(v, list | dict))
        slug = "".join(c if c.isalnum() or c in "=._-" else "-" for c in items)[:60] or "default"
        return f"{slug}-{key_of(self.params, 8)}"


def book_dir() -> Path:
    """Where chapter notebooks live (``<repo>/book``)."""
    return paths.repo_root() / "book"


def load_spec(path: str | Path, notebooks: Path | None = None, *, name: str = "sweep",
              overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read and check a sweep spec (see the module docstring); ``name`` is the parameter that gave
    its path, for error messages. ``overrides`` are set on every run, over every parameter the spec
    gives (the command line's ``--set KEY=VALUE``)."""
    notebooks = notebooks or book_dir()
    path = Path(path)
    if not path.is_file():
        fail(name, str(path), "a YAML sweep specification file (e.g. configs/sweeps/side-by-side.yaml)")
    spec = yaml.safe_load(path.read_text()) or {}
    if not isinstance(spec.get("name"), str) or not spec["name"]:
        fail("name", spec.get("name"), "a non-empty sweep name in the spec")
    if not isinstance(spec.get("runs"), list) or not spec["runs"]:
        fail("runs", spec.get("runs"), "a non-empty list of {chapter, grid, params} blocks")
    overrides = dict(overrides or {})
    common = _common_params(spec)
    spec["_common"] = sorted({*common, *overrides})
    declared: dict[str, set[str]] = {}
    for block in spec["runs"]:
        chapter = block.get("chapter")
        if not isinstance(chapter, str) or not (notebooks / f"{chapter}.ipynb").is_file():
            fail("chapter", chapter, "the stem of a notebook in book/ (e.g. 03-neuron-consistency)")
        for key in ("grid", "params"):
            if not isinstance(block.get(key, {}), dict):
                fail(key, block.get(key), "a mapping of parameter names to values")
        declared[chapter] = notebook_parameters(chapter, notebooks)
        for key in ("grid", "params"):
            check_known(f"{chapter} {key}", block.get(key, {}), declared[chapter])
    in_sweep = set().union(*declared.values())
    book = set().union(*(notebook_parameters(p.stem, notebooks) for p in sorted(notebooks.glob("[0-9][0-9]-*.ipynb"))))
    # a params_file is a book-wide configuration (it may set any chapter's parameters); the spec's own
    # params and --set must name a parameter of a chapter of this sweep
    check_known("params_file", _params_file(spec), book, "no chapter of the book declares")
    check_known("params", spec.get("params", {}), in_sweep, "no chapter of the sweep declares")
    check_known("--set", overrides, in_sweep, "no chapter of the sweep declares")
    for block in spec["runs"]:
        chapter = block["chapter"]
        block["params"] = {**common, **block.get("params", {}), **overrides}
        for name, values in block.get("grid", {}).items():
            if not isinstance(values, list) or not values:
                fail(f"grid.{name}", values, "a non-empty list of values")
        block["grid"] = {k: v for k, v in block.get("grid", {}).items() if k not in overrides}
        if "split" in block:
            check_choice("split", block["split"], SPLITS)
            if "seeds" in block.get("grid", {}):
                fail("grid.seeds", block["grid"]["seeds"], "no seeds grid in a block with split: seeds")
            block["params"].setdefault("seeds", notebook_default(chapter, "seeds", notebooks))
            seeds = block["params"]["seeds"]
            if not isinstance(seeds, list) or len(seeds) < 1:
                fail("seeds", seeds, f"a list of seeds to split (chapter {chapter} declares no seeds list)")
    return spec


def _params_file(spec: dict[str, Any]) -> dict[str, Any]:
    """The parameters of the spec's ``params_file`` (a papermill parameter file, relative to the
    repository; empty without one)."""
    if spec.get("params_file") is None:
        return {}
    path = Path(spec["params_file"])
    path = path if path.is_absolute() else paths.repo_root() / path
    if not path.is_file():
        fail("params_file", spec["params_file"], "a YAML parameter file relative to the repository "
             "(e.g. configs/cifar10-gpu.yaml)")
    return dict(yaml.safe_load(path.read_text()) or {})


def _common_params(spec: dict[str, Any]) -> dict[str, Any]:
    """The parameters every run gets: ``params_file``, then the spec's top-level ``params``."""
    if not isinstance(spec.get("params", {}), dict):
        fail("params", spec.get("params"), "a mapping of parameter names to values")
    return {**_params_file(spec), **spec.get("params", {})}


def notebook_parameters(chapter: str, notebooks: Path | None = None) -> set[str]:
    """The names a chapter's ``parameters`` cell declares."""
    import papermill as pm

    return set(pm.inspect_notebook(str((notebooks or book_dir()) / f"{chapter}.ipynb")))


def check_known(where: str, params: dict[str, Any], declared: set[str], what: str = "the chapter does not declare") -> None:
    """Stop, before anything runs, on a parameter name ``declared`` lacks, naming the closest ones."""
    import difflib

    unknown = sorted(set(params) - declared)
    if unknown:
        hints = []
        for n in unknown:
            close = difflib.get_close_matches(n, sorted(declared), n=3, cutoff=0.5)
            hints.append(f"{n!r}" + (f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""))
        fail(where, unknown, f"parameter names that exist; {what}: {', '.join(hints)}")


def notebook_default(chapter: str, name: str, notebooks: Path | None = None) -> Any:
    """The default of parameter ``name`` in a chapter's ``parameters`` cell (None when it has none)."""
    import papermill as pm

    declared = pm.inspect_notebook(str((notebooks or book_dir()) / f"{chapter}.ipynb"))
    return ast.literal_eval(declared[name]["default"]) if name in declared else None


def expand(spec: dict[str, Any]) -> list[Run]:
    """Every distinct run of the spec, in order (a split block: one run per seed, seeds in their
    order; a run that an earlier block already asks for, e.g. after ``--set`` replaced a grid, once)."""
    runs: list[Run] = []
    for block in spec["runs"]:
        grid = block.get("grid", {})
        names = list(grid)
        for combo in itertools.product(*(grid[n] for n in names)):
            params = {**block.get("params", {}), **dict(zip(names, combo))}
            common = tuple(k for k in spec.get("_common", ()) if k not in names)
            if block.get("split") == "seeds":
                runs.extend(Run(block["chapter"], {**params, "seeds": [s]}, group=params, common=common)
                            for s in params["seeds"])
            else:
                runs.append(Run(block["chapter"], params, common=common))
    seen: set[tuple[str, str]] = set()
    return [r for r in runs if not ((r.chapter, r.run_id) in seen or seen.add((r.chapter, r.run_id)))]


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
    # a run parameter equal to the chapter's default is no override (e.g. a grid point at the default)
    wanted = {k: v for k, v in run.params.items() if v != notebook_default(run.chapter, k, notebooks)}
    if (payload.get("overrides") != json.loads(json.dumps(wanted, default=str))
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


def execute(run: Run, root: Path, *, timeout: int = 3600, notebooks: Path | None = None,
            engine: str = "local") -> dict[str, Any]:
    """Run one chapter with papermill; returns (and writes) its status, which records where and
    when it ran (``host``, ``pid``, ``started`` and ``finished`` as Unix times)."""
    import papermill as pm

    notebooks = notebooks or book_dir()
    folder = run_dir(root, run)
    folder.mkdir(parents=True, exist_ok=True)
    params = {**run.params, "results_dir": str((folder / "results").resolve())}
    start = time.time()
    where = {"engine": engine, "host": socket.gethostname(), "pid": os.getpid(), "started": start}
    atomic_write_text(json.dumps(where), folder / "worker.json")  # who is running it now (a retry overwrites)
    try:
        with _stderr_to(folder / "kernel.log"):  # kernel chatter goes to the run's log, not the caller's output
            pm.execute_notebook(str(notebooks / f"{run.chapter}.ipynb"), str(folder / "notebook.ipynb"),
                                parameters=params, cwd=str(notebooks), progress_bar=False,
                                execution_timeout=timeout, kernel_name="python3")
        status = {"status": "ok"}
    except Exception as err:  # recorded, the sweep goes on
        status = {"status": "failed", "error": f"{type(err).__name__}: {err}"[-4000:],
                  "traceback": traceback.format_exc()[-4000:]}
    end = time.time()
    status.update({"chapter": run.chapter, "params": run.params, "seconds": round(end - start, 1), **where,
                   "finished": end, "notebook": notebook_digest(run.chapter, notebooks), "library": library_version()})
    atomic_write_text(json.dumps(status, indent=1, default=str), folder / "status.json")
    return status


def record_failure(run: Run, root: Path, error: str, *, notebooks: Path | None = None,
                   engine: str = "local") -> dict[str, Any]:
    """Write a ``failed`` status for a run that ended without writing its own (its worker died)."""
    status = {"status": "failed", "error": error[-4000:], "chapter": run.chapter, "params": run.params,
              "engine": engine, "notebook": notebook_digest(run.chapter, notebooks), "library": library_version()}
    folder = run_dir(root, run)
    atomic_write_text(json.dumps(status, indent=1, default=str), folder / "status.json")
    return status


def run_sweep(spec_path: str | Path, runs_root: str | Path | None = None, *, progress_bar: bool = True,
              notebooks: Path | None = None, force: bool = False, reuse_results: str | Path | None = None,
              engine: str = "local", overrides: dict[str, Any] | None = None, **engine_options: Any) -> Path:
    """Execute every incomplete run of the spec (every run with ``force``), then collect the
    table; returns its path. With ``reuse_results`` (a results folder, e.g. the book's
    ``results``), a run that the chapter has just made with the same parameters, notebook and
    library is adopted from there instead of executed again (:func:`adopt`). ``engine`` is one of
    :data:`ENGINES`; ``engine_options`` go to the Ray engine
    (:func:`advinterp.report.sweep_ray.execute_all`: ``address``, ``gpus_per_run``,
    ``cpus_per_run``, ``max_retries``); ``overrides`` as in :func:`load_spec`."""
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
    if engine == "ray":
        from . import sweep_ray

        sweep_ray.execute_all(todo, root, notebooks=notebooks, progress_bar=progress_bar, **engine_options)
        return collect(spec, root)
    bar = progress.bar(todo, desc=f"sweep {spec['name']}", disable=not progress_bar)
    for run in bar:
        bar.set_postfix_str(f"{run.chapter} {run.run_id[:30]}")
        execute(run, root, notebooks=notebooks)
    return collect(spec, root)


def _row(run: Run, root: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A run's table row and its metrics (None when it wrote no results)."""
    folder = run_dir(root, run)
    status_file = folder / "status.json"
    status = json.loads(status_file.read_text()) if status_file.is_file() else {"status": "not run"}
    row: dict[str, Any] = {"chapter": run.chapter, "run": run.run_id, "status": status.get("status"),
                           "error": status.get("error", ""), "seconds": status.get("seconds")}
    row.update({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in run.params.items()})
    results_file = folder / "results" / f"{run.chapter}.json"
    metrics = json.loads(results_file.read_text())["metrics"] if results_file.is_file() else None
    _add_metrics(row, metrics or {})
    return row, metrics


def _add_metrics(row: dict[str, Any], metrics: dict[str, Any]) -> None:
    """A table row's metric columns: every scalar metric (per-seed lists stay in the results files)."""
    for k, v in metrics.items():
        if not k.endswith("_per_seed"):
            row[k if k not in row else f"{k}_metric"] = v


def aggregate_seed_runs(per_run: Sequence[dict[str, Any]], *, spread_all: bool = False
                        ) -> tuple[dict[str, Any], list[str]]:
    """The metrics a chapter would have reported for all seeds at once, from its single-seed runs
    (in seed order): every per-seed list ``m_per_seed`` is the runs' lists concatenated (so the
    verdicts' intervals see every seed); every ``m`` with a spread ``m_std`` becomes the mean and
    sample std (ddof = 1, :func:`advinterp.report.results.mean_std`) of those per-seed values (or of
    the runs' ``m``); a metric without a spread is kept when every run agrees on it, else left out
    (it was pooled over seeds inside the chapter, or is a combined interval that the per-seed lists
    decide). Returns the metrics and the names left out. ``spread_all``: the runs are of a chapter
    with one ``seed`` parameter (chapter 1), whose every numeric metric is that seed's value: each
    one that differs between runs gets a mean and std."""
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


def collect(spec: dict[str, Any], root: Path) -> Path:
    """Gather every run of ``spec`` under ``root`` into ``root/table.csv`` (one row per run; one row
    per group of a ``split: seeds`` block, aggregated by :func:`aggregate_seed_runs`) and every
    single run into ``root/runs.csv``."""
    import pandas as pd

    rows, singles = [], []
    groups: dict[str, list[tuple[Run, dict[str, Any], dict[str, Any] | None]]] = {}
    for run in expand(spec):
        row, metrics = _row(run, root)
        singles.append(row)
        if run.group is None:
            rows.append(row)
            continue
        key = Run(run.chapter, run.group, common=run.common).run_id
        if key not in groups:
            groups[key] = []
            rows.append({"chapter": run.chapter, "run": key})  # filled below, in spec order
        groups[key].append((run, row, metrics))
    for row in rows:
        if row["run"] in groups and "status" not in row:
            row.update(_group_row(groups[row["run"]]))
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(pd.DataFrame(singles).to_csv(index=False), root / "runs.csv")
    table = root / "table.csv"
    atomic_write_text(pd.DataFrame(rows).to_csv(index=False), table)
    return table


def _group_row(members: list[tuple[Run, dict[str, Any], dict[str, Any] | None]]) -> dict[str, Any]:
    """The table row of a ``split: seeds`` group: ``ok`` when every seed run is, metrics aggregated."""
    run = members[0][0]
    assert run.group is not None
    seeds = [m[0].params["seeds"][0] for m in members]
    failed = [(r.params["seeds"][0], row) for r, row, metrics in members if row["status"] != "ok" or metrics is None]
    row: dict[str, Any] = {"status": "ok" if not failed else failed[0][1]["status"],
                           "error": "; ".join(f"seed {s}: {r['error']}" for s, r in failed if r["error"]),
                           "seconds": sum(float(r["seconds"] or 0) for _, r, _ in members)}
    row.update({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in run.group.items()})
    if failed:
        row["aggregated"] = f"not aggregated: seed runs {[s for s, _ in failed]} did not finish"
        return row
    metrics, left_out = aggregate_seed_runs([m for _, _, m in members if m is not None])
    row["aggregated"] = (f"mean and std over {len(seeds)} single-seed runs (seeds {seeds})"
                         + (f"; pooled over seeds in the chapter, left empty: {' '.join(left_out)}" if left_out else ""))
    _add_metrics(row, metrics)
    return row
