"""The Ray engine of the sweep runner: every run of a sweep becomes a Ray task with its own CPUs and
GPUs, so runs proceed in parallel up to what the cluster offers (``python -m advinterp.sweep SPEC
--engine ray``; the spec is :mod:`advinterp.sweeps.spec`, the run contract
:mod:`advinterp.sweeps.runs`).

* **Where outputs land.** A worker writes its run's folder (notebook, results, ``status.json``)
  itself, atomically, under the sweep's runs folder, exactly as the local engine does; no two tasks
  share a folder. The runs folder, the checkout and its environment are therefore assumed to be on
  a **shared filesystem** seen by every node at the same path (the usual set-up of a Slurm cluster:
  home or scratch mounted everywhere; trivially true on one multi-GPU machine). The driver checks
  after each run that the run's ``status.json`` is visible to it and stops with a message saying
  so when it is not.
* **Resume.** The driver submits only the runs that are not complete
  (:func:`advinterp.sweeps.runs.is_complete`), so a stopped sweep resumes where it stopped.
* **Workers that die.** A run whose worker process dies (killed, out of memory, node lost) is
  retried by Ray up to ``max_retries`` times (Ray's own task retries); after that the driver
  records it as failed with Ray's error. A run whose chapter raises is not retried: the worker
  records the error and the sweep goes on.
* **Resources.** ``gpus_per_run`` and ``cpus_per_run`` are the Ray resources of each task; Ray
  sets ``CUDA_VISIBLE_DEVICES`` for the worker, which the chapter's kernel inherits. They are
  checked against the nodes of the cluster before anything runs.

Ray is imported only here, and only when this engine is used (:data:`advinterp.sweeps.ENGINES` imports
this module when it is chosen): importing :mod:`advinterp` or :mod:`advinterp.sweep` does not import it.
"""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path
from typing import Any

from ..core import progress
from ..core.validation import check_int, check_number, fail
from .runs import execute, record_failure, run_dir
from .spec import Run


def _ray() -> Any:
    try:
        import ray
    except ImportError as err:  # pragma: no cover - ray is pinned in requirements.txt
        raise ImportError("engine='ray' needs Ray: pip install -r requirements.txt (it pins ray)") from err
    return ray


def _reachable(address: str, timeout: float = 3.0) -> None:
    """``HOST:PORT`` must accept a TCP connection (Ray itself would wait a long time)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        fail("address", address, "'auto' (the cluster started on this machine) or HOST:PORT of a Ray head node")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as err:
        fail("address", address, f"a reachable Ray head node ({type(err).__name__}: {err}); start one with "
             "`ray start --head` and pass the address it prints")


def connect(address: str | None = None, *, num_cpus: int | None = None) -> bool:
    """Connect to the Ray cluster at ``address`` (``'auto'``: the one started on this machine;
    ``HOST:PORT``: a head node), or, with ``None``, reuse this process's Ray if it has one, else start
    a local instance with this machine's cores and GPUs (``num_cpus`` limits the cores). Returns
    whether this call started Ray (and should shut it down)."""
    ray = _ray()
    if address not in (None, "auto"):
        _reachable(address)
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    if address is None:
        ray.init(num_cpus=num_cpus, **options)
        return True
    try:
        ray.init(address=address, **options)
    except ConnectionError as err:
        fail("address", address, f"a running Ray cluster ({err}); start one with `ray start --head`")
    return True


def check_resources(gpus_per_run: float, cpus_per_run: float) -> None:
    """Every run must fit on one node of the connected cluster."""
    nodes = [n["Resources"] for n in _ray().nodes() if n.get("Alive")]
    most_gpus = max((n.get("GPU", 0.0) for n in nodes), default=0.0)
    most_cpus = max((n.get("CPU", 0.0) for n in nodes), default=0.0)
    if gpus_per_run > most_gpus:
        fail("gpus_per_run", gpus_per_run, f"at most the GPUs of one node of the Ray cluster ({most_gpus:g}; "
             "use 0 on a cluster without GPUs)")
    if cpus_per_run > most_cpus:
        fail("cpus_per_run", cpus_per_run, f"at most the CPUs of one node of the Ray cluster ({most_cpus:g})")


def _task(run: dict[str, Any], root: str, notebooks: str | None) -> dict[str, Any]:
    """What a Ray worker executes: one run, written to its folder (:func:`advinterp.sweeps.runs.execute`)."""
    return execute(Run(**run), Path(root), notebooks=None if notebooks is None else Path(notebooks), engine="ray")


def execute_all(runs: list[Run], root: Path, *, name: str, notebooks: Path | None = None,
                address: str | None = None, gpus_per_run: float = 0, cpus_per_run: float = 1, max_retries: int = 2,
                progress_bar: bool = True) -> list[dict[str, Any]]:
    """Execute ``runs`` as Ray tasks (``gpus_per_run`` GPUs and ``cpus_per_run`` CPUs each, a dead
    worker retried up to ``max_retries`` times) and return their statuses in the order given; a
    progress bar named after sweep ``name`` counts finished runs. Interrupting the driver cancels the
    runs in flight (their folders stay incomplete, so the next call redoes them)."""
    check_number("gpus_per_run", gpus_per_run, lo=0)
    check_number("cpus_per_run", cpus_per_run, lo=0)
    check_int("max_retries", max_retries, lo=0)
    ray = _ray()
    started = connect(address)
    try:
        check_resources(gpus_per_run, cpus_per_run)
        if not runs:
            return []
        task = ray.remote(_task).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=int(max_retries),
                                         retry_exceptions=False, name="advinterp-sweep-run")
        where = str(root.resolve())
        nb = None if notebooks is None else str(Path(notebooks).resolve())
        pending = {task.remote(dataclasses.asdict(run), where, nb): i for i, run in enumerate(runs)}
        statuses: list[dict[str, Any]] = [{} for _ in runs]
        bar = progress.bar(total=len(runs), desc=f"sweep {name} on Ray ({len(runs)} runs)", disable=not progress_bar)
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    i = pending.pop(ref)
                    statuses[i] = _finish(ray, ref, runs[i], root, notebooks)
                    bar.update(1)
        except BaseException:  # Ctrl-C or a driver error: stop the runs in flight
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        finally:
            bar.close()
        return statuses
    finally:
        if started:
            ray.shutdown()


def _finish(ray: Any, ref: Any, run: Run, root: Path, notebooks: Path | None) -> dict[str, Any]:
    """The status of a finished task; a task whose worker died beyond its retries is recorded as
    failed here. Its status file must be visible to the driver (shared filesystem)."""
    try:
        status = ray.get(ref)
    except ray.exceptions.RayError as err:
        return record_failure(run, root, f"{type(err).__name__}: {err}", notebooks=notebooks, engine="ray")
    if not (run_dir(root, run) / "status.json").is_file():
        raise RuntimeError(f"run {run.chapter}/{run.run_id} finished on {status.get('host')} but its folder is not "
                           f"visible here under {root}: engine='ray' needs the runs folder on a filesystem shared "
                           "by every node (see advinterp.sweeps.ray)")
    return status
