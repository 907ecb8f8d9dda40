"""The sweep runner's Ray engine on a local Ray instance with 2 CPUs (no GPU): runs overlap, the table
equals the local engine's, a killed worker is retried, an interrupted driver resumes, seeds split
into runs aggregate to what the chapter reports for all seeds, bad options fail at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from advinterp import sweep as cli
from advinterp import sweeps
from chapter_tools import write_toy_chapter

ray = pytest.importorskip("ray")

#: a chapter in miniature: per-seed values with their spread (as every chapter reports them), a
#: metric pooled over seeds (no spread), and a way to hold a run (sleep, or wait for a file to go)
TOY = '''
import time
from pathlib import Path
from advinterp.report import results
deadline = time.time() + 600
while hold and Path(hold).exists() and time.time() < deadline:
    time.sleep(0.1)
time.sleep(sleep)
metrics = results.with_spread({"score": [x + s ** 2 / 7 for s in seeds]})
metrics.update({"pooled": sum(seeds) + x, "label": f"x{x}"})
results.write_results("99-toy", {"x": x, "seeds": seeds}, metrics, results_dir)
'''


@pytest.fixture(scope="module")
def cluster():
    """One local Ray instance with 2 CPUs for the module; yields its address for other drivers."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             object_store_memory=80 * 1024**2)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture
def book(tmp_path):
    folder = tmp_path / "book"
    write_toy_chapter(folder, 'x = 1\nseeds = [0, 1]\nsleep = 0.0\nhold = ""\nresults_dir = "results"', TOY)
    return folder


def _spec(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nruns:\n  - chapter: 99-toy\n{body}")
    return path


def _statuses(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.glob("99-toy/*/status.json"))]


def test_runs_overlap_and_the_table_equals_the_local_engines(cluster, book, tmp_path):
    spec = _spec(tmp_path, "grid", "    grid: {x: [1, 2, 3, 4]}\n    params: {sleep: 1.0}\n")
    table = pd.read_csv(sweeps.run_sweep(spec, tmp_path / "ray", notebooks=book, progress_bar=False, engine="ray"))
    spans = [(s["started"], s["finished"]) for s in _statuses(tmp_path / "ray" / "grid")]
    assert len(spans) == 4 and all(s["engine"] == "ray" for s in _statuses(tmp_path / "ray" / "grid"))
    overlapping = [(a, b) for i, a in enumerate(spans) for b in spans[i + 1:] if a[0] < b[1] and b[0] < a[1]]
    assert overlapping, f"no two runs ran at the same time: {spans}"
    local = pd.read_csv(sweeps.run_sweep(spec, tmp_path / "local", notebooks=book, progress_bar=False))
    same = [c for c in local.columns if c != "seconds"]
    pd.testing.assert_frame_equal(table[same], local[same])
    assert (table.status == "ok").all()


def test_a_killed_worker_is_retried(cluster, book, tmp_path):
    spec = _spec(tmp_path, "kill", "    grid: {x: [1, 2]}\n    params: {sleep: 4.0}\n")
    root = tmp_path / "runs" / "kill"
    first = sweeps.run_dir(root, sweeps.expand(sweeps.load_spec(spec, book))[0])
    killed: list[int] = []

    def kill_once() -> None:
        deadline = time.time() + 300  # generous: a loaded machine starts kernels slowly
        while time.time() < deadline and not (first / "worker.json").is_file():
            time.sleep(0.05)
        time.sleep(1.0)  # mid-run: the kernel is sleeping
        pid = json.loads((first / "worker.json").read_text())["pid"]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_once)
    killer.start()
    table = pd.read_csv(sweeps.run_sweep(spec, tmp_path / "runs", notebooks=book, progress_bar=False, engine="ray",
                                         max_retries=2))
    killer.join()
    assert killed, "the test did not kill a worker"
    assert (table.status == "ok").all(), table[["status", "error"]]
    assert json.loads((first / "status.json").read_text())["pid"] != killed[0], "the run was not retried"


def test_a_worker_dying_beyond_its_retries_is_recorded_as_failed(cluster, book, tmp_path):
    spec = _spec(tmp_path, "dies", "    params: {sleep: 30.0}\n")
    root = tmp_path / "runs" / "dies"
    (run,) = sweeps.expand(sweeps.load_spec(spec, book))
    stop = threading.Event()

    def keep_killing() -> None:
        seen: set[int] = set()
        while not stop.is_set():
            worker = sweeps.run_dir(root, run) / "worker.json"
            if worker.is_file():
                pid = json.loads(worker.read_text())["pid"]
                if pid not in seen:
                    seen.add(pid)
                    time.sleep(0.5)
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

    killer = threading.Thread(target=keep_killing)
    killer.start()
    try:
        table = pd.read_csv(sweeps.run_sweep(spec, tmp_path / "runs", notebooks=book, progress_bar=False,
                                             engine="ray", max_retries=0))
    finally:
        stop.set()
        killer.join()
    assert table.status.tolist() == ["failed"] and "Worker" in table.error[0], table.error[0]


def test_an_interrupted_driver_resumes_without_redoing_finished_runs(cluster, book, tmp_path):
    hold = tmp_path / "hold"
    hold.touch()
    spec = _spec(tmp_path, "resume", f"    grid: {{x: [1, 2]}}\n  - chapter: 99-toy\n    grid: {{x: [3, 4]}}\n"
                                     f"    params: {{hold: '{hold}'}}\n")
    runs_root = tmp_path / "runs"
    root = runs_root / "resume"
    runs = sweeps.expand(sweeps.load_spec(spec, book))
    command = [sys.executable, "-m", "advinterp.sweep", str(spec), "--runs-dir", str(runs_root), "--notebooks",
               str(book), "--engine", "ray", "--address", cluster]
    # Ctrl-C must reach the driver as it does at a terminal, even when this test itself was started in
    # the background of a non-interactive shell (which starts commands with SIGINT ignored, inherited)
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not all(sweeps.is_complete(root, r, book) for r in runs[:2]):
            time.sleep(0.2)
        assert all(sweeps.is_complete(root, r, book) for r in runs[:2]), "the free runs did not finish"
        driver.send_signal(signal.SIGINT)  # Ctrl-C while runs 3 and 4 wait for the hold file
        driver.wait(timeout=180)
    finally:
        if driver.poll() is None:  # never leave a driver holding the cluster for the next tests
            driver.kill()
            driver.wait()
            hold.unlink(missing_ok=True)
    assert driver.returncode != 0
    assert not any(sweeps.is_complete(root, r, book) for r in runs[2:])
    finished = {r.run_id: json.loads((sweeps.run_dir(root, r) / "status.json").read_text())["started"] for r in runs[:2]}
    hold.unlink()
    assert cli.main(command[3:-2]) == 0  # same sweep, this process's Ray
    for r in runs[:2]:
        assert json.loads((sweeps.run_dir(root, r) / "status.json").read_text())["started"] == finished[r.run_id]
    assert all(sweeps.is_complete(root, r, book) for r in runs)


def test_split_seeds_aggregates_to_the_all_seeds_run(cluster, book, tmp_path):
    seeds = [0, 1, 2]
    split = _spec(tmp_path, "split", f"    split: seeds\n    params: {{x: 3, seeds: {seeds}}}\n")
    whole = _spec(tmp_path, "whole", f"    params: {{x: 3, seeds: {seeds}}}\n")
    table = pd.read_csv(sweeps.run_sweep(split, tmp_path / "runs", notebooks=book, progress_bar=False, engine="ray"))
    reference = pd.read_csv(sweeps.run_sweep(whole, tmp_path / "runs", notebooks=book, progress_bar=False))
    assert len(table) == 1 and table.status[0] == "ok" and table.run[0] == reference.run[0]
    assert table.score[0] == pytest.approx(reference.score[0], rel=1e-12)
    assert table.score_std[0] == pytest.approx(reference.score_std[0], rel=1e-12) and table.score_std[0] > 0
    assert table.label[0] == reference.label[0]
    assert "pooled" not in table.columns and "left empty: pooled" in table.aggregated[0] and "3 single-seed runs" in table.aggregated[0]
    singles = pd.read_csv(tmp_path / "runs" / "split" / "runs.csv")
    assert singles.seeds.tolist() == ["[0]", "[1]", "[2]"] and (singles.status == "ok").all()


def test_split_takes_the_chapters_own_seeds(book, tmp_path):
    spec = sweeps.load_spec(_spec(tmp_path, "own", "    split: seeds\n"), book)
    assert [r.params["seeds"] for r in sweeps.expand(spec)] == [[0], [1]]


@pytest.mark.parametrize("body,match", [("    split: grid\n", "split='grid'"),
                                        ("    split: seeds\n    grid: {seeds: [[0]]}\n", "grid.seeds")])
def test_bad_split(book, tmp_path, body, match):
    with pytest.raises(ValueError, match=match):
        sweeps.load_spec(_spec(tmp_path, "bad", body), book)


def test_bad_ray_options_fail_at_once_naming_the_option(cluster, book, tmp_path, capsys):
    spec = _spec(tmp_path, "bad", "")
    base = [str(spec), "--runs-dir", str(tmp_path / "runs"), "--notebooks", str(book)]
    with pytest.raises(SystemExit):
        cli.main([*base, "--engine", "spark"])
    assert "--engine" in capsys.readouterr().err
    with pytest.raises(ValueError, match="engine='spark'"):
        sweeps.run_sweep(spec, tmp_path / "runs", notebooks=book, engine="spark")
    with pytest.raises(SystemExit):
        cli.main([*base, "--gpus-per-run", "1"])  # a Ray option without the Ray engine
    assert "--gpus-per-run only with --engine ray" in capsys.readouterr().err
    start = time.time()
    assert cli.main([*base, "--engine", "ray", "--gpus-per-run", "1"]) == 2  # this cluster has no GPU
    assert "--gpus-per-run=1.0 is not allowed" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "bad").exists(), "a run started on a cluster that cannot hold it"
    assert cli.main([*base, "--engine", "ray", "--address", "127.0.0.1:9"]) == 2  # nothing listens there
    assert "--address='127.0.0.1:9' is not allowed" in capsys.readouterr().err
    assert cli.main([*base, "--engine", "ray", "--address", "nohost"]) == 2
    assert "--address='nohost'" in capsys.readouterr().err
    assert time.time() - start < 60  # no option waits for Ray's own connection timeout


def test_importing_advinterp_does_not_import_ray():
    code = "import sys, advinterp, advinterp.sweep, advinterp.sweeps; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
