"""Helpers for tests that execute parts of chapter notebooks."""

from __future__ import annotations

import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def notebook_cells(stem: str) -> list[dict]:
    nb = json.loads((REPO / "book" / f"{stem}.ipynb").read_text())
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def run_parameters(stem: str, **overrides):
    """Execute a chapter's ``parameters`` cell, apply papermill-style overrides, then its
    validation cell (the next code cell); returns the namespace. Raises what validation raises."""
    cells = notebook_cells(stem)
    first = next(i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", []))
    ns: dict = {}
    exec("".join(cells[first]["source"]), ns)
    ns.update(overrides)
    validate_src = "".join(cells[first + 1]["source"])
    exec(validate_src, ns)
    return ns


def write_toy_chapter(book: Path, parameters: str, body: str, stem: str = "99-toy") -> Path:
    """A chapter in miniature for sweep tests: a ``parameters`` cell and one code cell, in ``book``."""
    import nbformat

    book.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = book / f"{stem}.ipynb"
    nbformat.write(nb, path)
    return path


#: notebook path -> the notebook as nbval executed it, with its outputs (only notebooks whose every
#: code cell passed in this session); the book build caches them instead of executing them again
EXECUTED: dict[str, object] = {}
#: environment variable naming a folder where executed notebooks are also written, so that another
#: pytest process (make test's second phase, or a pytest-xdist worker's controller) builds the book
#: from them; ``make test`` sets it to a fresh folder per run
EXECUTED_DIR = "ADVINTERP_EXECUTED_DIR"
_OUTPUTS: dict[str, dict[int, list]] = {}
_FAILED: set[str] = set()


def record_cell(path: str, nb, cell_num: int, outputs: list | None, passed: bool) -> None:
    """Keep one nbval cell's outputs; once every code cell of ``path`` has passed, the executed
    notebook goes into :data:`EXECUTED`."""
    if not passed:
        _FAILED.add(path)
        EXECUTED.pop(path, None)
        folder = os.environ.get(EXECUTED_DIR)
        if folder:
            (Path(folder) / Path(path).name).unlink(missing_ok=True)
        return
    cells = _OUTPUTS.setdefault(path, {})
    cells[cell_num] = list(outputs or [])
    n_code = sum(c.cell_type == "code" for c in nb.cells)
    if len(cells) == n_code and path not in _FAILED:
        EXECUTED[path] = executed_notebook(nb, cells)
        folder = os.environ.get(EXECUTED_DIR)
        if folder:
            _write_executed(EXECUTED[path], Path(folder) / Path(path).name)


def _write_executed(nb, target: Path) -> None:
    """Write an executed notebook atomically (a reader never sees half a notebook)."""
    import nbformat

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    nbformat.write(nb, partial)
    os.replace(partial, target)


def executed_notebooks() -> dict[str, object]:
    """The notebooks executed in this run: :data:`EXECUTED` (this process) and those another process
    of the same ``make test`` wrote to :data:`EXECUTED_DIR` (keyed by their path under book/)."""
    import nbformat

    out: dict[str, object] = {}
    folder = os.environ.get(EXECUTED_DIR)
    if folder and Path(folder).is_dir():
        for file in sorted(Path(folder).glob("*.ipynb")):
            out[str(REPO / "book" / file.name)] = nbformat.read(file, as_version=4)
    return {**out, **EXECUTED}


def executed_notebook(nb, outputs: dict[int, list]):
    """A copy of ``nb`` carrying ``outputs`` (code cell number -> outputs), consecutively counted."""
    import copy

    import nbformat

    out = copy.deepcopy(nb)
    for count, cell in enumerate((c for c in out.cells if c.cell_type == "code"), start=1):
        cell.outputs = [nbformat.from_dict(dict(o)) for o in outputs[count - 1]]
        for o in cell.outputs:
            if o.get("output_type") == "execute_result":
                o["execution_count"] = count
        cell.execution_count = count
    nbformat.validate(out)
    return out


def seed_execution_cache(out: Path) -> list[str]:
    """Put the chapters nbval executed in this run (:func:`executed_notebooks`) into the execution cache of
    a Jupyter Book build into ``out``: the build renders them instead of executing them again.
    Returns the notebooks cached; a chapter nbval did not run (or that failed) the build executes."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(out / "_build" / ".jupyter_cache"))
    executed = executed_notebooks()
    for path, nb in executed.items():
        cache.cache_notebook_bundle(CacheBundleIn(nb, path), check_validity=False, overwrite=True)
    return sorted(executed)
