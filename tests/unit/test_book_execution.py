"""make book's executor (advinterp.sweeps.book): notebooks executed side by side into Jupyter Book's
execution cache, the readers of every chapter's results after the others, nothing executed twice, a
failing notebook reported and left to the build."""

from __future__ import annotations

import nbformat
import pytest
import yaml

from advinterp import execute as cli
from advinterp.sweeps import book


def _notebook(path, source: str) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def toy_book(tmp_path):
    """A book whose reader (08-side-by-side) needs what two chapters wrote, one chapter failing."""
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump({"format": "jb-book", "root": "intro", "parts": [
        {"caption": "c", "chapters": [{"file": "01-a"}, {"file": "02-b"}, {"file": "03-broken"},
                                      {"file": "08-side-by-side"}]}]}))
    _notebook(tmp_path / "intro.ipynb", "print('intro')")
    _notebook(tmp_path / "01-a.ipynb", "import os\nopen('a.txt', 'w').write(os.environ.get('OMP_NUM_THREADS', '-'))")
    _notebook(tmp_path / "02-b.ipynb", "open('b.txt', 'w').write('b')")
    _notebook(tmp_path / "03-broken.ipynb", "raise RuntimeError('this chapter fails')")
    _notebook(tmp_path / "08-side-by-side.ipynb", "print(open('a.txt').read() + open('b.txt').read())")
    return tmp_path


def test_the_book_executes_into_the_cache_readers_last_and_once(toy_book):
    seen = []
    done = book.execute_book(toy_book, workers=2, report=seen.append)
    by_stem = {e.stem: e for e in done}
    assert set(by_stem) == {"intro", "01-a", "02-b", "03-broken", "08-side-by-side"}
    assert not by_stem["03-broken"].ok and "this chapter fails" in by_stem["03-broken"].error
    assert all(e.ok for s, e in by_stem.items() if s != "03-broken")
    order = [e.stem for e in seen]
    assert {order[-2], order[-1]} == {"intro", "08-side-by-side"}, order  # the readers, after all others
    assert (toy_book / "a.txt").read_text() == "1", "a worker's kernel runs one thread"
    from jupyter_cache import get_cache

    cache = get_cache(str(toy_book / "_build" / ".jupyter_cache"))
    reader = cache.match_cache_notebook(nbformat.read(toy_book / "08-side-by-side.ipynb", as_version=4))
    outputs = cache.get_cache_bundle(reader.pk).nb.cells[0].outputs
    assert outputs[0]["text"].strip() == "1b"
    again = book.execute_book(toy_book, workers=2)
    assert [e.stem for e in again] == ["03-broken"], "a cached notebook was executed again"


def test_plan_runs_the_longest_first_and_the_readers_last(tmp_path):
    paths = [tmp_path / f"{s}.ipynb" for s in ("intro", "01-adversarial-examples", "04-consistent-loss",
                                              "07-sensitivity-regularization", "08-side-by-side")]
    first, readers = book.plan(paths)
    assert [p.stem for p in first][:2] == ["04-consistent-loss", "07-sensitivity-regularization"]
    assert [p.stem for p in readers] == ["intro", "08-side-by-side"]


def test_bad_workers_are_refused(toy_book, capsys):
    with pytest.raises(ValueError, match="workers"):
        book.execute_book(toy_book, workers=0)
    with pytest.raises(SystemExit):
        cli.main(["--root", str(toy_book), "--workers", "0"])
    assert "workers=0" in capsys.readouterr().err
