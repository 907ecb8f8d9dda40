"""The tier recorded in stretches (issue 44, item 3): one run per (chapter, seed), seed by seed; each
finished run recorded at once with its provenance; only what is missing runs; a run that would not fit
in the stretch does not start; a fresh clone with everything recorded has nothing to run; the pages
combine a chapter's runs that share fingerprint, data and parameters, and say "k of 3 seeds recorded"."""

from __future__ import annotations

import json

import pytest

from advinterp import tier as T
from advinterp.report import recorded
from advinterp.report import claims
from advinterp.studies import fingerprint, study
from advinterp.sweeps.spec import load_spec
from chapter_tools import REPO

SPEC = REPO / "configs" / "sweeps" / "cpu-cifar10.yaml"


@pytest.fixture
def stubbed(tmp_path, monkeypatch):
    """A tier whose chapters 'run' instantly: execute writes a results file (one effect per seed),
    fingerprints are the committed ones, the selection step writes a record, the data are a tiny tree."""
    folder = tmp_path / "recorded"
    folder.mkdir()
    (folder / "scale.yaml").write_text("{}\n")
    prints = {c: f"fp-{i}" for i, c in enumerate(fingerprint.CHAPTERS)}
    (folder / "fingerprints.json").write_text(json.dumps({"fingerprints": prints}))
    monkeypatch.setattr(recorded, "recorded_dir", lambda: folder)
    monkeypatch.setattr(fingerprint, "current", lambda chapters=fingerprint.CHAPTERS: dict(prints))
    data = tmp_path / "data" / "train" / "cat"
    data.mkdir(parents=True)
    (data / "0.png").write_bytes(b"x")
    executed = []
    spec_minutes = load_spec(SPEC, overrides={"data_root": "/x"})["estimate_minutes"]
    now = [0.0]
    monkeypatch.setattr(T, "clock", lambda: now[0])

    def execute(run, root, **_):
        now[0] += 60 * spec_minutes[run.chapter]      # each run takes what the spec estimates
        executed.append((run.chapter, run.params.get("seeds", [run.params.get("seed")])[0], run.params))
        out = root / run.chapter / run.run_id / "results"
        out.mkdir(parents=True, exist_ok=True)
        seed = run.params["seed"] if run.chapter.startswith("01") else run.params["seeds"][0]
        params = {k: v for k, v in run.params.items()}
        (out / f"{run.chapter}.json").write_text(json.dumps({"chapter": run.chapter, "params": params, "metrics": {
            "effect_x_per_seed": [0.1 + seed], "effect_x_lo_per_seed": [0.05 + seed],
            "effect_x_hi_per_seed": [0.15 + seed]}, "seconds": {str(seed): 60.0}}))
        return {"status": "ok", "seconds": 60.0 * spec_minutes[run.chapter]}

    def select_step(spec, path, provenance):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"selected": "nas-1-0.1", "matched": True, "sweep": [], "key": "k",
                                    "provenance": provenance}))
        return path

    monkeypatch.setattr(T, "execute", execute)
    monkeypatch.setattr(T, "selection_step", select_step)
    return {"folder": folder, "executed": executed, "data": str(tmp_path / "data"), "runs": tmp_path / "runs"}


def _stretch(s, hours: float) -> int:
    return T.stretch(str(SPEC), record="cpu-test", tier="cpu", hours=hours, overrides={"data_root": s["data"]},
                     runs_root=s["runs"])


def test_the_plan_is_seed_by_seed_one_run_per_chapter_and_seed():
    runs = T.plan(load_spec(SPEC, overrides={"data_root": "/x"}))
    assert [(p.seed, p.chapter[:2]) for p in runs][:8] == [(0, f"0{i}") for i in range(1, 8)] + [(1, "01")]
    assert len(runs) == 21 and all(p.run.params.get("seeds", [p.seed]) == [p.seed] or p.chapter.startswith("01")
                                   for p in runs)


def test_a_stretch_records_each_run_and_stops_before_one_that_does_not_fit(stubbed):
    # the spec's estimates: chapter 1 25 min, 2 and 3 three each, 4 thirty: 40 minutes fit seed 0's 1-3
    assert _stretch(stubbed, 40 / 60) == 3
    assert [(c, s) for c, s, _ in stubbed["executed"]] == [("01-adversarial-examples", 0),
                                                            ("02-neurons-and-patches", 0), ("03-neuron-consistency", 0)]
    rec = json.loads(recorded.seed_record_path("cpu-test", "02-neurons-and-patches", 0).read_text())
    prov = rec["provenance"]
    assert prov["fingerprint"] == "fp-1" and prov["data"]["files"] == 1 and prov["seconds"] == 180.0
    assert prov["planned_seeds"] == [0, 1, 2] and "torch" in prov["machine"] and prov["commit"]
    # the next stretch (a fresh machine with the committed runs) starts where this one stopped; chapter 7's
    # scored runs read the recorded selection, a repository path
    stubbed["executed"].clear()
    assert _stretch(stubbed, 100) == 18
    assert stubbed["executed"][0][:2] == ("04-consistent-loss", 0)
    ch7 = [params for c, _, params in stubbed["executed"] if c.startswith("07")]
    assert ch7 and all(p["selection_record"].endswith("selection.json") for p in ch7)
    stubbed["executed"].clear()
    assert _stretch(stubbed, 100) == 0 and not stubbed["executed"]


def test_the_pages_combine_a_chapters_seed_runs_and_say_how_many_are_in(stubbed):
    _stretch(stubbed, 40 / 60)
    stem = "02-neurons-and-patches"
    r = recorded.load("cpu-test", stem)
    assert r.seeds == [0] and r.missing_seeds == [1, 2] and r.fingerprint == "fp-1"
    (c, *_) = study(stem).CLAIMS
    f = claims.tier_findings(c)["cpu"][0]
    assert f.verdict == claims.INCOMPLETE and f.short_cell() == "1 of 3 seeds recorded"
    _stretch(stubbed, 100)
    r = recorded.load("cpu-test", stem)
    assert r.seeds == [0, 1, 2] and not r.missing_seeds and r.metrics["effect_x_per_seed"] == [0.1, 1.1, 2.1]
    assert recorded.stale_reason(stem, "cpu") is None
    old_figure = recorded.recorded_dir() / "cpu-test" / "figures" / stem
    old_figure.mkdir(parents=True)
    (old_figure / "captions.json").write_text(json.dumps({"fig": "an older record's figure"}))
    (old_figure / "fig.png").write_bytes(b"png")
    assert recorded.figures(stem, "cpu") == [], "an older record's figures are not shown as the seed runs'"
    # a seed run made by code with another fingerprint is not combined with the others
    path = recorded.seed_record_path("cpu-test", stem, 2)
    other = json.loads(path.read_text())
    other["provenance"]["fingerprint"] = "fp-old"
    path.write_text(json.dumps(other))
    r = recorded.load("cpu-test", stem)
    assert r.seeds == [0, 1] and r.missing_seeds == [2] and r.provenance["left_out"] == [2]


def test_code_with_uncommitted_fingerprints_records_nothing(stubbed, monkeypatch):
    monkeypatch.setattr(fingerprint, "current", lambda chapters=fingerprint.CHAPTERS: {c: "new" for c in chapters})
    assert _stretch(stubbed, 100) == -1 and not stubbed["executed"]


def test_a_recorded_run_is_a_file_git_keeps():
    """A stretch's records live under book/recorded/<record>/runs/, which no ignore rule may cover (a
    top-level ``runs/`` rule once did: the first recorded run stayed out of the repository)."""
    import shutil
    import subprocess

    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    path = recorded.seed_record_path("cpu-cifar10", "01-adversarial-examples", 0).relative_to(REPO)
    ignored = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", str(path)])
    assert ignored.returncode == 1, f"{path} is git-ignored: recorded runs would never be committed"


def test_a_committed_run_counts_as_recorded_for_the_tiers_own_plan():
    """A results file keeps the chapter's own parameters, the plan the tier's book-wide ones: a committed run
    is recorded for its planned run (same fingerprint, data and the chapter's setting; before, the two never
    compared equal and every stretch would have run everything again), and not when a declared value moves."""
    spec = load_spec(SPEC, overrides={"data_root": "/data/cifar10-jpg"})
    selection = recorded.recorded_dir() / "cpu-cifar10" / recorded.SEED_RUNS / T.SELECTING / T.SELECTION_FILE
    checked = 0
    for p in T.plan(spec):
        path = recorded.seed_record_path("cpu-cifar10", p.chapter, p.seed)
        if not path.is_file():
            continue
        prov = json.loads(path.read_text())["provenance"]
        args = ("cpu-cifar10", p, prov["fingerprint"], prov["data"]["sha256"])
        given = T.run_params(p, selection)   # what a stretch gives the run (chapter 7: the selection record)
        assert T.is_recorded(*args, given), (p.chapter, p.seed)
        assert not T.is_recorded(*args, {**given, "epochs": 3}), (p.chapter, p.seed)
        checked += 1
    if not checked:
        pytest.skip("no run of the CPU tier is committed yet")
