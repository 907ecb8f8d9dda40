"""The library's folders are its layers, and imports point down only.

Every module's imports (top-level and lazy ones inside functions) are read from its source (AST);
a module may import from its own layer or a lower one, never from a higher one, and no modules of a
layer import one another in a circle (directly or through others of the layer).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "lib" / "advinterp"
#: lowest first; the entry points (sweep, bench) and the package root are above every layer
LAYERS = ("core", "data", "models", "attacks", "training", "interpret", "report", "sweeps", "studies")
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
    assert loose == {"__init__.py", "sweep.py", "bench.py", "tier.py", "chapter.py"}
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


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every group of two or more modules of ``graph`` (module -> the modules it imports) that import
    one another, directly or through others of the group (its strongly connected components), each
    sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def layer_graph(layer: str) -> dict[str, set[str]]:
    """The modules of ``layer`` (its package ``__init__`` among them) and which others of them each
    imports."""
    paths = [p for p in MODULES if rank(module_name(p)) < TOP and LAYERS[rank(module_name(p))] == layer]
    names = {module_name(p) for p in paths}
    return {module_name(p): {t for _, t in imports_of(p) if t in names and t != module_name(p)} for p in paths}


#: circles found and not broken yet, by layer: listed so that any other circle fails at once; an entry
#: whose circle is gone fails too, so that it is removed (none is left)
KNOWN_CIRCLES: dict[str, list[list[str]]] = {}


@pytest.mark.parametrize("layer", LAYERS)
def test_no_import_circle_within_a_layer(layer):
    graph = layer_graph(layer)
    assert graph, f"layer {layer} has no modules"
    found = circles(graph)
    known = KNOWN_CIRCLES.get(layer, [])
    where = {module_name(p): p for p in MODULES}
    new = [" and ".join(f"{m} (line {line}: imports {t})" for m in group for line, t in imports_of(where[m])
                        if t in group and t != m) for group in found if group not in known]
    assert not new, f"modules of layer {layer} import one another in a circle: {new}"
    gone = [group for group in known if group not in found]
    assert not gone, f"the circle(s) {gone} of layer {layer} are broken: remove them from KNOWN_CIRCLES"


def test_the_circle_finder_sees_direct_and_indirect_circles():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}, "e": set()}) == [["a", "b"], ["c", "d"]]
    assert circles({"a": {"b", "outside"}, "b": set()}) == []


def test_no_chapter_study_imports_another():
    """A newcomer changes one chapter by reading its study and the shared study modules (setting,
    variants, dissect, ending, ...), never another chapter's study: chapter 8 reads the others
    through what they export (``SIDE_BY_SIDE``) and the registry."""
    from advinterp.studies import STUDIES

    chapters = {f"advinterp.studies.{name}" for name in STUDIES.values()}
    found = []
    for path in MODULES:
        importer = module_name(path)
        if importer in chapters:
            found += [f"{importer} line {line}: {target}" for line, target in imports_of(path)
                      if target in chapters and target != importer]
    assert not found, f"a chapter study imports another chapter's study: {found}"


def test_the_chapter_import_check_sees_an_import(monkeypatch):
    fake = PACKAGE / "studies" / "tracing.py"
    src = "from . import consistent_loss as ch4\n"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: src if self == fake else Path.read_bytes(self).decode())
    assert (1, "advinterp.studies.consistent_loss") in imports_of(fake)
