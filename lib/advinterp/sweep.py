"""Entry point: ``python -m advinterp.sweep SPEC`` runs a sweep of chapters (resumable) and collects
its table (the machinery is :mod:`advinterp.report.sweeps`; the spec format is described there)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .core import paths
from .report.sweeps import collect, load_spec, run_sweep


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m advinterp.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", help="YAML sweep specification")
    parser.add_argument("--runs-dir", default=None, help="root of sweep outputs (default: <repo>/runs)")
    parser.add_argument("--collect-only", action="store_true", help="only rebuild table.csv from finished runs")
    parser.add_argument("--reuse-results", default=None, metavar="DIR",
                        help="adopt a chapter's own results file from DIR (e.g. results) when it was made with the "
                             "run's parameters by the current notebook and library, instead of executing the run")
    args = parser.parse_args(argv)
    spec = load_spec(args.spec)
    root = (Path(args.runs_dir) if args.runs_dir else paths.repo_root() / "runs") / spec["name"]
    table = collect(spec, root) if args.collect_only else run_sweep(args.spec, args.runs_dir, reuse_results=args.reuse_results)
    import pandas as pd

    df = pd.read_csv(table)
    print(f"{table}: {len(df)} runs, {int((df.status == 'ok').sum())} ok, {int((df.status == 'failed').sum())} failed")
    return 0 if (df.status == "ok").all() else 1


if __name__ == "__main__":
    raise SystemExit(main())
