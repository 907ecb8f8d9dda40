"""Record a natural-image tier in stretches that survive a fresh machine (``make scale-cpu HOURS=2``).

``python -m advinterp.tier configs/sweeps/cpu-cifar10.yaml --record cpu-cifar10 --tier cpu --hours 2
--set data_root=/abs/path/to/cifar10-jpg``:

1. checks that the code's measurement fingerprints (:mod:`advinterp.studies.fingerprint`, about a
   minute) are the committed ones (``book/recorded/fingerprints.json``): a record must carry the
   fingerprint of the code that made it;
2. plans one run per (chapter, seed), seed by seed (a seed's chapters share its trained models, so a
   stretch trains them once), and skips every run already recorded with the current fingerprint, the
   same data (:func:`advinterp.data.datasets.tree_digest`) and the same parameters;
3. takes chapter 7's **selection step** first, when it is not yet recorded: the sweep of regulariser
   weights on ``selection_seed``, written into the record before any scored seed runs; the scored runs
   read the chosen weight from it (``selection_record``), so no stretch repeats the selection and the
   choice provably precedes the scores;
4. runs what is missing, one run after another, and records each finished run at once into
   ``book/recorded/<record>/runs/<chapter>/seed-<s>.json`` (:func:`advinterp.report.recorded.write_seed_record`:
   results, commit, fingerprint, data digest, seconds, machine and torch, command), ready to commit;
5. stops before starting a run that would not fit in ``--hours`` (its time estimated from the
   chapter's recorded seconds, else from the spec's ``estimate_minutes``), never losing a finished run.

A fresh clone with every run recorded prints "nothing to run". The pages combine a chapter's runs
only when they share one fingerprint, one data digest and the same parameters, and say "k of 3 seeds
recorded" until every planned seed is in.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .core import paths
from .core.devices import describe_machine
from .core.params import key_values
from .report import recorded
from .sweeps.runs import execute, run_dir
from .sweeps.spec import Run, expand, load_spec

#: the clock a stretch's time limit is read on (a test replaces it)
clock = time.time

#: chapter 7, whose compared weight is chosen by a selection step recorded before its scored runs
SELECTING = "07-sensitivity-regularization"
#: the file of that step in a record
SELECTION_FILE = "selection.json"


@dataclass(frozen=True)
class Planned:
    """One (chapter, seed) run of the tier."""

    run: Run
    seed: int

    @property
    def chapter(self) -> str:
        return self.run.chapter


def plan(spec: dict[str, Any]) -> list[Planned]:
    """Every (chapter, seed) run of the spec, seed by seed in chapter order: a chapter with a ``seeds``
    list runs one seed at a time (``split: seeds``), a chapter with a ``seed`` grid (chapter 1) one run
    per grid value."""
    for block in spec["runs"]:
        if "seed" not in block.get("grid", {}) and isinstance(block["params"].get("seeds"), list):
            block["split"] = "seeds"
    runs = [Planned(r, int(r.params["seeds"][0] if "seeds" in r.params and r.group is not None else r.params["seed"]))
            for r in expand(spec)]
    order = {b["chapter"]: i for i, b in enumerate(spec["runs"])}
    return sorted(runs, key=lambda p: (p.seed, order[p.chapter]))


def planned_seeds(spec: dict[str, Any], chapter: str) -> list[int]:
    block = next(b for b in spec["runs"] if b["chapter"] == chapter)
    return list(block.get("grid", {}).get("seed") or block["params"].get("seeds") or [])


def chapter_setting(chapter: str, params: dict[str, Any]) -> dict[str, Any]:
    """What a run of ``chapter`` is given, as its results file states it: each parameter the chapter declares,
    at the run's value or else at its default (a tier's parameters are book-wide: the others are not the
    chapter's)."""
    from .studies import study

    return {name: params.get(name, default) for name, default in study(chapter).CHAPTER.defaults.items()}


def run_params(p: Planned, selection_file: Path) -> dict[str, Any]:
    """The parameters a stretch gives the planned run: the plan's; chapter 7's scored runs also read the
    recorded selection (``selection_record``, a repository path when the file is in the repository)."""
    if p.chapter != SELECTING:
        return dict(p.run.params)
    root = paths.repo_root()
    where = selection_file.relative_to(root) if selection_file.is_relative_to(root) else selection_file
    return {**p.run.params, "selection_record": str(where)}


def is_recorded(record: str, p: Planned, fingerprint: str, data_sha: str | None, params: dict[str, Any]) -> bool:
    """Whether the run is recorded with the current fingerprint, data and parameters (the chapter's own:
    :func:`chapter_setting` of the record's and of the planned run's)."""
    path = recorded.seed_record_path(record, p.chapter, p.seed)
    if not path.is_file():
        return False
    made = json.loads(path.read_text())
    return (made["provenance"].get("fingerprint") == fingerprint
            and made["provenance"].get("data", {}).get("sha256") == data_sha
            and recorded.same_setting(chapter_setting(p.chapter, made["params"]))
            == recorded.same_setting(chapter_setting(p.chapter, params)))


def estimate_seconds(record: str, chapter: str, spec: dict[str, Any]) -> float:
    """A run's expected seconds: the mean of the chapter's recorded runs, else the spec's estimate."""
    done = [r["provenance"]["seconds"] for r in recorded.seed_records(record, chapter) if r["provenance"].get("seconds")]
    if done:
        return sum(done) / len(done)
    return 60.0 * float((spec.get("estimate_minutes") or {}).get(chapter, 30))


def selection_step(spec: dict[str, Any], path: Path, provenance: dict[str, Any]) -> Path:
    """Chapter 7's selection step, recorded (or the record already made with these parameters)."""
    from .studies import interpretability as ch7
    from .studies.setting import Setup

    block = next(b for b in spec["runs"] if b["chapter"] == SELECTING)
    names = set(ch7.CHAPTER.names)
    P = ch7.validate({**ch7.CHAPTER.defaults, **{k: v for k, v in block["params"].items() if k in names},
                      "selection_record": None})
    if path.is_file() and json.loads(path.read_text()).get("key") == ch7.selection_key(P):
        return path
    print(f"{SELECTING}: the selection step (sweep on seed {P.selection_seed})", flush=True)
    start = time.time()
    setup: Setup = ch7.setup(P)
    chosen = ch7.choose(P, setup.A)
    ch7.write_selection(chosen, path, {**provenance, "seconds": round(time.time() - start, 1),
                                       "finished": time.time()})
    print(f"  chose {chosen.selected} ({'matched' if chosen.matched else 'not matched'}); recorded {path}", flush=True)
    return path


def stretch(spec_path: str, *, record: str, tier: str, hours: float, overrides: dict[str, Any],
            runs_root: Path | None = None, only: tuple[str, ...] = ()) -> int:
    """One stretch of at most ``hours`` (the module docstring); returns the runs it recorded (-1: the
    code's fingerprints are not the committed ones). ``runs_root``: where the chapters' executed
    notebooks go (default ``runs/tier-<record>``); ``only``: these chapters (default every chapter)."""
    from .data.datasets import tree_digest
    from .studies import fingerprint

    deadline = clock() + 3600 * hours
    spec = load_spec(spec_path, overrides=overrides)
    committed = recorded.current_fingerprints()
    now = fingerprint.current()
    if now != committed:
        moved = sorted(c for c in now if now[c] != committed.get(c))
        print(f"the code's fingerprints of {moved} are not the committed ones: run `python -m "
              "advinterp.studies.fingerprint --write`, commit book/recorded/fingerprints.json, then record",
              file=sys.stderr)
        return -1
    data_root = next((b["params"].get("data_root") for b in spec["runs"] if b["params"].get("data_root")), None)
    data = tree_digest(data_root) if data_root else None
    base = {"what": f"{spec['name']} ({spec_path})", "commit": recorded.git_commit(), "machine": describe_machine(),
            "date": time.strftime("%Y-%m-%d"), "data": data}
    selection_file = recorded.recorded_dir() / record / recorded.SEED_RUNS / SELECTING / SELECTION_FILE

    runs = [p for p in plan(spec) if not only or p.chapter in only]
    todo = [p for p in runs if not is_recorded(record, p, committed.get(p.chapter), data and data["sha256"],
                                                 run_params(p, selection_file))]
    if not todo:
        print(f"nothing to run: every (chapter, seed) run of {spec['name']} is recorded at the current fingerprints")
        return 0
    if any(p.chapter == SELECTING for p in todo):
        need = 60.0 * float((spec.get("estimate_minutes") or {}).get(f"{SELECTING} selection", 0))
        if not selection_file.is_file() and need > deadline - clock():
            print(f"stopping: chapter 7's selection step needs about {need / 60:.0f} min", flush=True)
            todo = [p for p in todo if p.chapter != SELECTING]
        else:
            selection_step(spec, selection_file, {**base, "fingerprint": committed.get(SELECTING)})
    root = runs_root or paths.repo_root() / "runs" / f"tier-{record}"
    done = 0
    for p in todo:
        params = run_params(p, selection_file)
        need = estimate_seconds(record, p.chapter, spec)
        left = deadline - clock()
        if need > left:
            print(f"stopping: {p.chapter} seed {p.seed} needs about {need / 60:.0f} min, {left / 60:.0f} min left "
                  "in this stretch", flush=True)
            break
        print(f"{p.chapter} seed {p.seed} (about {need / 60:.0f} min)", flush=True)
        run = Run(p.chapter, params, group=p.run.group, common=p.run.common)
        # a cell may take what is left of the stretch (papermill's default hour is too short for a seed's training
        # on a busy machine: chapter 1's first cell took over an hour beside a test run)
        status = execute(run, root, timeout=max(600, int(deadline - clock())))
        if status["status"] != "ok":
            print(f"  failed: {status['error'][-500:]}", file=sys.stderr, flush=True)
            continue
        results = json.loads((run_dir(root, run) / "results" / f"{p.chapter}.json").read_text())
        command = (f"python -m advinterp.tier {spec_path} --record {record} --tier {tier} (chapter {p.chapter}, "
                   f"seed {p.seed})")
        path = recorded.write_seed_record(record, p.chapter, p.seed, results, {
            **base, "fingerprint": committed.get(p.chapter), "seconds": status["seconds"], "finished": time.time(),
            "command": command, "planned_seeds": planned_seeds(spec, p.chapter)})
        recorded.point_index(tier, record, p.chapter, base["what"])
        done += 1
        print(f"  recorded {path} ({status['seconds'] / 60:.1f} min): commit it", flush=True)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m advinterp.tier", description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", help="the tier's sweep specification (configs/sweeps/cpu-cifar10.yaml)")
    parser.add_argument("--record", required=True, help="the record's folder in book/recorded/")
    parser.add_argument("--tier", required=True, choices=tuple(recorded.TIERS), help="the tier it fills")
    parser.add_argument("--hours", type=float, default=2.0, help="the stretch's time limit (default 2)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="a parameter of every run (e.g. data_root=/abs/path)")
    parser.add_argument("--only", nargs="+", default=(), metavar="CHAPTER", help="only these chapters' runs")
    args = parser.parse_args(argv)
    try:
        overrides = key_values(args.overrides, "--set")
    except ValueError as err:
        parser.error(str(err))
    done = stretch(args.spec, record=args.record, tier=args.tier, hours=args.hours, overrides=overrides,
                   only=tuple(args.only))
    return 2 if done < 0 else 0


if __name__ == "__main__":
    raise SystemExit(main())
