"""Entry point: ``python -m advinterp.sweep SPEC`` runs a sweep of chapters (resumable) and collects
its table (the machinery is :mod:`advinterp.sweeps`; the spec format is in :mod:`advinterp.sweeps.spec`).

``--engine local`` (the default) runs one run after another in this process; ``--engine ray`` makes
each run a Ray task with ``--gpus-per-run`` GPUs and ``--cpus-per-run`` CPUs on the cluster at
``--address`` (default: a Ray instance started here on this machine's cores and GPUs), retrying a
run whose worker dies up to ``--max-retries`` times (:mod:`advinterp.sweeps.ray`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .core import paths
from .core.params import key_values
from .sweeps import ENGINES, collect, load_spec, run_sweep

#: the options that only the Ray engine takes: flag -> keyword of advinterp.sweeps.ray.execute_all
RAY_OPTIONS = {"--address": "address", "--gpus-per-run": "gpus_per_run", "--cpus-per-run": "cpus_per_run",
               "--max-retries": "max_retries"}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m advinterp.sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("spec", help="YAML sweep specification")
    p.add_argument("--runs-dir", default=None, help="root of sweep outputs (default: <repo>/runs)")
    p.add_argument("--collect-only", action="store_true", help="only rebuild table.csv from finished runs")
    p.add_argument("--reuse-results", default=None, metavar="DIR",
                   help="adopt a chapter's own results file from DIR (e.g. results) when it was made with the "
                        "run's parameters by the current notebook and library, instead of executing the run")
    p.add_argument("--notebooks", default=None, metavar="DIR", help="folder of the chapter notebooks (default: book/)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="set a parameter of every run (VALUE is read as YAML: 3, 0.1, [0, 1], null, text); repeatable")
    p.add_argument("--record", default=None, metavar="NAME",
                   help="when every run is ok, write the results into book/recorded/NAME (one file per chapter, seed "
                        "runs aggregated, with provenance) and point book/recorded/scale.yaml's --tier at it")
    p.add_argument("--tier", default=None, choices=("cpu", "gpu"),
                   help="the recorded tier --record fills: cpu (small networks on a CPU) or gpu (ResNet-20)")
    p.add_argument("--engine", choices=ENGINES, default="local",
                   help="local: one run after another here (default); ray: each run a Ray task")
    ray = p.add_argument_group("Ray engine (--engine ray)")
    ray.add_argument("--address", default=None, metavar="auto|HOST:PORT",
                     help="Ray cluster to use: 'auto' (started on this machine with `ray start --head`) or a head "
                          "node's HOST:PORT (default: start a Ray instance here)")
    ray.add_argument("--gpus-per-run", type=float, default=None, metavar="N", help="GPUs per run (default 0)")
    ray.add_argument("--cpus-per-run", type=float, default=None, metavar="N", help="CPUs per run (default 1)")
    ray.add_argument("--max-retries", type=int, default=None, metavar="N",
                     help="retries of a run whose worker process dies (default 2)")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    options = {key: getattr(args, key) for key in RAY_OPTIONS.values() if getattr(args, key) is not None}
    if (args.record is None) != (args.tier is None):
        p.error("--record NAME and --tier cpu|gpu go together")
    if options and args.engine != "ray":
        given = [flag for flag, key in RAY_OPTIONS.items() if key in options]
        p.error(f"{', '.join(given)} only with --engine ray")
    try:
        overrides = key_values(args.overrides, "--set")
    except ValueError as err:
        p.error(str(err))
    try:
        notebooks = Path(args.notebooks) if args.notebooks else None
        spec = load_spec(args.spec, notebooks, overrides=overrides)
        root = (Path(args.runs_dir) if args.runs_dir else paths.repo_root() / "runs") / spec["name"]
        table = collect(spec, root) if args.collect_only else run_sweep(
            args.spec, args.runs_dir, notebooks=notebooks, reuse_results=args.reuse_results, engine=args.engine,
            overrides=overrides, **options)
    except ValueError as err:  # a bad option or spec: say which, without a traceback
        message = str(err)
        for flag, key in RAY_OPTIONS.items():  # name the option as the user typed it
            if message.startswith(f"{key}="):
                message = flag + message[len(key):]
        print(f"python -m advinterp.sweep: error: {message}", file=sys.stderr)
        return 2
    import pandas as pd

    df = pd.read_csv(table)
    print(f"{table}: {len(df)} runs, {int((df.status == 'ok').sum())} ok, {int((df.status == 'failed').sum())} failed")
    ok = bool((df.status == "ok").all())
    if args.record and ok:
        from .report import recorded

        command = " ".join(["python -m advinterp.sweep", *(argv if argv is not None else sys.argv[1:])])
        dest = recorded.record_sweep(table.parent, args.record, what=f"sweep {spec['name']} ({args.spec})",
                                     command=command, tier=args.tier)
        print(f"recorded into {dest}")
    elif args.record:
        print(f"not recorded: some runs did not finish (see {table})", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
