"""Execute the book's notebooks on every core into Jupyter Book's execution cache (``make book``).

Jupyter Book 1.x executes notebooks one after another, each kernel using both of a small machine's
cores for its arithmetic and leaving one idle in the single-threaded parts of a chapter (kernel
start, imports, plotting, dissection tables); two one-thread kernels side by side do the arithmetic in
the same time and overlap those parts. :func:`execute_book` therefore executes the notebooks the build would execute
(those without a cached execution of their current code) in ``workers`` processes of one thread
each, longest first (:func:`start_rank`), then the notebooks that read every chapter's results
(:data:`READERS`) after them with every thread, and puts each executed notebook into the
execution cache (``<root>/_build/.jupyter_cache``), where ``jupyter-book build`` finds it and renders
it without executing it again. Chapters that reuse another chapter's models run side by side
safely: a model (or any cached tensor) is computed once, the other process waits for it
(:func:`advinterp.core.cache.exclusive`).

A notebook that fails is reported and left out of the cache: the build then executes it and shows
its error the way it always does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import yaml

from ..core.validation import fail

#: notebooks that read the results every chapter writes (chapter 8's table, the introduction's
#: scorecard): they run after all others (and in make test's second phase; tests/unit/test_suite_phases.py)
READERS = ("08-side-by-side", "intro")
#: the chapters that take longest on the embedded default, started first so that the shorter ones
#: even out the workers' ends (only the order depends on it)
LONGEST_FIRST = ("04-consistent-loss", "07-sensitivity-regularization", "06-error-detection")
#: short chapters that only load models a longer one trains (chapter 4's variants): started after every
#: other chapter, they find the models trained instead of waiting for them (both orders give the same
#: models; :func:`advinterp.core.cache.exclusive`)
LAST = ("05-tracing-and-detection",)
#: what the execution of one notebook may take (_config.yml's execute.timeout)
DEFAULT_TIMEOUT = 1200


@dataclass(frozen=True)
class Executed:
    """One notebook's execution: its stem, whether it succeeded, its seconds and error if any."""

    stem: str
    ok: bool
    seconds: float
    error: str = ""


def toc_notebooks(root: Path) -> list[Path]:
    """The notebooks of the book's table of contents (``_toc.yml``), in its order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    return [root / f"{f}.ipynb" for f in files if (root / f"{f}.ipynb").is_file()]


def start_rank(stem: str) -> int:
    """Where a chapter starts among the others: :data:`LONGEST_FIRST` in its order, then the rest, then
    :data:`LAST` (make test's first phase hands its notebooks out in this order too, tests/nbexec.py)."""
    if stem in LONGEST_FIRST:
        return LONGEST_FIRST.index(stem)
    return len(LONGEST_FIRST) + (stem in LAST)


def plan(notebooks: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """The two stages: every notebook but :data:`READERS`, by :func:`start_rank` (stable); then the readers."""
    first = sorted((p for p in notebooks if p.stem not in READERS), key=lambda p: start_rank(p.stem))
    return first, [p for p in notebooks if p.stem in READERS]


def _execute(path: str, threads: int | None, timeout: int) -> tuple[dict | None, Executed]:
    """Execute one notebook in its folder (a worker process); the executed notebook or the error."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.perf_counter()
    try:  # no timings in the cells' metadata: the cache hashes it, the build looks up the source's hash
        NotebookClient(nb, timeout=timeout, allow_errors=False, record_timing=False,
                       resources={"metadata": {"path": str(Path(path).parent)}}).execute(env=env)
    except Exception as error:  # reported; the build executes it again and shows the error in place
        return None, Executed(Path(path).stem, False, time.perf_counter() - start, f"{type(error).__name__}: {error}")
    return dict(nb), Executed(Path(path).stem, True, time.perf_counter() - start)


def execute_book(root: Path, *, workers: int = 2, timeout: int = DEFAULT_TIMEOUT,
                 report: Callable[[Executed], None] = lambda e: None) -> list[Executed]:
    """Execute the notebooks of ``root``'s book that have no cached execution of their current code,
    and cache them (see the module docstring). Returns one :class:`Executed` per notebook run."""
    if workers < 1:
        fail("workers", workers, "at least 1 (processes executing notebooks side by side)")
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(root / "_build" / ".jupyter_cache"))

    def cached(path: Path) -> bool:
        try:
            cache.match_cache_notebook(nbformat.read(path, as_version=4))
            return True
        except KeyError:
            return False

    first, readers = plan([p for p in toc_notebooks(root) if not cached(p)])
    done: list[Executed] = []

    def keep(path: Path, nb: dict | None, executed: Executed) -> None:
        if nb is not None:
            cache.cache_notebook_bundle(CacheBundleIn(nbformat.from_dict(nb), str(path)), check_validity=False,
                                        overwrite=True)
        done.append(executed)
        report(executed)

    one_thread = 1 if workers > 1 else None
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(_execute, str(p), one_thread, timeout): p for p in first}
        for future in as_completed(futures):
            keep(futures[future], *future.result())
    for path in readers:  # every thread: nothing else runs now
        keep(path, *_execute(str(path), None, timeout))
    return done
