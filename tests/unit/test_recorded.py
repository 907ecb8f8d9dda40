"""Reading a recorded run whole (the appendix "Reproducing at scale"): its chapters are those its own
files name, its numbers are glued by chapter number, and its provenance's tables and free-text
labels are parsed by the library, not by the page."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from advinterp.report import recorded as rec
from advinterp.studies import STUDIES
from chapter_tools import notebook_cells

#: chapters the test's record holds: one of the book's and one no list of the book knows
CHAPTERS = ("03-neuron-consistency", "12-toy")


@pytest.fixture
def record(tmp_path):
    """``<tmp>/recorded/by-hand``: two chapters on two seeds with a provenance made by hand, as the
    appendix's older records are."""
    folder = tmp_path / "recorded"
    run = folder / "by-hand"
    run.mkdir(parents=True)
    for i, stem in enumerate(reversed(CHAPTERS)):  # written out of order: the book's order is restored
        (run / f"{stem}.json").write_text(json.dumps(
            {"chapter": stem, "params": {"model": "net_a", "seeds": [0, 1]},
             "metrics": {"score": 0.5 + i, "score_std": 0.0, "label": f"x{i}"}}))
    provenance = {"what": "two chapters by hand", "machine": "a test machine", "date": "2026-01-02",
                  "commit": "0123456789abcdef (library); the bench after the next commit",
                  "test_accuracy": {"0": {"net_a": 0.8, "net_b": 0.5}, "1": {"net_a": 0.6, "net_b": 0.7}},
                  "epoch_seconds": {"net_a (8-epoch recipe)": [2.0, 4.0],
                                    "net_a (chapter 6, early stop; checked every 5 steps)": [10.0, 20.0, 1.0]}}
    (run / "provenance.json").write_text(json.dumps(provenance))
    return folder


def test_a_records_chapters_are_the_ones_its_files_name_in_the_books_order(record):
    results = rec.run_results("by-hand", record)
    assert list(results) == list(CHAPTERS)
    assert results["12-toy"]["metrics"]["score_std"] == 0.0, "a record is read as written"
    glued = rec.numbered_metrics(results, "c")
    assert glued == {"c3_score": 1.5, "c3_score_std": 0.0, "c3_label": "x1",
                     "c12_score": 0.5, "c12_score_std": 0.0, "c12_label": "x0"}
    with pytest.raises(FileNotFoundError, match="nowhere"):
        rec.run_results("nowhere", record)
    with pytest.raises(ValueError, match="chapter='toy'"):
        rec.chapter_number("toy")


def test_provenance_line_and_accuracy_of_the_dissected_network(record):
    provenance = rec.read_provenance("by-hand", record)
    assert rec.provenance_line(provenance) == "two chapters by hand | a test machine | 2026-01-02 | commit 0123456789"
    assert rec.provenance_line({"machine": "m", "date": "d"}) == "m | d"
    table = rec.accuracy_table(provenance)
    assert table.index.name == "seed" and list(table.index) == ["0", "1"] and list(table.columns) == ["net_a", "net_b"]
    assert rec.dissected_accuracy("by-hand", record) == pytest.approx(0.7)  # net_a, the chapters' model
    with pytest.raises(ValueError, match="test_accuracy"):
        rec.accuracy_table({"what": "a sweep"})


def test_a_record_whose_chapters_dissect_different_networks_has_no_one_accuracy(record):
    path = record / "by-hand" / "12-toy.json"
    payload = json.loads(path.read_text())
    path.write_text(json.dumps({**payload, "params": {"model": "net_b"}}))
    with pytest.raises(ValueError, match=r"model=\['net_a', 'net_b'\]"):
        rec.dissected_accuracy("by-hand", record)
    path.write_text(json.dumps({**payload, "params": {"model": "net_c"}}))
    (record / "by-hand" / "03-neuron-consistency.json").unlink()
    with pytest.raises(ValueError, match="model='net_c'"):
        rec.dissected_accuracy("by-hand", record)


def test_epoch_seconds_are_found_by_words_of_their_label(record):
    provenance = rec.read_provenance("by-hand", record)
    assert rec.mean_epoch_seconds(provenance, "8-epoch recipe") == 3.0
    assert rec.mean_epoch_seconds(provenance, "early stop", drop_last=True) == 15.0
    assert rec.mean_epoch_seconds(provenance, "early stop") == pytest.approx(31 / 3)
    with pytest.raises(ValueError, match="label='net_a'.*2 match"):
        rec.mean_epoch_seconds(provenance, "net_a")
    with pytest.raises(ValueError, match="label='resnet'.*0 match"):
        rec.mean_epoch_seconds(provenance, "resnet")


def test_a_recorded_sweeps_run_seconds_and_the_cost_of_earlier_records(tmp_path):
    provenance = {"commit": "abcdef123", "date": "2026-02-03",
                  "device_seconds": {"01-a": 120.0, "02-b": 60.0},
                  "run_seconds": {"01-a": {"seed=0-x": 50.0, "seed=1-y": 70.0}, "02-b": {"default-z": 60.0}},
                  "earlier": [{"commit": "9876543", "date": "2026-02-01", "device_seconds": {"01-a": 240.0, "02-b": 30.0}}]}
    runs = rec.run_seconds(provenance)
    assert runs.to_dict("records") == [{"chapter": "01-a", "run": "seed=0-x", "seconds": 50.0},
                                       {"chapter": "01-a", "run": "seed=1-y", "seconds": 70.0},
                                       {"chapter": "02-b", "run": "default-z", "seconds": 60.0}]
    minutes = rec.record_minutes(provenance)
    assert list(minutes.columns) == ["this record (abcdef1)", "earlier (9876543, 2026-02-01)"]
    assert minutes.index.name == "minutes per chapter"
    pd.testing.assert_series_equal(minutes["earlier (9876543, 2026-02-01)"], pd.Series({"01-a": 4.0, "02-b": 0.5}),
                                   check_names=False)
    assert rec.run_seconds({"what": "by hand"}).empty
    assert list(rec.record_minutes({**provenance, "earlier": []}).columns) == ["this record (abcdef1)"]


@pytest.mark.parametrize("run", sorted(p.name for p in rec.recorded_dir().iterdir() if (p / "provenance.json").is_file()))
def test_every_shipped_record_names_chapters_of_the_book(run):
    results = rec.run_results(run)
    assert results and set(results) <= set(STUDIES), f"{run} holds chapters the book does not have"
    assert rec.provenance_line(rec.read_provenance(run))


def test_the_appendix_names_no_chapter_in_its_code():
    """Which chapters a record holds is read from the record (:func:`rec.run_results`), never listed."""
    code = "\n".join("".join(c["source"]) for c in notebook_cells("appendix-scale"))
    named = [stem for stem in STUDIES if stem in code]
    assert not named, f"the appendix's code cells name chapters {named}: read them from the record instead"
    assert "rec.run_results(" in code
