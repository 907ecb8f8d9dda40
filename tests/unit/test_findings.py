"""The papers' claims decided from results files by intervals: every chapter declares its claims with
an effect and a delta, the recorded runs are indexed per tier and carry provenance, the scorecard and
every chapter's "At scale" section glue only names they produce, and a recorded sweep is decided the
same way as a live run."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from advinterp.data import datasets
from advinterp.report import recorded as rec
from advinterp.report.results import aggregate_seed_runs
from advinterp.core.stats import SeedEffect, per_seed_metrics
from advinterp.report import claims
from advinterp.studies import scorecard, study
from chapter_tools import REPO

CHAPTERS = list(scorecard.chapters())
GLUE = re.compile(r"\{glue:[a-z]*\}`([A-Za-z0-9_]+)")


def _markdown(stem: str) -> list[str]:
    nb = json.loads((REPO / "book" / f"{stem}.ipynb").read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


@pytest.mark.parametrize("stem", CHAPTERS)
def test_every_claim_declares_an_effect_with_a_delta_and_its_reason(stem):
    declared = study(stem).CLAIMS
    assert declared, f"{stem} declares no claims"
    for c in declared:
        assert c.effects and c.paper and c.text
        for e in c.effects:
            assert e.delta > 0 and len(e.reason) > 20 and e.label, (c.key, e.name)
            assert re.fullmatch(r"[0-9a-f]{7,40}", e.declared), (c.key, e.name, "declared in which commit?")


def test_every_extension_sits_under_a_paper_row_of_its_chapter():
    """Every claim of the four papers has a paper row; an extension names the paper row it extends."""
    for stem in CHAPTERS:
        declared = study(stem).CLAIMS
        papers = {c.key for c in declared if c.protocol == claims.PAPER}
        assert papers, f"{stem} has no paper row"
        for c in declared:
            assert c.protocol in claims.PROTOCOLS
            if c.protocol == claims.EXTENSION:
                assert c.extends in papers and not c.scored, c.key
        first = claims.ordered(declared)[0]
        assert first.key in papers or first.protocol == claims.PREMISE
    with pytest.raises(ValueError, match="extends"):
        claims.Claim("x", "p", "t", "99-x", _claim().effects, protocol="extension")
    with pytest.raises(ValueError, match="protocol"):
        claims.Claim("x", "p", "t", "99-x", _claim().effects, protocol="ours")


def test_every_chapter_is_listed_in_the_scale_index_for_every_tier():
    index = rec.scale_index()
    for stem in CHAPTERS:
        assert stem in index, f"{stem} missing from book/recorded/scale.yaml"
        for tier in rec.TIERS:
            entry = index[stem].get(tier)
            assert entry is not None and (entry.get("run") or entry.get("note")), f"{stem}/{tier}: no run, no reason"


@pytest.mark.parametrize("stem", CHAPTERS)
@pytest.mark.parametrize("tier", list(rec.TIERS))
def test_recorded_results_exist_and_carry_provenance(stem, tier):
    record, _ = rec.scale_record(stem, tier)
    if record is None:
        pytest.skip(f"{stem} has no {tier} record (book/recorded/scale.yaml says why)")
    for field in rec.PROVENANCE_FIELDS:
        assert record.provenance.get(field), f"{record.run}/provenance.json lacks {field}"
    assert record.command, f"{record.run}/provenance.json has no command for {stem}"
    for claim in study(stem).CLAIMS:
        f = claims.assess(claim, {**record.params, **record.metrics})
        assert f.verdict in (*claims.VERDICTS, claims.NOT_COMPARABLE) and (f.outcome is not None or f.note)


@pytest.mark.parametrize("stem", CHAPTERS)
def test_the_cpu_tier_decides_every_claim_on_three_seeds_of_per_seed_values(stem):
    """The CPU tier's contract (issue: natural images without a GPU): every chapter, three seeds, and
    the per-seed values the interval rules need, so no claim of a current record reads "not measured" for
    want of them (a stale record is evidence nowhere, an incomplete one says how many seeds are in)."""
    record, _ = rec.scale_record(stem, "cpu")
    if record is None:
        pytest.skip(f"{stem} has no cpu record (book/recorded/scale.yaml says why)")
    if rec.stale_reason(stem, "cpu") or record.missing_seeds:
        pytest.skip(f"{stem}'s cpu record is stale or incomplete: the page says so and counts nothing")
    assert len(record.seeds) == 3, record.seeds
    observed = {**record.params, **record.metrics}
    for claim in study(stem).CLAIMS:
        if claim.applies is not None and claim.applies(observed):
            continue
        for e in claim.effects:
            values = record.metrics.get(f"{e.results_name(observed)}_per_seed")
            assert len(values or []) == 3, (claim.key, e.name)


@pytest.mark.parametrize("stem", CHAPTERS)
def test_every_chapter_ends_with_its_at_scale_section_gluing_only_what_it_makes(stem):
    cells = _markdown(stem)
    (section,) = [c for c in cells if c.startswith("## At scale: CIFAR-10")]
    assert cells.index(section) < len(cells) - 1 and cells[-1].startswith("## What we found")
    live = {"dataset": "mnist5k"}
    words = claims.at_scale(study(stem).CLAIMS, live).words
    assert set(GLUE.findall(section)) <= set(words), "the section glues a name at_scale does not produce"
    assert all(f.verdict == claims.UNMEASURED for f in (claims.assess(c, live) for c in study(stem).CLAIMS))


def test_the_intro_opens_with_the_scorecard_and_glues_only_its_counts(tmp_path):
    cells = _markdown("intro")
    assert cells[1].startswith("## Scorecard")
    card = scorecard.rows(tmp_path)  # no chapter has run: every default verdict says so
    names = set(GLUE.findall(cells[1]))
    assert names and names <= set(claims.counts(card)) | {"delta_history_words"}
    table = scorecard.table(card)
    assert len(table) == sum(len(study(s).CLAIMS) for s in CHAPTERS)
    assert set(table[scorecard.SHORT_TIERS[claims.DEFAULT_TIER]]) == {"not run yet"}
    assert not any(re.search(r"\b[a-z0-9]+_[a-z0-9_]+\b", str(v)) for v in table.to_numpy().ravel()), \
        "a cell shows an internal name"
    counts = claims.counts(card)
    assert counts["n_not_measured_default"] == counts["n_claims"] < len(table), "the tool claim is shown, not counted"
    assert counts["n_not_counted"] == 2, "chapter 1's tool and chapter 7's premise are shown, not counted"
    assert counts["n_claims"] + counts["n_extensions"] + counts["n_not_counted"] == len(table), \
        "only paper rows are counted"


def _claim(key="k", **effect):
    e = claims.Effect(**{"name": "effect_k", "label": "an effect", "delta": 0.05, "reason": "a reason", **effect})
    return claims.Claim(key, "p", "t", "99-x", (e,))


def test_a_claim_is_decided_by_its_interval_and_says_why_it_is_not():
    c = _claim()
    holds = per_seed_metrics("effect_k", {0: SeedEffect.normal(0.2, 0.01), 1: SeedEffect.normal(0.22, 0.01),
                                          2: SeedEffect.normal(0.18, 0.01)})
    f = claims.assess(c, holds)
    assert f.verdict == claims.HOLDS and f.cell().startswith("holds: +0.200")
    assert claims.assess(c, None).cell() == "not run yet"
    missing = claims.assess(c, {"other": 1.0})
    assert missing.verdict == claims.UNMEASURED and "per-seed" in missing.cell()
    nan = per_seed_metrics("effect_k", {0: SeedEffect(float("nan"), float("nan"), float("nan"))})
    why = claims.assess(c, {**nan, "effect_k_why": "too few images fool the network"})
    assert why.verdict == claims.UNMEASURED and "too few images" in why.cell()
    inapplicable = claims.Claim("k", "p", "t", "99-x", c.effects, applies=lambda m: "not for this data")
    assert "not for this data" in claims.assess(inapplicable, holds).cell()


def test_split_runs_of_a_one_seed_chapter_aggregate_every_metric():
    metrics, left = aggregate_seed_runs([{"acc": 0.5, "eps": 0.3}, {"acc": 0.7, "eps": 0.3}], spread_all=True)
    assert metrics["acc"] == pytest.approx(0.6) and metrics["acc_std"] == pytest.approx(0.1414, abs=1e-4)
    assert metrics["eps"] == 0.3 and "eps_std" not in metrics and not left


def test_per_seed_values_are_concatenated_over_seed_runs():
    runs = [{"m": 0.5, "m_std": None, "m_per_seed": [0.5]}, {"m": 0.7, "m_std": None, "m_per_seed": [0.7]}]
    metrics, _ = aggregate_seed_runs(runs)
    assert metrics["m_per_seed"] == [0.5, 0.7] and metrics["m"] == pytest.approx(0.6)


def test_a_finished_sweep_is_recorded_and_decided_at_scale(tmp_path):
    """``--record NAME --tier cpu``: a sweep's seed runs become one recorded results file per chapter,
    with provenance, and the chapter's "At scale" section decides its claims from the per-seed values."""
    stem = "03-neuron-consistency"
    root = tmp_path / "runs" / "scale"
    images = tmp_path / "images" / "train" / "cat"
    images.mkdir(parents=True)
    (images / "0.jpg").write_bytes(b"jpeg")
    images = tmp_path / "images"
    rows = []
    for seed, effect in enumerate([0.08, 0.07, 0.075]):
        run = f"seed={seed}-x"
        metrics = {"consis_real": 0.5, "consis_real_std": None, "consis_real_per_seed": [0.5],
                   **per_seed_metrics("effect_representation_heldout", {seed: SeedEffect.normal(effect, 0.005, 400)}),
                   **per_seed_metrics("cs_gap_adversarial_ensemble_attacked_fc1",
                                      {seed: SeedEffect.normal(effect, 0.005, 400)}),
                   **{k: v for a in ("fgsm", "illc") for name in (f"consistency_drop_{a}_attacked_conv2",
                                                                  f"consistency_drop_real_{a}_attacked_conv2",
                                                                  f"consistency_drop_real_{a}_attacked_fc1")
                      for k, v in per_seed_metrics(name, {seed: SeedEffect.normal(0.2, 0.01, 400)}).items()}}
        (root / stem / run / "results").mkdir(parents=True)
        (root / stem / run / "results" / f"{stem}.json").write_text(json.dumps(
            {"chapter": stem, "params": {"seeds": [seed], "dataset": "imagefolder", "attacks": ["fgsm", "illc"],
                                         "model": "small_cnn", "attack": "ensemble", "data_root": str(images)},
             "metrics": metrics, "seconds": {str(seed): 9.0 + seed}}))
        rows.append({"chapter": stem, "run": run, "status": "ok", "seconds": 10.0})
    pd.DataFrame(rows).to_csv(root / "runs.csv", index=False)
    _executed_notebook_with_a_figure(root / stem / rows[0]["run"] / "notebook.ipynb")
    folder = tmp_path / "recorded"
    folder.mkdir()
    (folder / "scale.yaml").write_text("# what the fields mean\n# (kept)\n" + f"{stem}:\n  gpu: {{run: null, note: not yet}}\n")
    dest = rec.record_sweep(root, "cpu-test", what="a test", command="python -m advinterp.sweep x", folder=folder,
                            tier="cpu")
    (png, caption), = rec.figures(stem, "cpu", folder)
    assert png.read_bytes().startswith(b"\x89PNG") and caption == "A caption."
    record, note = rec.scale_record(stem, "cpu", folder)
    assert record is not None and record.run == "cpu-test" and dest == folder / "cpu-test" and note == "a test"
    assert record.seeds == [0, 1, 2] and record.metrics["effect_representation_heldout_per_seed"] == [0.08, 0.07, 0.075]
    assert record.provenance["device_seconds"][stem] == 30.0 and len(record.provenance["run_seconds"][stem]) == 3
    assert all(record.provenance.get(f) for f in rec.PROVENANCE_FIELDS)
    # each seed's seconds (the studies' clocks) and the data it ran on, by the digest of its listing
    assert record.provenance["seed_seconds"][stem] == {"0": 9.0, "1": 10.0, "2": 11.0}
    assert rec.seed_seconds(record.provenance).loc[stem].tolist() == [9.0, 10.0, 11.0]
    (data,) = record.provenance["data"]
    assert data["files"] == 1 and data == datasets.tree_digest(images)
    assert rec.scale_record(stem, "gpu", folder) == (None, "not yet")
    assert (folder / "scale.yaml").read_text().startswith("# what the fields mean\n# (kept)\n")
    section = claims.at_scale(study(stem).CLAIMS, {"dataset": "mnist5k"}, folder)
    assert "cpu-test" in section.words["scale_summary"] and "3 seed(s); a test" in section.words["scale_summary"]
    column = section.table[rec.TIERS["cpu"]]
    assert all(cell.startswith(claims.HOLDS) for cell in column)
    with pytest.raises(ValueError, match="tier='tpu'"):
        rec.scale_record(stem, "tpu", folder)
    # recorded again (a rerun, here faster): the replaced provenance is kept under "earlier"
    pd.DataFrame([{**r, "seconds": 2.0} for r in rows]).to_csv(root / "runs.csv", index=False)
    rec.record_sweep(root, "cpu-test", what="a rerun", command="python -m advinterp.sweep x", folder=folder, tier="cpu")
    again = json.loads((dest / "provenance.json").read_text())
    assert again["device_seconds"][stem] == 6.0 and [e["device_seconds"][stem] for e in again["earlier"]] == [30.0]
    rec.record_sweep(root, "cpu-test", what="a rerun", command="python -m advinterp.sweep x", folder=folder, tier="cpu")
    assert len(json.loads((dest / "provenance.json").read_text())["earlier"]) == 1  # the same record is no history
    # the tier's notes per chapter, and an out-of-date mark set and cleared, keeping the header
    rec.annotate("cpu", {stem: "small_cnn, 3 seeds"}, stale={stem: "the code changed."}, folder=folder)
    assert rec.scale_index(folder)[stem]["cpu"] == {"run": "cpu-test", "note": "small_cnn, 3 seeds",
                                                   "stale": "the code changed."}
    rec.annotate("cpu", stale={stem: None}, folder=folder)
    assert "stale" not in rec.scale_index(folder)[stem]["cpu"] and rec.scale_index(folder)[stem]["gpu"]["run"] is None
    assert (folder / "scale.yaml").read_text().startswith("# what the fields mean\n# (kept)\n")
    with pytest.raises(ValueError, match="chapter='99-nope'"):
        rec.annotate("cpu", {"99-nope": "x"}, folder=folder)
    with pytest.raises(ValueError, match="tier='tpu'"):
        rec.annotate("tpu", {stem: "x"}, folder=folder)


def _executed_notebook_with_a_figure(path):
    """An executed notebook whose one code cell shows a captioned figure (a 1x1 PNG)."""
    import base64
    import io

    import nbformat
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, format="PNG")
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("fig = ...")
    cell.metadata["mystnb"] = {"figure": {"name": "fig-x", "caption": "A caption."}}
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(buf.getvalue()).decode()})]
    nb.cells = [cell]
    nbformat.write(nb, path)


@pytest.mark.parametrize("stem", CHAPTERS)
def test_an_out_of_date_record_says_so_in_a_sentence_of_its_own(stem):
    """book/recorded/scale.yaml's ``stale`` reason is on the page, as one sentence ending in a full stop."""
    summary = claims.at_scale(study(stem).CLAIMS, {"dataset": "mnist5k"}).words["scale_summary"]
    for tier in rec.TIERS:
        stale = rec.stale_reason(stem, tier) if rec.scale_record(stem, tier)[0] is not None else None
        if stale:
            assert f"**stale, not evidence:** {stale.rstrip('.')}. " in summary


def test_a_table_for_the_pdf_is_a_longtable_with_widths_from_its_text():
    """The PDF's tables (issue 35): a MyST list-table set as a longtable in small type, one width per
    column, the column with more text wider; the HTML keeps every cell whole."""
    from advinterp.report.tables import Table, column_widths

    frame = pd.DataFrame({"ch.": ["01", "02"], "claim": ["a long claim " * 6, "short"], "cell": ["x | y", "z"]})
    md = Table(frame)._repr_markdown_()
    assert "```{list-table}" in md and ":class: longtable" in md and "\\footnotesize" in md
    widths = column_widths(frame)
    assert f":widths: {' '.join(map(str, widths))}" in md and len(widths) == 3 and widths[1] > widths[0]
    assert abs(sum(widths) - 100) <= 2 and "x | y" in md
    html = Table(frame, {"a": "#000"}, ["cell"], font_size="0.85em")._repr_html_()
    assert "a long claim" in html and "font-size: 0.85em" in html


@pytest.mark.parametrize("stem", CHAPTERS)
def test_no_glue_role_sits_inside_a_code_span(stem):
    """A role written inside backticks renders as the literal text `{glue:text}`name`` (seen on
    chapter 1's page): the number never reaches the reader."""
    for cell in _markdown(stem):
        assert "`{glue:" not in cell, f"{stem}: a glue role inside a code span: {cell[cell.index('`{glue:') - 40:][:90]!r}"


def test_a_seed_left_out_is_named_and_a_nan_seed_is_not_an_error():
    c = _claim()
    m = {"seeds": [0, 1, 2], "effect_k_why": "seed 1's bootstrap was undefined",
         **per_seed_metrics("effect_k", {0: SeedEffect.normal(0.2, 0.01), 1: SeedEffect(0.3, float("nan"), float("nan")),
                                         2: SeedEffect.normal(0.21, 0.01)})}
    f = claims.assess(c, m)
    assert f.outcome.interval.n_seeds == 2 and "2 seeds of 3" in f.cell() and "seed 1" in f.cell()
    assert "undefined" in f.cell() and "2 of 3 seeds" in f.short_cell()
    # every bound NaN (estimate finite): not measured, never a ValueError
    bounds = {"seeds": [0], **per_seed_metrics("effect_k", {0: SeedEffect(0.2, float("nan"), float("nan"))})}
    assert claims.assess(c, bounds).verdict == claims.UNMEASURED


def _found(verdict_seeds: list[tuple[float, int]]) -> list[tuple[claims.Claim, dict[str, claims.Finding]]]:
    """A card of paper rows, each decided at the default on ``n`` seeds around an estimate (se 0.01)."""
    rows = []
    for i, (est, n) in enumerate(verdict_seeds):
        c = _claim(key=f"k{i}", name=f"effect_k{i}")
        m = {"seeds": list(range(n)), **per_seed_metrics(f"effect_k{i}", {
            s: SeedEffect.normal(est + 0.001 * s, 0.01) for s in range(n)})}
        rows.append((c, {claims.DEFAULT_TIER: claims.assess(c, m),
                         **{t: claims.Finding(c, claims.UNMEASURED, note="not run") for t in rec.TIERS.values()}}))
    return rows


def test_one_run_verdicts_are_counted_apart():
    card = _found([(0.2, 3), (0.2, 1), (-0.2, 1), (0.2, 3)])
    counts = claims.counts(card)
    assert counts["n_holds_default"] == 2 and counts["n_one_run_holds_default"] == 1
    assert counts["n_opposite_default"] == 0 and counts["n_one_run_opposite_default"] == 1
    assert counts["n_one_run_default"] == 2 and "one training run" in card[1][1][claims.DEFAULT_TIER].short_cell()


def test_the_scorecard_states_its_error_rate_with_holm():
    card = _found([(0.2, 3), (0.022, 1), (0.0, 3), (0.3, 3)])
    counts = claims.counts(card)
    assert counts["n_decided_default"] == 4 and counts["n_chance_default"] == pytest.approx(0.2)
    # 0.022 +- 0.0196 holds alone (p = 0.028) but not after Holm: third smallest of four, 0.028 * 2 > 0.05
    assert card[1][1][claims.DEFAULT_TIER].verdict == claims.HOLDS
    assert counts["n_holds_holm_default"] == 2 and "2 of the 3 'holds'" in counts["error_words_default"]
    assert counts["error_words_cpu"] == "no paper row is measured here"


def test_tools_and_premises_are_never_counted():
    for stem in CHAPTERS:
        for c in study(stem).CLAIMS:
            if c.protocol == claims.PREMISE or not c.counted:
                assert not c.scored, c.key
    (premise,) = [c for c in study("07-sensitivity-regularization").CLAIMS if c.key == "robust_premise"]
    assert premise.protocol == claims.PREMISE
    (tool,) = study("01-adversarial-examples").CLAIMS


def test_a_chapter_of_tools_has_no_counted_rows_on_its_page(tmp_path):
    (tool,) = study("01-adversarial-examples").CLAIMS
    folder = tmp_path / "recorded"
    _one_record(folder, None, "01-adversarial-examples", (tool.effects[0].name,))
    words = claims.at_scale([tool], {}, folder).words["scale_summary"]
    assert "counted paper rows)" not in words and "no row of this chapter is a counted paper row" in words


def _one_record(folder, stale: str | None, stem: str = "06-error-detection",
                effects: tuple[str, ...] = ("effect_wu_combination", "effect_wu_vs_msp")) -> None:
    """A CPU-tier record of one chapter whose ``effects`` clearly hold on three seeds."""
    (folder / "run").mkdir(parents=True)
    metrics = {k: v for e in effects for k, v in per_seed_metrics(e, {s: SeedEffect.normal(0.1, 0.005)
                                                                         for s in range(3)}).items()}
    (folder / "run" / f"{stem}.json").write_text(json.dumps({"chapter": stem, "params": {"seeds": [0, 1, 2]},
                                                             "metrics": metrics}))
    (folder / "run" / "provenance.json").write_text(json.dumps({"what": "t", "commit": "c", "date": "d",
                                                                "machine": {}, "commands": {stem: "x"},
                                                                "fingerprints": {stem: "f0"}}))
    (folder / "fingerprints.json").write_text(json.dumps({"fingerprints": {stem: "f0"}}))
    entry = {"run": "run", "note": "a test record"} | ({"stale": stale} if stale else {})
    (folder / "scale.yaml").write_text(json.dumps({stem: {"cpu": entry}}))


@pytest.mark.parametrize("stale", [None, "its mutants were drawn with replacement"])
def test_a_stale_record_counts_nowhere(tmp_path, stale):
    """Issue 44, item 1: the scorecard, the forest plot and the chapter's section show a stale record as
    stale, never as a verdict, and count nothing from it."""
    folder = tmp_path / "recorded"
    _one_record(folder, stale)
    card = scorecard.rows(tmp_path / "no-results", folder)
    counts = claims.counts(card)
    cpu = [found["CIFAR-10, CPU tier"] for c, found in card if c.chapter == "06-error-detection"]
    forest = claims.forest(card)
    summary = claims.at_scale(study("06-error-detection").CLAIMS, {}, folder).words["scale_summary"]
    if stale is None:
        assert counts["n_holds_cpu"] >= 1 and counts["n_stale_cpu"] == 0 and len(forest)
        assert "stale" not in summary
        return
    assert counts["n_stale_cpu"] == sum(c.scored and c.chapter == "06-error-detection" for c, _ in card)
    assert all(counts[f"n_{v.replace(' ', '_')}_cpu"] == 0 for v in claims.VERDICTS if v != claims.UNMEASURED)
    assert counts["n_decided_cpu"] == 0 and forest.empty
    assert all(f.verdict == claims.STALE and f.short_cell() == "stale (not counted)" and stale in f.cell()
               for f in cpu)
    table = scorecard.table(card)
    assert not table["CIFAR-10, CPU"].str.contains("holds").any()
    assert "stale, not evidence" in summary and stale in summary and "counted paper rows" not in summary


def test_a_paper_number_from_another_network_is_not_comparable(tmp_path):
    """Issue 44, item 7: chapter 6's paper row holds a run against ResNet-20's 0.933; a small CNN's run is
    shown as not comparable and counted nowhere, while ResNet-20's is decided."""
    (c,) = [c for c in study("06-error-detection").CLAIMS if c.key == "wu_auroc"]
    metrics = {"is_cifar10": 1, "seeds": [0, 1, 2],
               **per_seed_metrics(c.effects[0].name, {s: SeedEffect.normal(0.01, 0.005) for s in range(3)})}
    small = claims.assess(c, {**metrics, "model": "small_cnn"})
    paper = claims.assess(c, {**metrics, "model": "resnet20"})
    assert small.verdict == claims.NOT_COMPARABLE and not small.decided and "ResNet-20" in small.cell()
    assert "not comparable" in small.short_cell() and paper.verdict == claims.HOLDS and paper.decided
    rows = [(c, {claims.DEFAULT_TIER: small, **{t: claims.Finding(c, claims.UNMEASURED, note="not run")
                                                  for t in rec.TIERS.values()}})]
    counts = claims.counts(rows)
    assert counts["n_not_comparable_default"] == 1 and counts["n_holds_default"] == 0
    assert counts["n_decided_default"] == 0 and claims.forest(rows).empty


def test_the_code_decides_staleness_by_the_fingerprint(tmp_path):
    """Issue 44, item 2: a record made with another fingerprint than the current code's, or without one,
    is stale with no hand-written note; the note, when there is one, is the reason in words."""
    folder = tmp_path / "recorded"
    _one_record(folder, None)
    stem = "06-error-detection"
    assert rec.stale_reason(stem, "cpu", folder) is None
    (folder / "fingerprints.json").write_text(json.dumps({"fingerprints": {stem: "f1"}}))
    assert "recorded fingerprint f0, current f1" in rec.stale_reason(stem, "cpu", folder)
    prov = json.loads((folder / "run" / "provenance.json").read_text())
    del prov["fingerprints"]
    (folder / "run" / "provenance.json").write_text(json.dumps(prov))
    assert "before a record carried the fingerprint" in rec.stale_reason(stem, "cpu", folder)
    card = scorecard.rows(tmp_path / "no-results", folder)
    assert claims.counts(card)["n_holds_cpu"] == 0 and claims.counts(card)["n_stale_cpu"] > 0
