"""The sweep runner on a toy chapter: grid expansion, resume after interruption, failures recorded,
one tidy table."""

from __future__ import annotations

import json

import nbformat
import pandas as pd
import pytest

from advinterp.report import sweeps as sweep

TOY = '''
from advinterp.report import results
if x == 2 and fail_on_two:
    raise RuntimeError("boom at x=2")
results.write_results("99-toy", {"x": x, "y": y}, {"double": 2 * x, "label": y}, results_dir)
'''


@pytest.fixture
def toy(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('x = 1\ny = "a"\nfail_on_two = True\nresults_dir = "results"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(TOY)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, book / "99-toy.ipynb")
    spec = tmp_path / "toy.yaml"
    spec.write_text("name: toy\nruns:\n  - chapter: 99-toy\n    grid: {x: [1, 2, 3]}\n    params: {y: b}\n")
    return book, spec, tmp_path / "runs"


def test_expand_and_run_ids(toy):
    book, spec, _ = toy
    runs = sweep.expand(sweep.load_spec(spec, book))
    assert [r.params for r in runs] == [{"y": "b", "x": 1}, {"y": "b", "x": 2}, {"y": "b", "x": 3}]
    assert len({r.run_id for r in runs}) == 3


def test_failure_is_recorded_resume_skips_finished_runs(toy):
    book, spec, runs_root = toy
    spec_d = sweep.load_spec(spec, book)
    runs = sweep.expand(spec_d)
    root = runs_root / "toy"
    sweep.execute(runs[0], root, notebooks=book)  # an earlier, interrupted sweep finished only this run
    first = (sweep.run_dir(root, runs[0]) / "notebook.ipynb").stat().st_mtime_ns
    table = pd.read_csv(sweep.run_sweep(spec, runs_root, progress_bar=False, notebooks=book))
    assert (sweep.run_dir(root, runs[0]) / "notebook.ipynb").stat().st_mtime_ns == first, "finished run redone"
    assert table.status.tolist() == ["ok", "failed", "ok"]
    assert "boom at x=2" in table.error[1]
    assert table.double.tolist()[0::2] == [2, 6] and table.x.tolist() == [1, 2, 3] and set(table.y) == {"b"}
    # a second pass retries only the failed run (which still fails) and leaves the others alone
    third = (sweep.run_dir(root, runs[2]) / "notebook.ipynb").stat().st_mtime_ns
    sweep.run_sweep(spec, runs_root, progress_bar=False, notebooks=book)
    assert (sweep.run_dir(root, runs[2]) / "notebook.ipynb").stat().st_mtime_ns == third
    status = json.loads((sweep.run_dir(root, runs[1]) / "status.json").read_text())
    assert status["status"] == "failed" and status["params"] == {"y": "b", "x": 2}


@pytest.mark.parametrize("text,match", [("runs: []\nname: t", "runs=\\[\\]"), ("name: t\nruns:\n  - chapter: nope", "chapter='nope'"),
                                        ("name: t\nruns:\n  - chapter: 99-toy\n    grid: {x: 3}", "grid.x=3")])
def test_bad_specs(toy, tmp_path, text, match):
    book, _, _ = toy
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ValueError, match=match):
        sweep.load_spec(bad, book)


def test_a_changed_notebook_invalidates_finished_runs(toy):
    book, spec, runs_root = toy
    runs = sweep.expand(sweep.load_spec(spec, book))
    root = runs_root / "toy"
    sweep.execute(runs[0], root, notebooks=book)
    assert sweep.is_complete(root, runs[0], book)
    nb = nbformat.read(book / "99-toy.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("a new paragraph"))
    nbformat.write(nb, book / "99-toy.ipynb")
    assert not sweep.is_complete(root, runs[0], book)
