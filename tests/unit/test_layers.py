"""The library's folders are its layers, and imports point down only.

Every module's imports (top-level and lazy ones inside functions) are read from its source (AST);
a module may import from its own layer or a lower one, never from a higher one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "lib" / "advinterp"
#: lowest first; the entry points (sweep, bench) and the package root are above every layer
LAYERS = ("core", "data", "models", "attacks", "training", "interpret", "report", "studies")
TOP = len(LAYERS)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def rank(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else TOP


def imports_of(path: Path) -> list[tuple[int, str]]:
    """``(line, absolute module)`` of every advinterp import in the file, lazy ones included."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "advinterp"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "advinterp":
                continue
            # "from . import x" imports the sub-module x
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                as_path = PACKAGE.parent / Path(*candidate.split("."))
                is_module = as_path.with_suffix(".py").is_file() or (as_path / "__init__.py").is_file()
                found.append((node.lineno, candidate if is_module else target))
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_is_in_a_layer_folder_or_an_entry_point():
    loose = {p.name for p in PACKAGE.glob("*.py")}
    assert loose == {"__init__.py", "sweep.py", "bench.py"}
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_imports_point_down(path):
    importer = module_name(path)
    upward = [f"line {line}: {target} ({LAYERS[rank(target)] if rank(target) < TOP else 'entry point'})"
              for line, target in imports_of(path) if rank(target) > rank(importer)]
    layer = LAYERS[rank(importer)] if rank(importer) < TOP else "entry point"
    assert not upward, f"{importer} (layer {layer}) imports from a higher layer: {upward}"


def test_the_checker_sees_lazy_and_relative_imports(tmp_path, monkeypatch):
    """A lazy upward import inside a function of a core module is caught."""
    fake = PACKAGE / "core" / "paths.py"
    src = "def f():\n    from ..studies import setting\n    from .. import sweep\n"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: src if self == fake else Path.read_bytes(self).decode())
    targets = [t for _, t in imports_of(fake)]
    assert "advinterp.studies.setting" in targets and "advinterp.sweep" in targets
    assert all(rank(t) > rank("advinterp.core.paths") for t in targets)
