"""Helpers for tests that execute parts of chapter notebooks."""

from __future__ import annotations

import json
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
