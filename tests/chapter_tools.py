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
