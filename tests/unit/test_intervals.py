"""The intervals verdicts are decided by, and the rule that decides them: coverage on constructed data
with a known effect, false "holds" under the null, the three outcomes, one-seed intervals, Holm."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from advinterp.report import uncertainty as U
from advinterp.report import verdicts as V


def _seed_effects(rng, effect: float, n_seeds: int, n_images: int, seed_sd: float, image_sd: float):
    """Per seed: a training-run shift plus image noise; each seed's image-level interval."""
    out = []
    for _ in range(n_seeds):
        shift = effect + rng.normal(0, seed_sd)
        out.append(U.mean_interval(shift + rng.normal(0, image_sd, n_images)))
    return out


@pytest.mark.parametrize("n_seeds,seed_sd", [(1, 0.0), (3, 0.0), (3, 0.05), (5, 0.05)])
def test_combined_interval_covers_a_known_effect(n_seeds, seed_sd):
    rng = np.random.default_rng(0)
    reps, effect = 400, 0.1
    hits = 0
    for _ in range(reps):
        iv = U.combine(_seed_effects(rng, effect, n_seeds, 200, seed_sd, 0.5))
        hits += iv.lo <= effect <= iv.hi
    assert hits / reps >= 0.90, hits / reps


@pytest.mark.parametrize("n_seeds,seed_sd", [(1, 0.0), (3, 0.05)])
def test_false_holds_under_the_null_are_rare(n_seeds, seed_sd):
    rng = np.random.default_rng(1)
    effect = V.Effect("e", "an effect", 0.05, "a reason")
    verdicts = [V.decide(effect, _seed_effects(rng, 0.0, n_seeds, 200, seed_sd, 0.5)).verdict for _ in range(400)]
    assert verdicts.count(V.HOLDS) / 400 <= 0.10


def test_a_one_seed_interval_is_never_degenerate():
    e = U.mean_interval(np.random.default_rng(2).normal(0.2, 1.0, 100))
    iv = U.combine([e])
    assert iv.n_seeds == 1 and iv.hi - iv.lo > 0.1 and iv.lo < iv.estimate < iv.hi


def test_between_seed_variance_is_floored_at_the_image_noise():
    """Three seeds that happen to agree exactly cannot give an interval narrower than their images do."""
    e = U.SeedEffect.normal(0.3, 0.05)
    iv = U.combine([e, e, e])
    assert iv.seed_sd == pytest.approx(0.05, rel=1e-6) and iv.hi - iv.lo > 0.05


def test_the_three_outcomes_and_the_small_holds():
    effect = V.Effect("e", "an effect", 0.05, "a reason")
    clear = [U.SeedEffect.normal(0.20, 0.01)] * 3
    small = [U.SeedEffect.normal(0.02, 0.002)] * 3
    null = [U.SeedEffect.normal(0.00, 0.005)] * 3
    noisy = [U.SeedEffect.normal(0.03, 0.05)]
    assert V.decide(effect, clear).verdict == V.HOLDS and not V.decide(effect, clear).small
    small_outcome = V.decide(effect, small)
    assert small_outcome.verdict == V.HOLDS and small_outcome.small and "smaller than" in small_outcome.words
    assert V.decide(effect, null).verdict == V.REFUTED
    opposite = [U.SeedEffect.normal(-0.2, 0.01)] * 3
    assert V.decide(effect, opposite).verdict == V.REFUTED
    inconclusive = V.decide(effect, noisy)
    assert inconclusive.verdict == V.INCONCLUSIVE and "images" in inconclusive.settle


def test_outcomes_partition_every_interval():
    effect = V.Effect("e", "an effect", 0.05, "a reason")
    rng = np.random.default_rng(3)
    for _ in range(300):
        centre, se = rng.normal(0, 0.1), abs(rng.normal(0, 0.05)) + 1e-4
        o = V.decide(effect, [U.SeedEffect.normal(centre, se)])
        iv = o.interval
        expected = V.HOLDS if iv.lo > 0 else V.REFUTED if iv.hi < 0.05 else V.INCONCLUSIVE
        assert o.verdict == expected


def test_non_inferiority_reads_the_interval_against_minus_delta():
    margin = V.Effect("e", "ours minus the paper's", 0.02, "a reason", margin=True)
    assert V.decide(margin, [U.SeedEffect.normal(-0.005, 0.004)]).verdict == V.HOLDS
    assert V.decide(margin, [U.SeedEffect.normal(-0.05, 0.004)]).verdict == V.REFUTED
    assert V.decide(margin, [U.SeedEffect.normal(-0.02, 0.01)]).verdict == V.INCONCLUSIVE


def test_a_claim_on_several_effects_holds_only_when_all_do():
    a, b = V.Effect("a", "a", 0.05, "r"), V.Effect("b", "b", 0.05, "r")
    hold = V.decide(a, [U.SeedEffect.normal(0.2, 0.01)])
    refuted = V.decide(b, [U.SeedEffect.normal(0.0, 0.005)])
    unsure = V.decide(b, [U.SeedEffect.normal(0.03, 0.05)])
    assert V.combine_outcomes([hold, refuted]) == (V.REFUTED, refuted)
    assert V.combine_outcomes([hold, unsure]) == (V.INCONCLUSIVE, unsure)
    assert V.combine_outcomes([hold, hold])[0] == V.HOLDS


def test_settle_asks_for_more_seeds_or_images():
    iv = U.combine([U.SeedEffect.normal(x, 0.01) for x in (0.0, 0.06, 0.03)])
    words = U.settle(iv, 0.0, 0.05)
    assert "seeds" in words and int(words.split()[1]) > 3
    far = U.combine([U.SeedEffect.normal(x, 0.01) for x in (0.17, 0.21, 0.08)])  # far above delta: few more seeds
    assert int(U.settle(far, 0.0, 0.05).split()[1]) < int(words.split()[1])
    one = U.combine([U.SeedEffect.normal(0.03, 0.03, n=100)])
    assert "images" in U.settle(one, 0.0, 0.05, n_images=100)


def test_holm_on_a_constructed_family():
    p = [0.01, 0.04, 0.03, 0.005]
    adjusted = U.holm(p)
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.06
    assert np.allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    assert all(a >= b for a, b in zip(adjusted, p))


def test_delong_matches_sklearn_and_a_bootstrap():
    rng = np.random.default_rng(4)
    y = rng.random(600) < 0.3
    a = y * 0.8 + rng.normal(0, 1, 600)
    b = y * 0.5 + rng.normal(0, 1, 600) + 0.3 * a
    aucs, cov = U.auroc_components(y, [a, b])
    assert aucs[0] == pytest.approx(roc_auc_score(y, a)) and aucs[1] == pytest.approx(roc_auc_score(y, b))
    diff = U.delong_interval(y, a, b)
    boots = []
    for _ in range(400):
        i = rng.integers(0, 600, 600)
        if y[i].all() or not y[i].any():
            continue
        boots.append(roc_auc_score(y[i], a[i]) - roc_auc_score(y[i], b[i]))
    assert diff.se == pytest.approx(np.std(boots), rel=0.2)
    assert diff.estimate == pytest.approx(aucs[0] - aucs[1])
    fixed = U.delong_interval(y, a, reference=0.5)
    assert fixed.estimate == pytest.approx(aucs[0] - 0.5) and fixed.se == pytest.approx(math.sqrt(cov[0, 0]))


def test_delong_covers_a_zero_difference_between_equal_scores():
    rng = np.random.default_rng(5)
    misses = 0
    for _ in range(200):
        y = rng.random(300) < 0.4
        a = y * 0.7 + rng.normal(0, 1, 300)
        b = y * 0.7 + rng.normal(0, 1, 300)
        e = U.delong_interval(y, a, b)
        misses += not (e.lo <= 0 <= e.hi)
    assert misses / 200 <= 0.10


def test_newcombe_paired_interval():
    rng = np.random.default_rng(6)
    hits = 0
    for _ in range(300):
        base = rng.random(400) < 0.3
        a = base | (rng.random(400) < 0.1)   # true rate difference about 0.07
        b = base.copy()
        e = U.newcombe_paired(a, b)
        hits += e.lo <= 0.7 * 0.1 <= e.hi
        assert -1 <= e.lo <= e.estimate <= e.hi <= 1
    assert hits / 300 >= 0.90
    same = U.newcombe_paired(np.ones(50, bool), np.ones(50, bool))
    assert same.estimate == 0 and same.lo <= 0 <= same.hi
    swapped = U.newcombe_paired(np.r_[np.ones(10), np.zeros(40)], np.zeros(50))
    back = U.newcombe_paired(np.zeros(50), np.r_[np.ones(10), np.zeros(40)])
    assert swapped.lo == pytest.approx(-back.hi) and swapped.hi == pytest.approx(-back.lo)


def test_bootstrap_interval_of_a_mean_matches_the_normal_one():
    x = np.random.default_rng(7).normal(1.0, 2.0, 300)
    boot = U.bootstrap_interval(lambda i: float(x[i].mean()), len(x), n_boot=1000, seed=0)
    normal = U.mean_interval(x)
    assert boot.estimate == pytest.approx(normal.estimate)
    assert boot.se == pytest.approx(normal.se, rel=0.15)


def test_per_seed_metrics_round_trip():
    per_seed = {0: U.SeedEffect(0.1, 0.0, 0.2, 50), 3: U.SeedEffect(0.3, 0.2, 0.4, 60)}
    m = U.per_seed_metrics("effect_x", per_seed)
    back = U.from_metrics("effect_x", m)
    assert back == list(per_seed.values())
    assert m["effect_x"] == pytest.approx(0.2) and m["effect_x_lo"] < 0.2 < m["effect_x_hi"]
    assert U.from_metrics("effect_y", m) is None

def test_wilson_interval_matches_scipy_and_bounds_every_rate():
    from scipy.stats import binomtest

    from advinterp.core.stats import wilson_interval

    for k, n in ((0, 10), (3, 10), (10, 10), (7, 500)):
        lo, hi = wilson_interval(k, n, 1.959963984540054)
        ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert (lo, hi) == pytest.approx((ref.low, ref.high), abs=1e-9)
        assert 0.0 <= lo <= k / n + 1e-12 and k / n - 1e-12 <= hi <= 1.0
