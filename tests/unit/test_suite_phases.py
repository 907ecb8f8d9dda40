"""make test's two phases (Makefile: test; tests/nbexec.py): the chapters that reuse chapter 4's models
share its worker, what reads every chapter's results runs in the second phase, and the notebooks the
first phase executes reach the second phase's book build."""

from __future__ import annotations

import inspect
import re

import nbformat
import pytest

import nbexec
from advinterp import studies
from chapter_tools import EXECUTED_DIR, REPO, executed_notebooks, record_cell, seed_execution_cache


def test_every_chapter_reusing_chapter_4s_models_runs_after_it():
    reusing = [stem for stem, module in studies.studies().items()
               if re.search(r"^from \. import variants\b", inspect.getsource(module), re.M)]
    assert "04-consistent-loss" in reusing
    assert nbexec.SHARES_CHAPTER_4[0] == "04-consistent-loss"
    assert set(reusing) <= {*nbexec.SHARES_CHAPTER_4, *nbexec.AFTER_CHAPTER_4}, \
        "add the chapter to nbexec.SHARES_CHAPTER_4 or AFTER_CHAPTER_4"
    groups = {nbexec.group_of(f"book/{stem}.ipynb::Cell 3") for stem in nbexec.SHARES_CHAPTER_4}
    assert groups == {nbexec.CHAPTER_4_GROUP}
    order = nbexec._start_order
    item = lambda path: type("Item", (), {"path": path})()  # noqa: E731
    after = [order(item(REPO / "book" / f"{stem}.ipynb")) for stem in nbexec.AFTER_CHAPTER_4]
    assert min(after) > order(item(REPO / "tests" / "unit" / "test_core.py")), "handed out after the test modules"


def test_groups_keep_a_notebooks_cells_and_a_modules_tests_together():
    g = nbexec.group_of
    assert g("book/01-adversarial-examples.ipynb::Cell 0") == g("book/01-adversarial-examples.ipynb::Cell 7")
    assert g("book/01-adversarial-examples.ipynb::Cell 0") != g("book/02-neurons-and-patches.ipynb::Cell 0")
    assert g("tests/unit/test_core.py::test_a") == g("tests/unit/test_core.py::test_b[x-1]")
    assert g("tests/unit/test_core.py::test_a") != g("tests/unit/test_cache.py::test_a")


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
