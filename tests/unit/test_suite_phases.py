"""make test's two phases (Makefile: test; tests/nbexec.py): the chapters that reuse chapter 4's models
start beside it or after the others, what reads every chapter's results runs in the second phase,
and the notebooks the first phase executes reach the second phase's book build."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

import nbexec
from advinterp import studies
from advinterp.sweeps import book
from chapter_tools import EXECUTED_DIR, REPO, executed_notebooks, record_cell, seed_execution_cache


def test_chapters_reusing_chapter_4s_models_start_with_it_or_after_every_other():
    """A chapter that loads chapter 4's variants either is long and starts beside it (it trains its own
    models first and then loads chapter 4's, or waits for them: computed once either way), or is short
    and starts after every other chapter, when they are trained (make test's workers and make book's)."""
    reusing = [stem for stem, module in studies.studies().items()
               if re.search(r"^from \. import variants\b", inspect.getsource(module), re.M)]
    assert "04-consistent-loss" in reusing
    assert book.LONGEST_FIRST[0] == "04-consistent-loss"
    for stem in reusing:
        assert stem in book.LONGEST_FIRST or stem in book.LAST, f"add {stem} to advinterp.sweeps.book.LAST"
    chapters = [f"{stem}.ipynb" for stem in studies.studies() if stem not in book.READERS]
    first, _ = book.plan([REPO / "book" / c for c in chapters])
    assert [p.stem for p in first][-len(book.LAST):] == list(book.LAST)


def test_workers_are_handed_notebooks_longest_first_then_test_modules():
    names = ("tests/unit/test_core.py", "book/01-adversarial-examples.ipynb", "book/05-tracing-and-detection.ipynb",
             "book/04-consistent-loss.ipynb", "tests/unit/test_cache.py", "book/07-sensitivity-regularization.ipynb")
    items = [SimpleNamespace(path=REPO / p) for p in names]
    ordered = [Path(i.path).name for i in sorted(items, key=nbexec._start_order)]
    assert ordered == ["04-consistent-loss.ipynb", "07-sensitivity-regularization.ipynb",
                       "01-adversarial-examples.ipynb", "05-tracing-and-detection.ipynb",
                       "test_core.py", "test_cache.py"]


def _make_variable(name: str) -> list[str]:
    text = (REPO / "Makefile").read_text().replace("\\\n", " ")
    line = next(l for l in text.splitlines() if l.startswith(f"{name} :="))
    return line.split(":=", 1)[1].split()


def test_what_reads_every_chapters_results_runs_in_the_second_phase():
    phase2 = _make_variable("PHASE2")
    assert "tests/book" in phase2
    readers = [p for p in sorted((REPO / "book").glob("*.ipynb"))
               if re.search(r"import[^\n]*\b(scorecard|side_by_side)\b|study\(\"08", p.read_text())]
    assert readers, "no notebook reads the scorecard or chapter 8's study: update this test"
    for p in readers:
        assert f"book/{p.name}" in phase2, p.name
    phase1 = _make_variable("PHASE1_ARGS")
    for p in readers:
        assert f"--ignore=book/{p.name}" in phase1, p.name
    assert {p.stem for p in readers} == set(book.READERS), "make book's executor runs them last too"


def test_executed_notebooks_reach_another_process(tmp_path, monkeypatch):
    folder = tmp_path / "executed"
    monkeypatch.setenv(EXECUTED_DIR, str(folder))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("x")])
    path = str(REPO / "book" / "99-toy-phases.ipynb")
    record_cell(path, nb, 0, [], True)
    assert not (folder / "99-toy-phases.ipynb").exists(), "written before every cell passed"
    record_cell(path, nb, 1, [nbformat.v4.new_output("execute_result", {"text/plain": "1"})], True)
    written = nbformat.read(folder / "99-toy-phases.ipynb", as_version=4)
    assert written.cells[1].outputs[0]["data"]["text/plain"] == "1"
    import chapter_tools

    monkeypatch.setattr(chapter_tools, "EXECUTED", {})  # another process: only the folder
    assert list(executed_notebooks()) == [path]
    assert seed_execution_cache(tmp_path / "out") == [path]
    record_cell(path, nb, 1, None, False)  # a failed cell takes the notebook back
    assert not (folder / "99-toy-phases.ipynb").exists()


@pytest.mark.parametrize("variable", ["PHASE2", "PHASE1_ARGS"])
def test_the_phases_name_existing_paths(variable):
    paths = [a.removeprefix("--ignore=") for a in _make_variable(variable) if "/" in a or a in ("book", "tests")]
    assert paths
    for path in paths:
        assert (REPO / path).exists(), path
