"""A sweep's table: every run gathered into ``<root>/table.csv`` (one row per run: the chapter, the
parameters and the metrics as columns) and every single run into ``<root>/runs.csv``.

The runs of a ``split: seeds`` block make one row for the group, with what the chapter would have
reported for all its seeds at once: for every metric ``m`` that the chapter reports with a spread
``m_std``, the mean and sample std of the runs' ``m``
(:func:`advinterp.report.results.aggregate_seed_runs`). A metric without a spread that differs
between the seed runs is pooled over seeds inside the chapter (e.g. a bootstrap over seeds and
images) and cannot be recombined from single-seed runs: its cell is left empty and the row's
``aggregated`` column names it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.cache import atomic_write_text
from ..report.results import aggregate_seed_runs
from .runs import run_dir
from .spec import Run, expand


def collect(spec: dict[str, Any], root: Path) -> Path:
    """Gather every run of ``spec`` under ``root`` into ``root/table.csv`` (one row per run; one row
    per group of a ``split: seeds`` block, aggregated) and every single run into ``root/runs.csv``;
    returns the table's path."""
    import pandas as pd

    rows, singles = [], []
    groups: dict[str, list[tuple[Run, dict[str, Any], dict[str, Any] | None]]] = {}
    for run in expand(spec):
        row, metrics = _row(run, root)
        singles.append(row)
        if run.group is None:
            rows.append(row)
            continue
        key = Run(run.chapter, run.group, common=run.common).run_id
        if key not in groups:
            groups[key] = []
            rows.append({"chapter": run.chapter, "run": key})  # filled below, in spec order
        groups[key].append((run, row, metrics))
    for row in rows:
        if row["run"] in groups and "status" not in row:
            row.update(_group_row(groups[row["run"]]))
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(pd.DataFrame(singles).to_csv(index=False), root / "runs.csv")
    table = root / "table.csv"
    atomic_write_text(pd.DataFrame(rows).to_csv(index=False), table)
    return table


def _row(run: Run, root: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A run's table row and its metrics (None when it wrote no results)."""
    folder = run_dir(root, run)
    status_file = folder / "status.json"
    status = json.loads(status_file.read_text()) if status_file.is_file() else {"status": "not run"}
    row: dict[str, Any] = {"chapter": run.chapter, "run": run.run_id, "status": status.get("status"),
                           "error": status.get("error", ""), "seconds": status.get("seconds")}
    row.update({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in run.params.items()})
    results_file = folder / "results" / f"{run.chapter}.json"
    metrics = json.loads(results_file.read_text())["metrics"] if results_file.is_file() else None
    _add_metrics(row, metrics or {})
    return row, metrics


def _add_metrics(row: dict[str, Any], metrics: dict[str, Any]) -> None:
    """A table row's metric columns: every scalar metric (per-seed lists stay in the results files)."""
    for k, v in metrics.items():
        if not k.endswith("_per_seed"):
            row[k if k not in row else f"{k}_metric"] = v


def _group_row(members: list[tuple[Run, dict[str, Any], dict[str, Any] | None]]) -> dict[str, Any]:
    """The table row of a ``split: seeds`` group: ``ok`` when every seed run is, metrics aggregated."""
    run = members[0][0]
    assert run.group is not None
    seeds = [m[0].params["seeds"][0] for m in members]
    failed = [(r.params["seeds"][0], row) for r, row, metrics in members if row["status"] != "ok" or metrics is None]
    row: dict[str, Any] = {"status": "ok" if not failed else failed[0][1]["status"],
                           "error": "; ".join(f"seed {s}: {r['error']}" for s, r in failed if r["error"]),
                           "seconds": sum(float(r["seconds"] or 0) for _, r, _ in members)}
    row.update({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in run.group.items()})
    if failed:
        row["aggregated"] = f"not aggregated: seed runs {[s for s, _ in failed]} did not finish"
        return row
    metrics, left_out = aggregate_seed_runs([m for _, _, m in members if m is not None])
    row["aggregated"] = (f"mean and std over {len(seeds)} single-seed runs (seeds {seeds})"
                         + (f"; pooled over seeds in the chapter, left empty: {' '.join(left_out)}" if left_out else ""))
    _add_metrics(row, metrics)
    return row
