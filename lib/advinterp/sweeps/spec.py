"""A sweep's specification: read it, check it against the chapters' ``parameters`` cells before
anything runs, and expand it into its runs.

A spec is a YAML file::

    name: side-by-side            # output folder runs/<name>/
    params_file: configs/cifar10-gpu.yaml   # optional: parameters of every run (each run gets the
                                             # names its chapter declares: a tier's file is book-wide)
    params: {device: cuda}                   # optional: likewise, over params_file
    runs:
      - chapter: 03-neuron-consistency
        grid: {eps: [0.1, 0.2, 0.3]}      # every combination of the listed values
        params: {attack: ensemble}          # fixed for every run of the block
      - chapter: 04-consistent-loss         # no grid: one run
      - chapter: 07-sensitivity-regularization
        split: seeds                        # one run per seed of the chapter's ``seeds`` list

``split: seeds`` turns one run into one run per seed (``seeds: [s]``), so seeds can run in
parallel; the table then holds one row for the group (:mod:`advinterp.sweeps.table`).
"""

from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..core import paths
from ..core.cache import key_of
from ..core.validation import check_choice, did_you_mean, fail

#: what a block's ``split`` may ask for
SPLITS = ("seeds",)


@dataclass(frozen=True)
class Run:
    """One chapter execution of a sweep. ``group`` holds, for a run made by ``split: seeds``, the
    parameters of the whole group (every seed), whose row :func:`advinterp.sweeps.table.collect`
    aggregates."""

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


def load_spec(path: str | Path, notebooks: Path | None = None, *, name: str = "sweep",
              overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read and check a sweep spec (see the module docstring); ``name`` is the parameter that gave
    its path, for error messages. ``overrides`` are set on every run, over every parameter the spec
    gives (the command line's ``--set KEY=VALUE``)."""
    notebooks = notebooks or paths.book_dir()
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
        # a run is given only the names its chapter declares (papermill warns once for each other one)
        own = declared[chapter]
        block["params"] = {**{k: v for k, v in common.items() if k in own}, **block.get("params", {}),
                           **{k: v for k, v in overrides.items() if k in own}}
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

    return set(pm.inspect_notebook(str((notebooks or paths.book_dir()) / f"{chapter}.ipynb")))


def check_known(where: str, params: dict[str, Any], declared: set[str], what: str = "the chapter does not declare") -> None:
    """Stop, before anything runs, on a parameter name ``declared`` lacks, naming the closest ones."""
    unknown = sorted(set(params) - declared)
    if unknown:
        hints = ", ".join(did_you_mean(n, sorted(declared)) for n in unknown)
        fail(where, unknown, f"parameter names that exist; {what}: {hints}")


def notebook_default(chapter: str, name: str, notebooks: Path | None = None) -> Any:
    """The default of parameter ``name`` in a chapter's ``parameters`` cell (None when it has none)."""
    import papermill as pm

    declared = pm.inspect_notebook(str((notebooks or paths.book_dir()) / f"{chapter}.ipynb"))
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
