"""The papers' claims decided from results files: the recorded runs at scale exist, carry provenance
and hold every name the rules read; the rules decide what they say; the scorecard and every
chapter's "At scale" section glue only names they produce."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from advinterp.report import recorded as rec
from advinterp.report import sweeps
from advinterp.studies import findings as F
from advinterp.studies import scorecard
from chapter_tools import REPO

CHAPTERS = [s.CHAPTER.stem for s in scorecard.STUDIES]
GLUE = re.compile(r"\{glue:[a-z]*\}`([A-Za-z0-9_]+)")


def _markdown(stem: str) -> list[str]:
    nb = json.loads((REPO / "book" / f"{stem}.ipynb").read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def test_every_chapter_declares_claims_and_is_listed_in_the_scale_index():
    index = rec.scale_index()
    for stem in CHAPTERS:
        assert F.CLAIMS.get(stem), f"{stem} declares no claims"
        assert stem in index, f"{stem} missing from book/recorded/scale.yaml"
        assert index[stem].get("run") or index[stem].get("note"), f"{stem}: no run and no reason given"


@pytest.mark.parametrize("stem", CHAPTERS)
def test_recorded_results_exist_carry_provenance_and_every_name_the_rules_read(stem):
    record, _ = rec.scale_record(stem)
    if record is None:
        pytest.skip(f"{stem} has not been run at scale (book/recorded/scale.yaml says why)")
    for field in rec.PROVENANCE_FIELDS:
        assert record.provenance.get(field), f"{record.run}/provenance.json lacks {field}"
    assert record.command, f"{record.run}/provenance.json has no command for {stem}"
    observed = {**record.params, **record.metrics}
    for claim in F.CLAIMS[stem]:
        assert not F.missing(claim, observed), f"{record.run}/{stem}.json lacks {F.missing(claim, observed)}"
        assert F.assess(claim, observed).verdict in (F.HOLDS, F.FAILS, F.MIXED)


@pytest.mark.parametrize("stem", CHAPTERS)
def test_every_chapter_ends_with_its_at_scale_section_gluing_only_what_it_makes(stem):
    cells = _markdown(stem)
    (section,) = [c for c in cells if c.startswith("## At scale: CIFAR-10")]
    assert cells.index(section) < len(cells) - 1 and cells[-1].startswith("## What we found")
    live = {"dataset": "mnist5k"}
    words = F.at_scale(stem, live).words
    assert set(GLUE.findall(section)) <= set(words), "the section glues a name at_scale does not produce"
    assert all(f.verdict == F.UNMEASURED for f in (F.assess(c, live) for c in F.CLAIMS[stem]))


def test_the_intro_opens_with_the_scorecard_and_glues_only_its_counts(tmp_path):
    cells = _markdown("intro")
    assert cells[1].startswith("## Scorecard")
    names = set(GLUE.findall(cells[1]))
    assert names and names <= set(scorecard.counts(tmp_path))
    card = scorecard.table(tmp_path)  # no chapter has run: every default verdict says so
    n_claims = sum(len(F.CLAIMS[s]) for s in CHAPTERS)
    assert len(card) == n_claims and set(card.iloc[:, 3]) == {"not run yet"}


def test_rules_decide_what_they_say():
    m = {"a": 0.6, "a_std": 0.05, "b": 0.5, "b_std": 0.02}
    assert F.exceeds(m, "a", "b") == 1 and F.exceeds(m, "b", "a") == -1
    assert F.exceeds({**m, "a_std": 0.2}, "a", "b") == 0  # within the larger spread
    assert F.greater("a", "b", "A", "B")(m)[0] == F.HOLDS and F.greater("b", "a", "B", "A")(m)[0] == F.FAILS
    assert F.from_counts(8, 0, 15) == F.HOLDS and F.from_counts(0, 0, 15) == F.FAILS
    assert F.from_counts(4, 5, 15) == F.FAILS and F.from_counts(5, 1, 15) == F.MIXED
    assert F.from_counts(0, 0, 0) == F.UNMEASURED
    claim = F.Claim("k", "p", "t", "99-x", ("a", "c"), F.greater("a", "c", "A", "C"))
    assert F.assess(claim, m).verdict == F.UNMEASURED and "c" in F.assess(claim, m).number
    assert F.assess(claim, None).number == "not run"


def test_consistent_loss_rule_has_its_three_outcomes():
    from advinterp.studies.consistent_loss import consistent_loss_verdict

    def gaps(cl, at, standard):
        return {f"whitebox_consis_gap_{k}": v for k, v in (("cl", cl), ("at", at), ("standard", standard))} | {
            f"whitebox_consis_gap_{k}_std": 0.01 for k in ("cl", "at", "standard")}

    assert consistent_loss_verdict(gaps(-0.02, -0.10, -0.20))[0] == F.HOLDS
    assert consistent_loss_verdict(gaps(-0.10, -0.10, -0.20))[0] == F.MIXED
    assert consistent_loss_verdict(gaps(-0.20, -0.20, -0.20))[0] == F.FAILS


def test_one_seed_transfer_needs_to_clear_sampling_noise():
    from advinterp.studies.transfer import rate_gap_tolerance, transfer_verdict

    assert rate_gap_tolerance(0.5, 0.5, 100) == pytest.approx(2 * (0.5 / 100) ** 0.5)
    small = {"ensemble_transfer_heldout": 0.16, "single_transfer_heldout": 0.14, "n_probe": 500}
    assert transfer_verdict(small)[0] == F.FAILS  # 0.02 apart on 500 probes is noise
    assert transfer_verdict({**small, "n_probe": 100_000})[0] == F.HOLDS


def test_split_runs_of_a_one_seed_chapter_aggregate_every_metric():
    metrics, left = sweeps.aggregate_seed_runs([{"acc": 0.5, "eps": 0.3}, {"acc": 0.7, "eps": 0.3}], spread_all=True)
    assert metrics["acc"] == pytest.approx(0.6) and metrics["acc_std"] == pytest.approx(0.1414, abs=1e-4)
    assert metrics["eps"] == 0.3 and "eps_std" not in metrics and not left


def test_a_finished_sweep_is_recorded_and_shown_at_scale(tmp_path):
    """``--record``: a sweep's seed runs become one recorded results file per chapter, with provenance,
    and the chapter's "At scale" section reads it."""
    stem = "03-neuron-consistency"
    root = tmp_path / "runs" / "scale"
    rows = []
    for seed, (real, adv) in enumerate([(0.55, 0.25), (0.53, 0.27), (0.57, 0.24)]):
        run = f"seed={seed}-x"
        metrics = {"consis_real": real, "consis_real_std": None, "consis_adv_true": adv, "consis_adv_true_std": None,
                   "cs_adv_to_target_class": 0.7, "cs_adv_to_target_class_std": None,
                   "cs_adv_to_true_class": 0.6, "cs_adv_to_true_class_std": None}
        (root / stem / run / "results").mkdir(parents=True)
        (root / stem / run / "results" / f"{stem}.json").write_text(json.dumps(
            {"chapter": stem, "params": {"seeds": [seed], "dataset": "imagefolder"}, "metrics": metrics}))
        rows.append({"chapter": stem, "run": run, "status": "ok", "seconds": 10.0})
    pd.DataFrame(rows).to_csv(root / "runs.csv", index=False)
    folder = tmp_path / "recorded"
    dest = rec.record_sweep(root, "gpu-test", what="a test", command="python -m advinterp.sweep x", folder=folder,
                            point_index=True)
    record, note = rec.scale_record(stem, folder)
    assert record is not None and record.run == "gpu-test" and dest == folder / "gpu-test" and note == "a test"
    assert record.seeds == [0, 1, 2] and record.metrics["consis_real"] == pytest.approx(0.55)
    assert record.metrics["consis_real_std"] == pytest.approx(0.02)
    assert record.provenance["device_seconds"][stem] == 30.0
    assert all(record.provenance.get(f) for f in rec.PROVENANCE_FIELDS)
    section = F.at_scale(stem, {"dataset": "mnist5k"}, folder)
    assert "3 seeds" in section.words["scale_summary"] and "gpu-test" in section.words["scale_summary"]
    assert section.table.iloc[0, 3].startswith(F.HOLDS)
