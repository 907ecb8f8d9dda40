"""What ran beside what the paper ran: the settings table is worded from the runs' parameters, and no
chapter's prose states a setting that one of its runs (this page's default, a recorded tier) contradicts."""

from __future__ import annotations

import json

import pytest
import yaml

from advinterp.models.architectures import MODELS
from advinterp.report import recorded
from advinterp.report.settings import Setting, contradictions, settings_frame, stated_settings, unheld
from advinterp.studies import STUDIES, study
from advinterp.studies import wrong_predictions as ch6
from advinterp.studies.ending import setting_runs, tier_frame
from advinterp.training.recipes import RECIPES
from chapter_tools import REPO


def test_the_table_words_each_run_from_its_parameters():
    settings = (Setting("mutants", ("n_mutants",), "100"),
                Setting("rates", ("mutation_rate", "table_rates"), "0.01"),
                Setting("layer", ("conductance_layer",), "last block", show=lambda p: p["conductance_layer"].upper()))
    frame = settings_frame(settings, {"this page": {"n_mutants": 50, "mutation_rate": 0.02, "table_rates": [0.02, 0.04],
                                                    "conductance_layer": "conv2"},
                                      "old tier": {"n_mutants": 100, "layer": "fc1"}})
    assert list(frame.columns) == ["setting", "paper", "this page", "old tier"]
    assert frame["this page"].tolist() == ["50", "0.02 / 0.02, 0.04", "CONV2"]
    assert frame["old tier"].tolist() == ["100", "not recorded", "not recorded"]


def test_a_typed_setting_is_found_unless_it_is_the_papers():
    text = ("Each seed runs 100 accepted mutants; we use gamma = 0.1. Wu et al.'s gamma = 0.01 would mutate none. "
            "The parameter `n_mutants` and {glue:text}`param_n_mutants` mutants are computed.\n\n"
            "```{margin} Choices\nConductance with m = 10, exactly as Wu et al.\n```")
    found = {(n, p[0]) for n, p, _ in stated_settings(text)}
    assert found == {("100", "n_mutants"), ("0.1", "mutation_rate"), ("10", "conductance_steps")}
    runs = [{"n_mutants": 100, "mutation_rate": 0.1, "conductance_steps": 10},
            {"n_mutants": 50, "mutation_rate": 0.1, "conductance_steps": 10, "other": 1}]
    (problem,) = contradictions(text, runs)
    assert "states 100" in problem and "n_mutants = 50" in problem
    assert not contradictions(text, [{"k": 3}]), "a parameter the run does not have contradicts nothing"


def _markdown(stem: str) -> str:
    nb = json.loads((REPO / "book" / f"{stem}.ipynb").read_text())
    return "\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


#: the tiers' configurations: a chapter run with one of them alone runs as its tier's record did
TIER_CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def _runs(stem: str) -> list[dict]:
    """Every run a chapter's prose must hold in: this page's defaults, each recorded tier's parameters,
    and each configuration file over the defaults (the parameters the chapter declares)."""
    defaults = dict(study(stem).CHAPTER.defaults)
    configs = [{**defaults, **{k: v for k, v in (yaml.safe_load(c.read_text()) or {}).items() if k in defaults}}
               for c in TIER_CONFIGS]
    return [_resolved(r) for r in (*setting_runs(stem, defaults).values(), *configs)]


def _resolved(run: dict) -> dict:
    """``epochs: null`` is the dataset's recipe (advinterp.training.recipes.RECIPES): what it runs."""
    if "epochs" in run and run["epochs"] is None and run.get("dataset") in RECIPES:
        return {**run, "epochs": RECIPES[run["dataset"]]["epochs"]}
    return run


@pytest.mark.parametrize("stem", [s for s in STUDIES if study(s).SETTINGS])
def test_no_sentence_contradicts_a_run_of_its_chapter(stem):
    """This page's defaults, every recorded tier's parameters and every configuration: a sentence that
    types a setting (mutants, rates, epochs, steps, K, top-N, reference images, eps, lambda, a layer or
    network name, ...) must hold in each; the page says what ran."""
    assert not contradictions(_markdown(stem), _runs(stem))


def test_no_sentence_of_the_readme_the_docs_or_the_appendix_contradicts_a_run():
    """The README, the pages under docs/ and the appendix describe many chapters at once, so a sentence
    names no one run: a setting they type must be the value of some run (a chapter's default, a tier's
    configuration or record). ``docs/papers.md`` gives the papers' values, not ours."""
    texts = {"README.md": (REPO / "README.md").read_text(), "appendix": _markdown("appendix-scale"),
             **{f"docs/{p.name}": p.read_text() for p in sorted((REPO / "docs").glob("*.md")) if p.name != "papers.md"}}
    runs = [r for stem in STUDIES if study(stem).SETTINGS for r in _runs(stem)]
    for name, text in texts.items():
        assert not unheld(text, runs), name


def test_the_new_patterns_find_what_was_typed():
    text = ("Concepts come from 2,000 real training images and the top-5 influential neurons. "
            "It attacks with 80 steps at eps = 0.3 on fc1, with small_resnet held out and lambda = 10.")
    found = {(n, p[0]) for n, p, _ in stated_settings(text)}
    assert {("2000", "n_reference"), ("5", "top_k"), ("80", "attack_steps"), ("0.3", "eps"), ("fc1", "layer"),
            ("small_resnet", "model"), ("10", "lambda_cl")} <= found
    assert not contradictions("Budget eps = 8/255.", [{"eps": 0.03137}])
    assert contradictions("Budget eps = 0.3.", [{"eps": 0.03137}])


@pytest.mark.parametrize("config", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_chapter_6_reads_the_last_conv_block_in_every_configuration(config):
    """Wu et al. compute conductance on the last conv block; no tier's shared settings (chapter 4's
    ``layer`` among them) may move it elsewhere."""
    params = {**ch6.CHAPTER.defaults, **{k: v for k, v in (yaml.safe_load(config.read_text()) or {}).items()
                                         if k in ch6.CHAPTER.defaults}}
    if params["model"] not in MODELS or not MODELS[params["model"]].conv_layers:
        pytest.skip(f"{params['model']} has no conv block")
    words = ch6._conductance_layer_words(params)
    assert words.startswith(MODELS[params["model"]].conv_layers[-1]), words


def test_the_tiers_runs_are_the_recorded_ones(tmp_path):
    """A tier without a record of the chapter is left out of the table."""
    runs = setting_runs("06-error-detection", {"n_mutants": 1}, folder=tmp_path)
    assert list(runs) == ["this page"]
    assert set(recorded.TIERS.values()) >= set(setting_runs("06-error-detection", {})) - {"this page"}


def test_a_tiers_settings_are_worded_from_its_record(tmp_path):
    """The appendix's table of what a recorded tier ran: every chapter of the record with settings, each
    setting read from that chapter's recorded parameters (a parameter it lacks: "not recorded")."""
    run = tmp_path / "tier"
    run.mkdir()
    ch6 = study("06-error-detection").CHAPTER
    (run / "06-error-detection.json").write_text(json.dumps(
        {"chapter": ch6.stem, "params": {**ch6.defaults, "n_mutants": 37}, "metrics": {}}))
    (run / "08-side-by-side.json").write_text(json.dumps({"chapter": "08-side-by-side", "params": {}, "metrics": {}}))
    (run / "provenance.json").write_text("{}")
    frame = tier_frame("tier", folder=tmp_path)
    assert list(frame.columns) == ["chapter", "record", "setting", "paper", "recorded"]
    assert set(frame.chapter) == {6} and len(frame) == len(study("06-error-detection").SETTINGS)
    mutants = [s.label for s in study("06-error-detection").SETTINGS if s.params == ("n_mutants",)]
    assert frame.set_index("setting").loc[mutants[0], "recorded"] == "37"
    assert list(frame.record)[0] == "stale (made before records carried a fingerprint)" and not any(frame.record[1:])


def test_a_tier_recorded_in_stretches_is_worded_from_its_seed_runs(tmp_path):
    """Per-seed records replace the chapter's older results file in the appendix's table, which says
    whether they are current and how many of the planned seeds they hold."""
    ch6 = study("06-error-detection").CHAPTER
    (tmp_path / "fingerprints.json").write_text(json.dumps({"fingerprints": {ch6.stem: "fp-now"}}))
    run = tmp_path / "tier"
    run.mkdir()
    (run / f"{ch6.stem}.json").write_text(json.dumps(
        {"chapter": ch6.stem, "params": {**ch6.defaults, "n_mutants": 37}, "metrics": {}}))
    (run / "provenance.json").write_text("{}")
    for seed in (0, 2):
        recorded.write_seed_record("tier", ch6.stem, seed, {"params": {**ch6.defaults, "n_mutants": 90, "seeds": [seed]},
                                                            "metrics": {}},
                                   {"fingerprint": "fp-now", "planned_seeds": [0, 1, 2], "finished": seed},
                                   folder=tmp_path)
    frame = tier_frame("tier", folder=tmp_path)
    mutants = [s.label for s in study("06-error-detection").SETTINGS if s.params == ("n_mutants",)]
    assert frame.set_index("setting").loc[mutants[0], "recorded"] == "90"
    assert list(frame.record)[0] == "current, seeds 0, 2 (2 of 3)" and not any(frame.record[1:])
