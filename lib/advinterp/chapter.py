"""Entry point: ``python -m advinterp.chapter CHAPTER [-f CONFIG] [--set KEY=VALUE ...]`` runs one chapter
with papermill, passing it only the parameters it declares.

A tier's configuration (``configs/cifar10-cpu.yaml``, ``configs/cifar10-gpu.yaml``) is book-wide: it sets
every chapter's parameters, so papermill, given it whole, warns once for each name this chapter does not
declare. This entry point keeps from the configuration the names the chapter's ``parameters`` cell
declares, adds ``--set`` (which must name one of them: a typo stops the run before anything executes,
with the closest names), and writes the executed notebook to ``runs/<config>/<chapter>.ipynb`` and its
results file beside it (``results_dir``), unless ``--out`` or ``--set results_dir=...`` say otherwise.

``CHAPTER`` is a notebook stem (``04-consistent-loss``) or its number (``4``, ``04``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from .core import paths
from .core.params import key_values
from .core.validation import fail
from .sweeps.spec import check_known, notebook_parameters


def chapter_stem(name: str, notebooks: Path | None = None) -> str:
    """The notebook stem ``name`` designates: itself, or the chapter whose number it is."""
    stems = sorted(p.stem for p in (notebooks or paths.book_dir()).glob("[0-9][0-9]-*.ipynb"))
    if name in stems:
        return name
    if name.isdigit():
        match = [s for s in stems if int(s[:2]) == int(name)]
        if match:
            return match[0]
    fail("chapter", name, f"a chapter number or notebook stem: {', '.join(stems)}")


def chapter_params(stem: str, config: str | Path | None, overrides: dict[str, Any],
                   notebooks: Path | None = None) -> dict[str, Any]:
    """The parameters to pass: the configuration's values of the names the chapter declares, then
    ``overrides`` (each a name the chapter declares)."""
    declared = notebook_parameters(stem, notebooks)
    check_known("--set", overrides, declared)
    given: dict[str, Any] = {}
    if config is not None:
        path = Path(config)
        if not path.is_file():
            fail("config", str(config), "a YAML parameter file (e.g. configs/cifar10-cpu.yaml)")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            fail("config", str(config), "a YAML mapping of parameter names to values")
        given = dict(loaded)
    return {**{k: v for k, v in given.items() if k in declared}, **overrides}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m advinterp.chapter", description=__doc__.split("\n\n")[0])
    p.add_argument("chapter", help="a chapter's number (4) or notebook stem (04-consistent-loss)")
    p.add_argument("-f", "--config", default=None, help="a tier's parameter file, e.g. configs/cifar10-cpu.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="set a parameter the chapter declares (VALUE read as YAML: 3, 0.1, [0, 1], text); repeatable")
    p.add_argument("--out", default=None, help="the executed notebook (default: runs/<config>/<chapter>.ipynb)")
    args = p.parse_args(argv)
    try:
        overrides = key_values(args.overrides, "--set")
        stem = chapter_stem(args.chapter)
        params = chapter_params(stem, args.config, overrides)
    except ValueError as err:
        print(f"python -m advinterp.chapter: error: {err}", file=sys.stderr)
        return 2
    tag = Path(args.config).stem if args.config else "default"
    out = Path(args.out) if args.out else paths.repo_root() / "runs" / tag / f"{stem}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    params.setdefault("results_dir", str(out.parent.resolve()))
    import papermill as pm

    print(f"{stem} with {len(params)} parameters -> {out}")
    pm.execute_notebook(str(paths.book_dir() / f"{stem}.ipynb"), str(out), parameters=params,
                        cwd=str(paths.book_dir()), kernel_name="python3")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
