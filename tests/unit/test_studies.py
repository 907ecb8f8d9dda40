"""Every chapter study on a tiny setting (a few dozen images, one epoch): validate -> setup -> run ->
summarize -> verdicts, checking what must hold (bounds, shapes, names, one seed has no spread),
never a number from an earlier run. The models of one module share a private cache, so chapter 5
and 7 reuse chapter 4's models as the chapters do."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from advinterp.report import results
from advinterp.report import claims
from advinterp.interpret import dissection
from advinterp.studies import (consistency, consistent_loss, fingerprint, interpretability, neurons,
                               setting, side_by_side, study, tracing, transfer, wrong_predictions)

TINY = fingerprint.TINY   # the tiny setting a chapter's measurement fingerprint is taken on


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    import torch

    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("study-cache")
    mp.setenv("ADVINTERP_CACHE", str(folder))
    threads = torch.get_num_threads()
    torch.set_num_threads(fingerprint.THREADS)   # the fingerprint's tiny runs use one thread
    yield folder
    torch.set_num_threads(threads)
    mp.undo()


#: study module name -> (changes, metrics) of the runs above, for the determinism check at the end
FIRST_RUNS: dict[str, tuple[dict, dict]] = {}


def set_up(mod, **changes):
    """The chapter's declared defaults with the tiny overrides, validated and set up."""
    values = {**mod.CHAPTER.defaults, **{k: v for k, v in TINY.items() if k in mod.CHAPTER.names}, **changes}
    return mod.setup(mod.validate(values))


def comparable(metrics: dict) -> dict:
    """The metrics two runs must agree on exactly: all but wall-clock timings."""
    return {k: v for k, v in json.loads(json.dumps(results.plain(metrics))).items() if "time" not in k}


def keep(mod, changes: dict, metrics: dict) -> None:
    FIRST_RUNS[mod.__name__] = (changes, comparable(metrics))
    FINGERPRINT_RUNS[mod.CHAPTER.stem] = dict(metrics)


#: chapter stem -> the metrics of its tiny run above (the fingerprint's setting)
FINGERPRINT_RUNS: dict[str, dict] = {}


def check_metrics(metrics: dict, n_seeds: int = 1) -> None:
    """Plain values or lists of them; with one seed every spread is absent (NaN, written as null), not 0;
    every per-seed list has one value per seed."""
    for name, value in metrics.items():
        if name.endswith("_per_seed"):
            assert isinstance(value, list) and len(value) == n_seeds, (name, value)
            continue
        assert value is None or isinstance(value, bool | int | float | str | list), (name, value)
        if name.endswith("_std") and n_seeds == 1:
            assert value is None or math.isnan(value), (name, value)
    assert json.loads(json.dumps(results.plain(metrics)))


def check_claims(mod, setup, metrics) -> None:
    """Every claim of the chapter reads its effects from the metrics (per-seed values present) and is
    decided, or says why it is not measured."""
    observed = {**setup.P.public(), **metrics}
    for c in mod.CLAIMS:
        for e in c.effects:
            assert f"{e.results_name(observed)}_per_seed" in metrics, e.name
        f = claims.assess(c, observed)
        assert f.verdict in claims.VERDICTS and ("not" not in f.verdict or f.note)


def in_unit(*values: float) -> bool:
    return all(0.0 <= v <= 1.0 for v in values if not math.isnan(v))


def test_registry_names_every_chapter():
    for stem, name in {"01-adversarial-examples": transfer, "06-error-detection": wrong_predictions}.items():
        assert study(stem) is name and name.CHAPTER.stem == stem


def test_transfer(shared_cache):
    setup = set_up(transfer)
    P = setup.P
    result = transfer.run(setup)
    m = transfer.summarize(result, setup)
    keep(transfer, {}, m)
    check_metrics(m)
    check_claims(transfer, setup, m)
    assert in_unit(m["clean_acc"], m["fgsm_success"], m["illc_success"], m["pgd_success"], m["noise_success"],
                   m["ensemble_success_members"], m["single_transfer_heldout"])
    assert m["max_linf"] <= P.eps + 1e-6
    e = result.transfer
    assert e.lo <= e.estimate <= e.hi
    assert m["effect_transfer_per_seed"][0] == pytest.approx(m["ensemble_transfer_heldout"] - m["single_transfer_heldout"])
    assert {"ensemble_transfer_verdict", "iterative_verdict"} <= set(transfer.verdicts(result, setup, m))
    assert list(result.table.index)[-1] == transfer.control_row(P)


def test_neurons_and_consistency(shared_cache):
    setup = set_up(neurons)
    result = neurons.run(setup)
    m = neurons.summarize(result, setup)
    keep(neurons, {}, m)
    check_metrics(m)
    check_claims(neurons, setup, m)
    assert in_unit(m["topk_target_agreement"], m["topk_true_agreement"])
    assert set(result.table["layer"]) == set(setup.layers) and set(result.table["seed"]) == {0}
    assert set(result.layers["network"]) == set(dissection.NETWORKS) and set(result.layers["set"]) == {"adversarial", "noise"}
    assert set(neurons.intervals(result)["effect"]) == set(neurons.EFFECTS)
    rows = neurons.gallery_rows(result, setup)
    assert rows and all(len(r["images"]) <= setup.P.k_show for r in rows)
    assert "patches_verdict" in neurons.verdicts(result, setup, m)
    # the held-out extension: on the images the held-out network labels as the target, minus the control
    for (network, layer, name), e in result.runs[0].effects.items():
        if name == "agreement_gap_did" and e.estimate == e.estimate:
            gap, noise = (result.runs[0].effects[(network, layer, n)].estimate for n in ("agreement_gap", "agreement_gap_noise"))
            assert e.estimate == pytest.approx(gap - noise, abs=1e-6)
    assert all(0 <= v <= 1 for k, v in m.items() if k.startswith("member_success_") and not k.endswith(("_std", "_per_seed")))
    assert m["member_success_min_per_seed"] == [min(result.runs[0].member_success.values())]

    s3 = set_up(consistency, **fingerprint.CHANGES[consistency.CHAPTER.stem])
    r3 = consistency.run(s3)
    m3 = consistency.summarize(r3, s3)
    keep(consistency, fingerprint.CHANGES[consistency.CHAPTER.stem], m3)
    check_metrics(m3)
    check_claims(consistency, s3, m3)
    assert set(r3.neurons["attack"]) == {"fgsm", "illc", "ensemble"} and set(r3.neurons["network"]) == {"attacked", "held-out"}
    assert in_unit(m3["consis_real"], m3["consis_adv_true"], m3["consis_adv_target"], m3["consis_noise_true"])
    words = consistency.verdicts(r3, s3, m3)
    assert {"consistency_drop_verdict", "representations_verdict"} <= set(words) and "member_success_words" in words
    for (seed, attack, network, layer, name), e in r3.effects.items():
        if name == "cs_gap_did" and e.estimate == e.estimate:
            adv, noise = (r3.effects[(seed, attack, network, layer, n)].estimate for n in ("cs_gap_adversarial", "cs_gap_noise"))
            assert e.estimate == pytest.approx(adv - noise, abs=1e-5)
    without = set_up(consistency, attacks=["pgd", "ensemble"], attack="ensemble")
    assert consistency._needs_version_b({"attacks": without.P.attacks}) is not None


def test_consistent_loss_tracing_and_interpretability_share_models(shared_cache):
    s4 = set_up(consistent_loss)
    r4 = consistent_loss.run(s4)
    assert list(r4.table["method"]) == ["standard", "at", "cl-10", "squared", "anchored"]
    assert list(r4.table["control"]) == [False, False, False, True, True]
    assert r4.table["lambda"].tolist()[1:3] == [0.0, 10.0]
    common = consistent_loss.common_table(r4)
    assert set(common.method) == {"standard", "at", "cl-10"} and common.k.nunique() == 1, "same K for every model"
    assert common.n_images.nunique() == 1, "the same images for every model"
    curves = consistent_loss.training_curves(r4)
    assert set(curves.epoch) == {1} and in_unit(*curves.adv_acc_end, *curves.clean_acc_end)
    m4 = consistent_loss.summarize(r4, s4)
    keep(consistent_loss, {}, m4)
    check_metrics(m4)
    check_claims(consistent_loss, s4, m4)
    assert in_unit(m4["clean_acc_cl"], m4["pgd_acc_cl"], m4["pgd_acc_standard"])
    assert consistent_loss.lambdas_in(m4) == [0.0, 10.0]
    assert consistent_loss.before_after_rows(r4, s4, ["standard", "cl-10"])

    s5 = set_up(tracing)
    exp = s5.experiments[0]
    assert tracing.models_for(exp, s5.P)["cl"].key == r4.models[0]["cl-10"].model.key, "chapter 5 reuses chapter 4's model"
    r5 = tracing.run(s5)
    m5 = tracing.summarize(r5, s5)
    keep(tracing, {}, m5)
    check_metrics(m5)
    check_claims(tracing, s5, m5)
    assert set(r5.table["model"]) == set(tracing.MODELS)
    assert in_unit(m5["detect_auc_standard"], m5["detect_auc_cl"], m5["detect_auc_null_standard"],
                   m5["detect_auc_msp_standard"], m5["agreement_clean_standard"])
    assert set(r5.table["layer"]) == {"conv2", "fc1"} and set(r5.table["weighted"]) == {False, True}
    assert tracing.example_cases(r5, s5)

    s7 = set_up(interpretability)
    exp7 = s7.experiments[0]
    assert interpretability.models_to_compare(exp7, s7.P)["cl"].key == r4.models[0]["cl-10"].model.key
    r7 = interpretability.run(s7)
    m7 = interpretability.summarize(r7, s7)
    keep(interpretability, {}, m7)
    check_metrics(m7)
    check_claims(interpretability, s7, m7)
    for model in interpretability.MODELS:
        assert interpretability.metric_name("clean_acc", model) in m7
    assert r7.x_eval.shape[0] == r7.n_scored[0] <= s7.P.n_eval and m7["n_scored_per_seed"] == [r7.n_scored[0]]
    # the member compared is chosen on the selection seed, which is never scored
    assert set(r7.sweep.seed) == {s7.P.selection_seed} and s7.P.selection_seed not in set(r7.per_image.seed)
    assert set(r7.sweep.model) == {"standard", "pgd_at", interpretability.nas_name(1.0, 0.1)}
    assert r7.selected == interpretability.nas_name(1.0, 0.1) and m7["matched"] in (0, 1)
    assert in_unit(m7["aa_acc_nas"], m7["aa_acc_pgd_at"], m7["masking_standard"])
    comp = r7.comparisons
    assert comp.primary.sum() == len(interpretability.PAIRS) and (comp.p_holm.dropna() >= comp.p[comp.usable]).all()
    _scored_runs_read_the_recorded_selection(s7, r7, m7)
    for (a, b) in interpretability.PAIRS:
        pair = interpretability.pair_name(a, b)
        assert 0 <= m7[f"n_better_{pair}"] + m7[f"n_worse_{pair}"] <= m7[f"n_compared_{pair}"]
    thresholds = interpretability.threshold_table(r7, s7.P)
    assert set(thresholds.threshold) == set(interpretability.MPRT_THRESHOLDS)
    for method in interpretability.attribution.METHODS:
        assert m7[f"mprt_pass_{method}_standard"] in (0, 1)
    words = interpretability.verdicts(r7, s7, m7)
    assert words["nas_vs_standard_verdict"].split(",")[0] in claims.VERDICTS


def _scored_runs_read_the_recorded_selection(s7, r7, m7):
    """Issue 44, item 4: the selection step is recorded first and a scored run reads the compared weight
    from it without running the sweep again; a record made with other parameters is refused."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        chosen = interpretability.choose(s7.P, s7.A)
        assert chosen.selected == r7.selected and chosen.matched == r7.matched
        path = interpretability.write_selection(chosen, Path(tmp) / "selection.json", {"commit": "test"})
        P = interpretability.validate({**s7.P.public(), "selection_record": str(path)})
        again = interpretability.setup(P)
        original, interpretability.choose = interpretability.choose, None   # the sweep must not run again
        try:
            r = interpretability.run(again)
        finally:
            interpretability.choose = original
        m = interpretability.summarize(r, again)
        assert r.selected == r7.selected and comparable(m) == comparable(m7)
        other = interpretability.validate({**s7.P.public(), "selection_record": str(path), "match_tol": 0.5})
        with pytest.raises(ValueError, match="selection_record"):
            interpretability.read_selection(other)


def test_wrong_predictions(shared_cache):
    setup = set_up(wrong_predictions, **fingerprint.CHANGES[wrong_predictions.CHAPTER.stem])
    result = wrong_predictions.run(setup)
    m = wrong_predictions.summarize(result, setup)
    keep(wrong_predictions, fingerprint.CHANGES[wrong_predictions.CHAPTER.stem], m)
    check_metrics(m)
    check_claims(wrong_predictions, setup, m)
    assert in_unit(m["auroc_lcr"], m["auroc_conductance"], m["auroc_combined"], m["coverage"], m["acc_kept"],
                   m["auroc_msp"], m["auroc_energy"], m["auroc_combined_paper_protocol"])
    counts, curves = wrong_predictions.mutant_curves(result, setup)
    assert curves.shape == (1, len(counts))
    assert "(n = 1)" in wrong_predictions.paper_comparison(result, setup).iloc[-1, 0]
    table = wrong_predictions.lcr_table(result)  # NAI and GF at both table rates, the detector's operator among them
    assert len(table) == 2 * len(setup.P.table_rates) and table["filters changed"].nunique() == len(setup.P.table_rates)
    assert in_unit(*table["AUROC"]) and m["filters_mutated"] >= 1 and m["conductance_layer"] == "conv2"
    assert claims.assess(wrong_predictions.CLAIMS[0], {**setup.P.public(), **m}).verdict == claims.UNMEASURED


def test_mutation_rate_that_mutates_nothing_fails_in_setup():
    with pytest.raises(ValueError, match=r"^mutation_rate=0.001 is not allowed"):
        set_up(wrong_predictions, mutation_rate=0.001)
    with pytest.raises(ValueError, match=r"^table_rates\[1\]=0.0001 is not allowed"):
        set_up(wrong_predictions, table_rates=[0.1, 0.0001])


def test_over_seeds_takes_every_seed_once_and_clocks_each():
    import time

    s = set_up(neurons, seeds=[4, 1])
    assert setting.over_seeds(s, lambda seed, exp: (seed, exp.seed)) == {4: (4, 4), 1: (1, 1)}
    assert set(s.seconds) == {"4", "1"} and all(v >= 0 for v in s.seconds.values())
    before = dict(s.seconds)
    for seed, _ in setting.each_seed(s):  # the loop body is the seed's work: its time adds to the seed's
        if seed == 1:
            time.sleep(0.05)
    assert s.seconds["1"] - before["1"] >= 0.05 > s.seconds["4"] - before["4"]
    with setting.timed(s, "selection seed 3"):
        pass
    assert s.seconds["selection seed 3"] >= 0


def test_every_study_gives_identical_metrics_from_an_empty_cache(tmp_path, monkeypatch):
    """Determinism: every study above, run again with an empty model cache (training, attacks and
    metrics all recomputed), gives exactly the same metrics (chapters 4, 5 and 7 in their order, as
    5 and 7 use 4's models)."""
    if not FIRST_RUNS:
        pytest.skip("run the whole module: the first runs are the tests above")
    monkeypatch.setenv("ADVINTERP_CACHE", str(tmp_path / "cache"))
    for mod in (transfer, neurons, consistency, consistent_loss, tracing, interpretability, wrong_predictions):
        if mod.__name__ not in FIRST_RUNS:
            continue
        changes, first = FIRST_RUNS[mod.__name__]
        setup = set_up(mod, **changes)
        again = comparable(mod.summarize(mod.run(setup), setup))
        assert again == first, f"{mod.__name__} differs between two runs"


def test_the_committed_fingerprints_are_the_codes():
    """Issue 44, item 2: book/recorded/fingerprints.json holds each chapter's measurement fingerprint under
    this code (its tiny runs above and the model code's digest). A change on a chapter's measurement path
    moves it: write it again (python -m advinterp.studies.fingerprint --write) and commit it; records made
    with the old one are then stale."""
    if len(FINGERPRINT_RUNS) < len(fingerprint.CHAPTERS):
        pytest.skip("run the whole module: the tiny runs are the tests above")
    committed = fingerprint.committed()
    models = fingerprint.code_digest()
    moved = {stem: (committed.get(stem), fingerprint.fingerprint(FINGERPRINT_RUNS[stem], models))
             for stem in fingerprint.CHAPTERS}
    moved = {stem: pair for stem, pair in moved.items() if pair[0] != pair[1]}
    assert not moved, (f"the measurement of {sorted(moved)} changed (committed, now: {moved}): run "
                       "`.venv/bin/python -m advinterp.studies.fingerprint --write` and commit "
                       "book/recorded/fingerprints.json; records made before are then stale")


# ----------------------------------------------------------------------------- chapter 8


def _sweep_table(drop: str | None = None, seeds: int = 3) -> pd.DataFrame:
    """A sweep table with every metric chapter 8 reads, named by the studies themselves."""
    rows = []
    for column, (chapter, names) in side_by_side.columns().items():
        for metric in names.values():
            rows.append((chapter, metric))
    lambdas = {consistent_loss.lambda_metric(m, lam): 0.5 for m in consistent_loss.MEASURES for lam in (0.0, 10.0)}
    by_chapter: dict[str, dict] = {}
    for chapter, metric in rows:
        by_chapter.setdefault(chapter, {})[metric] = 0.5
        by_chapter[chapter][f"{metric}_std"] = 0.01 if seeds > 1 else None
    by_chapter[consistent_loss.CHAPTER.stem] = lambdas
    by_chapter[interpretability.CHAPTER.stem]["lambda_cl"] = 10.0
    table = [{"chapter": c, "status": "ok", "error": "", **ms} for c, ms in by_chapter.items()]
    table.append({"chapter": consistency.CHAPTER.stem, "status": "ok", "error": "", "eps": 0.3,
                  **{m: 0.4 for m in (*consistency.CONSISTENCY_METRICS, *consistency.REPRESENTATION_METRICS)}})
    frame = pd.DataFrame(table)
    if drop is not None:
        frame = frame.drop(columns=[drop])
    return frame


def test_side_by_side_reads_the_studies_metric_names():
    result = side_by_side.collect(_sweep_table())
    assert result.values["clean_acc_standard"] == 0.5
    assert result.values["detect_auc_cl"] == 0.5 and "detect_auc_pgd_at" not in result.values
    shown = side_by_side.display_table(result.values)
    assert shown.loc["wrong-prediction AUROC (ch. 6)", "PGD adversarial training"] == "not measured"
    assert list(result.lambdas["lambda"]) == [0.0, 10.0]
    metrics = side_by_side.summarize(result, None)  # type: ignore[arg-type]
    assert metrics["lambda_cl_in_table"] == 10.0


def test_side_by_side_fails_naming_a_missing_metric():
    missing = interpretability.metric_name("pgd_acc", "nas")
    with pytest.raises(side_by_side.MissingMetric, match=f"07-sensitivity-regularization.*{missing}"):
        side_by_side.collect(_sweep_table(drop=missing))
    failed = _sweep_table()
    failed.loc[failed.chapter == tracing.CHAPTER.stem, "status"] = "failed"
    with pytest.raises(side_by_side.MissingMetric, match="05-tracing-and-detection did not finish"):
        side_by_side.collect(failed)


def test_one_seed_shows_n_equals_one_not_zero_spread():
    result = side_by_side.collect(_sweep_table(seeds=1))
    assert result.values["clean_acc_standard_std"] is None
    assert side_by_side.display_table(result.values).iloc[0, 0] == "0.500 (n = 1)"
    assert results.mean_std([0.3]) == (0.3, pytest.approx(float("nan"), nan_ok=True))
    table = pd.DataFrame({"method": ["a", "b", "b"], "x": [0.1, 0.2, 0.4]})
    shown = results.mean_std_table(table, "method", ["x"])
    assert shown.loc["a", "x"] == "0.100 (n = 1)" and shown.loc["b", "x"] == "0.300 ± 0.141"


def test_studies_take_no_hidden_settings():
    """Chapter 7's consistency uses its own k (not a hidden k=20)."""
    assert "k" in interpretability.CHAPTER.names
