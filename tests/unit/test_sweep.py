"""The sweep runner on a toy chapter: grid expansion, resume after interruption, failures recorded,
one tidy table."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pandas as pd
import pytest

from advinterp import sweeps as sweep
from advinterp.core import paths
from advinterp.core.cache import notebook_digest
from chapter_tools import write_toy_chapter

TOY = '''
from advinterp.report import results
if x == 2 and fail_on_two:
    raise RuntimeError("boom at x=2")
results.write_results("99-toy", {"x": x, "y": y}, {"double": 2 * x, "label": y}, results_dir)
'''


@pytest.fixture
def toy(tmp_path):
    book = tmp_path / "book"
    write_toy_chapter(book, 'x = 1\ny = "a"\nfail_on_two = True\nresults_dir = "results"', TOY)
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


def test_a_kernel_that_died_starting_is_started_again_a_chapters_error_is_not(toy, monkeypatch):
    """Concurrent runs' kernels can race for one TCP port; the loser dies before running anything and
    the run starts another kernel (at most sweeps.runs.KERNEL_STARTS), while an error of the chapter
    itself is recorded at once."""
    import papermill

    from advinterp.sweeps import runs as runs_module

    book, spec, runs_root = toy
    run = sweep.expand(sweep.load_spec(spec, book))[0]
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) < runs_module.KERNEL_STARTS:
            raise RuntimeError(runs_module.KERNEL_DIED)

    monkeypatch.setattr(papermill, "execute_notebook", flaky)
    assert sweep.execute(run, runs_root / "a", notebooks=book)["status"] == "ok"
    assert len(calls) == runs_module.KERNEL_STARTS
    calls.clear()

    def always_dies(*args, **kwargs):
        calls.append(1)
        raise RuntimeError(runs_module.KERNEL_DIED)

    monkeypatch.setattr(papermill, "execute_notebook", always_dies)
    failed = sweep.execute(run, runs_root / "b", notebooks=book)
    assert failed["status"] == "failed" and len(calls) == runs_module.KERNEL_STARTS
    calls.clear()

    def chapter_error(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("boom in the chapter")

    monkeypatch.setattr(papermill, "execute_notebook", chapter_error)
    assert sweep.execute(run, runs_root / "c", notebooks=book)["status"] == "failed" and calls == [1]


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


def test_a_default_run_is_adopted_from_the_chapters_own_results(toy, tmp_path):
    """Chapter 8 in a book build: the chapter has just run with its defaults; the sweep reuses that
    results file instead of executing the chapter again, but only if notebook and library match."""
    from advinterp.core.cache import library_version

    book, _, runs_root = toy
    spec = tmp_path / "default.yaml"
    spec.write_text("name: plain\nruns:\n  - chapter: 99-toy\n")
    results_dir = tmp_path / "results"
    results_dir.mkdir()
    payload = {"chapter": "99-toy", "params": {"x": 1}, "metrics": {"double": 42}, "overrides": {},
               "provenance": {"notebook": notebook_digest("99-toy", book), "library": library_version()}}
    (results_dir / "99-toy.json").write_text(json.dumps(payload))
    table = pd.read_csv(sweep.run_sweep(spec, runs_root, progress_bar=False, notebooks=book,
                                        reuse_results=results_dir))
    (run,) = sweep.expand(sweep.load_spec(spec, book))
    folder = sweep.run_dir(runs_root / "plain", run)
    assert table.status.tolist() == ["ok"] and table.double.tolist() == [42]
    assert not (folder / "notebook.ipynb").exists(), "the adopted run was executed"
    assert json.loads((folder / "status.json").read_text())["adopted_from"].endswith("99-toy.json")
    assert sweep.is_complete(runs_root / "plain", run, book)
    # made by another library version, or with other parameters: executed, not adopted
    for change in ({"provenance": {**payload["provenance"], "library": "0" * 16}}, {"overrides": {"x": 5}}):
        (results_dir / "99-toy.json").write_text(json.dumps({**payload, **change}))
        table = pd.read_csv(sweep.run_sweep(spec, runs_root / "again", progress_bar=False, notebooks=book,
                                            reuse_results=results_dir, force=False))
        assert table.double.tolist() == [2]
        assert (sweep.run_dir(runs_root / "again" / "plain", run) / "notebook.ipynb").exists()
        import shutil

        shutil.rmtree(runs_root / "again")


def test_results_record_overrides_and_provenance(tmp_path):
    from advinterp.core.cache import library_version
    from advinterp.report import results
    from advinterp.studies import transfer

    params = {**transfer.CHAPTER.defaults, "eps": 0.1}
    path = results.write_results(transfer.CHAPTER, params, {"m": 1.0}, tmp_path)
    payload = json.loads(path.read_text())
    assert payload["overrides"] == {"eps": 0.1}
    assert payload["provenance"] == {"notebook": notebook_digest(transfer.CHAPTER.stem),
                                     "library": library_version()}


@pytest.mark.parametrize("path", sorted((paths.repo_root() / "configs" / "sweeps").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_shipped_sweep_spec_loads(path):
    runs = sweep.expand(sweep.load_spec(path))
    assert runs and len({(r.chapter, r.run_id) for r in runs}) == len(runs)


def test_params_file_and_top_level_params_reach_every_run(toy, tmp_path):
    book, _, _ = toy
    common = tmp_path / "common.yaml"
    common.write_text("x: 7\ny: from-file\nfail_on_two: false\n")
    spec = tmp_path / "common-spec.yaml"
    spec.write_text(f"name: c\nparams_file: {common}\nparams: {{y: top}}\nruns:\n  - chapter: 99-toy\n"
                    "  - chapter: 99-toy\n    grid: {x: [1, 2]}\n    params: {y: block}\n")
    runs = sweep.expand(sweep.load_spec(spec, book))
    assert [r.params for r in runs] == [{"x": 7, "y": "top", "fail_on_two": False},
                                        {"x": 1, "y": "block", "fail_on_two": False},
                                        {"x": 2, "y": "block", "fail_on_two": False}]
    assert runs[1].run_id.startswith("x=1-") and runs[0].run_id.startswith("default-")
    forced = sweep.expand(sweep.load_spec(spec, book, overrides={"y": "cli", "x": 9}))  # --set wins over all
    assert [r.params for r in forced] == [{"x": 9, "y": "cli", "fail_on_two": False}]  # the same run once
    spec.write_text("name: c\nparams_file: nowhere.yaml\nruns:\n  - chapter: 99-toy\n")
    with pytest.raises(ValueError, match="params_file='nowhere.yaml'"):
        sweep.load_spec(spec, book)


def test_each_run_is_given_only_the_names_its_chapter_declares(toy, tmp_path):
    """A book-wide params_file (a tier's configuration) and --set reach each chapter with its own names only:
    papermill would warn once for each other one."""
    book, _, _ = toy
    write_toy_chapter(book, 'x = 1\nresults_dir = "results"', "pass", stem="98-other")
    common = tmp_path / "book-wide.yaml"
    common.write_text("x: 7\ny: from-file\nfail_on_two: false\n")
    spec = tmp_path / "two-chapters.yaml"
    spec.write_text(f"name: c\nparams_file: {common}\nruns:\n  - chapter: 99-toy\n  - chapter: 98-other\n")
    runs = sweep.expand(sweep.load_spec(spec, book, overrides={"y": "cli", "x": 3}))
    assert [(r.chapter, r.params) for r in runs] == [("99-toy", {"x": 3, "y": "cli", "fail_on_two": False}),
                                                     ("98-other", {"x": 3})]


def test_a_name_no_chapter_of_the_sweep_declares_stops_it_before_anything_runs(toy, tmp_path):
    book, spec, runs_root = toy
    with pytest.raises(ValueError, match=r"^--set=\['z'\] is not allowed: .*no chapter of the sweep declares"):
        sweep.load_spec(spec, book, overrides={"z": 1})
    with pytest.raises(ValueError, match=r"did you mean 'y'"):
        sweep.load_spec(spec, book, overrides={"yy": 1})
    typo = tmp_path / "typo.yaml"
    typo.write_text("name: t\nruns:\n  - chapter: 99-toy\n    grid: {xx: [1, 2]}\n")
    with pytest.raises(ValueError, match=r"^99-toy grid=\['xx'\] is not allowed: .*did you mean 'x'"):
        sweep.load_spec(typo, book)
    assert not runs_root.exists()


def test_writing_results_imports_no_torch():
    """A chapter's results file is written without torch (its import alone takes seconds): a sweep's
    runs, the toy chapters of these tests and the scorecard start their kernels that much faster."""
    code = "import sys, advinterp.report.results; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
