"""The ledger of smallest effects of interest (:mod:`advinterp.report.ledger`): appended, never edited
(read against the file's every committed version in git), every declared effect's current delta is its
last entry, and a verdict an earlier delta would have decided otherwise says so."""

from __future__ import annotations

import json
import subprocess

import pytest

from advinterp.report import ledger
from advinterp.core.stats import SeedEffect, per_seed_metrics
from advinterp.report import claims
from advinterp.studies import scorecard, study, tracing
from advinterp.studies.interpretability import CL_PAIR
from chapter_tools import REPO

LEDGER = ledger.LEDGER.relative_to(REPO).as_posix()


def _declared_effects():
    """Every effect a chapter decides: its claims', and those its page decides beside them."""
    for stem in scorecard.chapters():
        for c in study(stem).CLAIMS:
            yield from c.effects
    yield from CL_PAIR.effects
    for m in tracing.MODELS:
        yield from tracing.detects(m)


def test_every_declared_effect_is_its_last_ledger_entry():
    for e in _declared_effects():
        now = ledger.current(e.name)
        assert now is not None, f"{e.name} is not in {LEDGER}: append its delta, reason, commit and date"
        assert (now.delta, now.reason, now.commit) == (e.delta, e.reason, e.declared), \
            f"{e.name}: re-declared? append an entry (delta, reason, commit, date, why_changed) to {LEDGER}"


def test_a_changed_delta_changes_its_reason_and_says_why():
    for name in {d.effect for d in ledger.entries()}:
        found = ledger.history(name)
        for before, after in zip(found, found[1:]):
            assert after.reason != before.reason and after.why_changed, (name, after)
        assert all(len(d.date) == 10 and d.date[4] == "-" for d in found)


def _committed_versions() -> list[list[dict]]:
    try:
        log = subprocess.run(["git", "log", "--format=%H", "--", LEDGER], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
        return [json.loads(subprocess.run(["git", "show", f"{c}:{LEDGER}"], cwd=REPO, capture_output=True,
                                          text=True, check=True).stdout) for c in log]
    except (OSError, subprocess.CalledProcessError):
        return []


def test_the_ledger_is_appended_never_edited():
    """Every committed version of the ledger is a prefix of today's: no entry edited, removed or moved."""
    versions = _committed_versions()
    if not versions:
        pytest.skip("no git history of the ledger here (not a clone, or not yet committed)")
    today = json.loads(ledger.LEDGER.read_text())
    for old in versions:
        assert today[:len(old)] == old, "an entry of the delta ledger was edited, removed or moved: append instead"


def test_an_earlier_delta_that_decided_otherwise_is_said():
    """Chapter 6's combination: at delta 0.005 an interval of about (-0.0002, 0.0072) is inconclusive, at
    the earlier 0.01 it was negligible, and the finding says so."""
    (c,) = [c for c in study("06-error-detection").CLAIMS if c.key == "wu_combination"]
    metrics = {"seeds": [0, 1, 2], **per_seed_metrics(c.effects[0].name, {
        s: SeedEffect.normal(x, 0.002) for s, x in zip((0, 1, 2), (0.002, 0.0035, 0.005))})}
    f = claims.assess(c, metrics)
    assert f.verdict == claims.INCONCLUSIVE
    assert f.earlier and "negligible at the earlier δ = 0.01" in f.earlier[0] and "6838ddf" in f.earlier[0]
    assert "negligible at the earlier" in f.cell() and "δ changed" in f.short_cell()
    assert "earlier δ = 0.01" in claims.effect_column(c)
