"""One run of a sweep: its folder, whether it is complete, executing it, recording its failure.

Every engine (:data:`advinterp.sweeps.ENGINES`) executes a run through :func:`execute`, which runs
the chapter with papermill's Python API and writes ``<root>/<chapter>/<run>/notebook.ipynb``, its
results JSON and a ``status.json``, each atomically, into that run's own folder. A run whose results
exist with status ``ok`` is complete (:func:`is_complete`) unless the chapter notebook or the library
has changed since, so an interrupted sweep resumes where it stopped; a failing run is recorded with
its error and the others go on. A kernel that dies while starting (concurrent runs racing for one
TCP port) has run nothing of the chapter: the run starts another (:data:`KERNEL_STARTS` in all).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..core import paths
from ..core.cache import atomic_write_text, library_version, notebook_digest
from .spec import Run, notebook_default


def run_dir(root: Path, run: Run) -> Path:
    return root / run.chapter / run.run_id


def is_complete(root: Path, run: Run, notebooks: Path | None = None) -> bool:
    """Finished with status ``ok``, its results present, and made by the current notebook and library."""
    folder = run_dir(root, run)
    status = folder / "status.json"
    if not status.is_file() or not (folder / "results" / f"{run.chapter}.json").is_file():
        return False
    recorded = json.loads(status.read_text())
    return (recorded.get("status") == "ok" and recorded.get("notebook") == notebook_digest(run.chapter, notebooks)
            and recorded.get("library") == library_version())


def adopt(run: Run, root: Path, *, notebooks: Path | None = None, results_dir: str | Path = "results") -> bool:
    """Reuse the chapter's own results file (``<results_dir>/<chapter>.json``, written when the
    chapter ran with its defaults, e.g. earlier in the same book build) as this run's results when it
    was made with exactly this run's parameters (its recorded ``overrides`` equal the run's) by the
    current notebook and library. Returns whether the run was adopted (its status says so)."""
    source = paths.resolve_results_dir(results_dir) / f"{run.chapter}.json"
    if not source.is_file():
        return False
    payload = json.loads(source.read_text())
    provenance = payload.get("provenance") or {}
    # a run parameter equal to the chapter's default is no override (e.g. a grid point at the default)
    wanted = {k: v for k, v in run.params.items() if v != notebook_default(run.chapter, k, notebooks)}
    if (payload.get("overrides") != json.loads(json.dumps(wanted, default=str))
            or provenance.get("notebook") != notebook_digest(run.chapter, notebooks)
            or provenance.get("library") != library_version()):
        return False
    folder = run_dir(root, run)
    atomic_write_text(source.read_text(), folder / "results" / f"{run.chapter}.json")
    status = {"status": "ok", "chapter": run.chapter, "params": run.params, "seconds": 0.0,
              "adopted_from": str(source), "notebook": provenance["notebook"], "library": provenance["library"]}
    atomic_write_text(json.dumps(status, indent=1, default=str), folder / "status.json")
    return True


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Redirect file descriptor 2 (inherited by kernel processes) to ``path`` within the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


#: how a kernel that died while starting is reported (jupyter_client). Kernels started at the same time by
#: different processes (a sweep's concurrent runs) can pick the same free TCP port; the loser dies
#: binding it ("Address already in use" in the run's kernel.log) before it runs a line of the chapter
KERNEL_DIED = "Kernel died before replying to kernel_info"
#: kernel starts a run gets when its kernel dies that way (a chapter's own error is never retried)
KERNEL_STARTS = 3


def execute(run: Run, root: Path, *, timeout: int = 3600, notebooks: Path | None = None,
            engine: str = "local") -> dict[str, Any]:
    """Run one chapter with papermill; returns (and writes) its status, which records where and
    when it ran (``host``, ``pid``, ``started`` and ``finished`` as Unix times)."""
    import papermill as pm

    notebooks = notebooks or paths.book_dir()
    folder = run_dir(root, run)
    folder.mkdir(parents=True, exist_ok=True)
    params = {**run.params, "results_dir": str((folder / "results").resolve())}
    start = time.time()
    where = {"engine": engine, "host": socket.gethostname(), "pid": os.getpid(), "started": start}
    atomic_write_text(json.dumps(where), folder / "worker.json")  # who is running it now (a retry overwrites)
    try:
        for attempt in range(KERNEL_STARTS):
            try:
                with _stderr_to(folder / "kernel.log"):  # kernel chatter goes to the run's log, not the caller's
                    pm.execute_notebook(str(notebooks / f"{run.chapter}.ipynb"), str(folder / "notebook.ipynb"),
                                        parameters=params, cwd=str(notebooks), progress_bar=False,
                                        execution_timeout=timeout, kernel_name="python3")
                break
            except RuntimeError as err:  # a kernel that never started ran none of the chapter: start another
                if KERNEL_DIED not in str(err) or attempt == KERNEL_STARTS - 1:
                    raise
        status = {"status": "ok"}
    except Exception as err:  # recorded, the sweep goes on
        status = {"status": "failed", "error": f"{type(err).__name__}: {err}"[-4000:],
                  "traceback": traceback.format_exc()[-4000:]}
    end = time.time()
    status.update({"chapter": run.chapter, "params": run.params, "seconds": round(end - start, 1), **where,
                   "finished": end, "notebook": notebook_digest(run.chapter, notebooks), "library": library_version()})
    atomic_write_text(json.dumps(status, indent=1, default=str), folder / "status.json")
    return status


def record_failure(run: Run, root: Path, error: str, *, notebooks: Path | None = None,
                   engine: str = "local") -> dict[str, Any]:
    """Write a ``failed`` status for a run that ended without writing its own (its worker died)."""
    status = {"status": "failed", "error": error[-4000:], "chapter": run.chapter, "params": run.params,
              "engine": engine, "notebook": notebook_digest(run.chapter, notebooks), "library": library_version()}
    folder = run_dir(root, run)
    atomic_write_text(json.dumps(status, indent=1, default=str), folder / "status.json")
    return status
