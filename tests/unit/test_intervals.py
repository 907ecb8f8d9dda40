"""The intervals verdicts are decided by, and the rule that decides them: coverage on constructed data
with a known effect, false "holds" under the null, the outcomes, one-seed intervals, Holm on t
p-values, the seed combination's coverage and monotonicity."""

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


def test_the_outcomes_and_the_small_holds():
    effect = V.Effect("e", "an effect", 0.05, "a reason")
    clear = [U.SeedEffect.normal(0.20, 0.01)] * 3
    small = [U.SeedEffect.normal(0.02, 0.002)] * 3
    null = [U.SeedEffect.normal(0.00, 0.005)] * 3
    noisy = [U.SeedEffect.normal(0.03, 0.05)]
    assert V.decide(effect, clear).verdict == V.HOLDS and not V.decide(effect, clear).small
    small_outcome = V.decide(effect, small)
    assert small_outcome.verdict == V.HOLDS and small_outcome.small and "smaller than" in small_outcome.words
    assert V.decide(effect, null).verdict == V.NEGLIGIBLE
    opposite = [U.SeedEffect.normal(-0.2, 0.01)] * 3
    assert V.decide(effect, opposite).verdict == V.OPPOSITE
    # three positive seeds whose interval crosses 0 but stays below delta: negligible, not opposite
    crossing = [U.SeedEffect.normal(x, 0.02) for x in (0.005, 0.012, 0.02)]
    assert V.decide(effect, crossing).verdict == V.NEGLIGIBLE
    inconclusive = V.decide(effect, noisy)
    assert inconclusive.verdict == V.INCONCLUSIVE and "images" in inconclusive.settle


def test_outcomes_partition_every_interval():
    effect = V.Effect("e", "an effect", 0.05, "a reason")
    rng = np.random.default_rng(3)
    for _ in range(300):
        centre, se = rng.normal(0, 0.1), abs(rng.normal(0, 0.05)) + 1e-4
        o = V.decide(effect, [U.SeedEffect.normal(centre, se)])
        iv = o.interval
        expected = (V.HOLDS if iv.lo > 0 else V.OPPOSITE if iv.hi < 0 else V.NEGLIGIBLE if iv.hi < 0.05
                    else V.INCONCLUSIVE)
        assert o.verdict == expected


def test_non_inferiority_reads_the_interval_against_minus_delta():
    margin = V.Effect("e", "ours minus the paper's", 0.02, "a reason", margin=True)
    assert V.decide(margin, [U.SeedEffect.normal(-0.005, 0.004)]).verdict == V.HOLDS
    assert V.decide(margin, [U.SeedEffect.normal(-0.05, 0.004)]).verdict == V.OPPOSITE
    assert V.decide(margin, [U.SeedEffect.normal(-0.02, 0.01)]).verdict == V.INCONCLUSIVE


def test_a_claim_on_several_effects_holds_only_when_all_do():
    a, b = V.Effect("a", "a", 0.05, "r"), V.Effect("b", "b", 0.05, "r")
    hold = V.decide(a, [U.SeedEffect.normal(0.2, 0.01)])
    negligible = V.decide(b, [U.SeedEffect.normal(0.0, 0.005)])
    opposite = V.decide(b, [U.SeedEffect.normal(-0.2, 0.01)])
    unsure = V.decide(b, [U.SeedEffect.normal(0.03, 0.05)])
    small = V.decide(b, [U.SeedEffect.normal(0.02, 0.002)])
    assert V.combine_outcomes([hold, negligible]) == (V.NEGLIGIBLE, negligible)
    assert V.combine_outcomes([negligible, opposite]) == (V.OPPOSITE, opposite)
    assert V.combine_outcomes([hold, unsure]) == (V.INCONCLUSIVE, unsure)
    assert V.combine_outcomes([hold, hold])[0] == V.HOLDS
    # intersection-union keeps "smaller than delta" when any component has it
    assert small.small and V.combine_outcomes([hold, small]) == (V.HOLDS, small)
    assert V.combine_outcomes([small, hold]) == (V.HOLDS, small)


def test_settle_asks_for_more_seeds_or_images():
    iv = U.combine([U.SeedEffect.normal(x, 0.01) for x in (0.0, 0.06, 0.03)])
    words = U.settle(iv, 0.0, 0.05)
    assert "seeds" in words and int(words.split()[1]) > 3
    far = U.combine([U.SeedEffect.normal(x, 0.01) for x in (0.17, 0.21, 0.08)])  # far above delta: few more seeds
    assert int(U.settle(far, 0.0, 0.05).split()[1]) < int(words.split()[1])
    one = U.combine([U.SeedEffect.normal(0.03, 0.03, n=100)])
    words_one = U.settle(one, 0.0, 0.05, n_images=100)
    assert "images" in words_one and "2 seeds" in words_one and "3 seeds" in words_one


def test_settle_plans_for_80_percent_power():
    """Planned at the observed spread, the interval excludes a bound about 80 % of the time, not 50 %."""
    rng = np.random.default_rng(11)
    pilot = U.combine([U.SeedEffect.normal(x, 0.01) for x in (0.02, 0.05, 0.08)])
    s = int(U.settle(pilot, 0.0, 0.05).split()[1])
    settled = 0
    for _ in range(2000):
        est = rng.normal(pilot.estimate, pilot.seed_sd, s)
        iv = U.combine([U.SeedEffect.normal(x, 0.01) for x in est])
        settled += iv.lo > 0 or iv.hi < 0.05
    assert 0.75 <= settled / 2000 <= 0.92, settled / 2000


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


def test_delong_never_gives_a_zero_width_interval():
    """Perfect separation makes DeLong's variance 0; the interval is floored (rule of three)."""
    y = np.r_[np.ones(40), np.zeros(60)].astype(bool)
    score = np.r_[np.linspace(2, 3, 40), np.linspace(0, 1, 60)]
    alone = U.delong_interval(y, score, reference=0.9)
    assert alone.estimate == pytest.approx(0.1) and alone.hi - alone.lo == pytest.approx(2 * 3 / 40)
    same = U.delong_interval(y, score, score * 2)
    assert same.estimate == 0 and same.lo < 0 < same.hi


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


def test_undefined_bootstrap_replicates_are_not_dropped_silently():
    reps = np.r_[np.random.default_rng(8).normal(0, 1, 197), [np.nan] * 3]
    with pytest.warns(U.UndefinedReplicates, match="3 of 200"):
        kept = U.from_replicates(0.1, reps, 50)
    assert math.isfinite(kept.lo)
    with pytest.warns(U.UndefinedReplicates, match="no interval"):
        refused = U.from_replicates(0.1, np.r_[reps[:150], [np.nan] * 50], 50)
    assert math.isnan(refused.lo)


def _simulated_coverage(n_seeds: int, tau: float, draws: int, rng) -> float:
    """Share of ``draws`` combined intervals that cover a true effect of 0: seeds shifted by
    N(0, tau) (the training run), each seen through image noise of known se 1 (the arithmetic of
    :func:`combine`, vectorised; checked equal to it on the first draws)."""
    est = rng.normal(0, tau, (draws, n_seeds)) + rng.normal(0, 1, (draws, n_seeds))
    m, _, _, h = U.combine_arrays(est, np.ones_like(est))
    for i in range(50):
        iv = U.combine([U.SeedEffect.normal(e, 1.0) for e in est[i]])
        assert (iv.estimate, iv.half_width) == pytest.approx((m[i], h[i]))
    return float(np.mean(np.abs(m) <= h))


@pytest.mark.parametrize("n_seeds,tau,lowest", [
    (2, 0.0, 0.93), (3, 0.0, 0.93), (5, 0.0, 0.93),      # seeds differ only by their images: the floor binds
    (3, 10.0, 0.93), (5, 10.0, 0.93),                    # the seeds' own spread dominates
    (3, 1.0, 0.92), (3, 2.0, 0.92), (5, 2.0, 0.93),      # in between: the documented dip with three seeds
])
def test_seed_combination_covers_near_nominal(n_seeds, tau, lowest):
    """95 % intervals cover 93-97 % of the time whether the seeds differ only by their images (the
    old t(S-1) quantile on the floor gave 99.5-100 %) or by far more; in between, three seeds dip to
    about 92.5 % (the module docstring gives the whole grid; two seeds with a large spread are worse)."""
    cover = _simulated_coverage(n_seeds, tau, 40_000, np.random.default_rng(0))
    assert lowest <= cover <= 0.97, cover


def test_adding_an_agreeing_seed_never_widens_the_interval():
    e = U.SeedEffect.normal(0.025, 0.01)
    widths = [U.combine([e] * k).half_width for k in range(1, 8)]
    assert all(b < a for a, b in zip(widths, widths[1:]))
    # the case: one seed holds, so two identical seeds must hold too
    effect = V.Effect("e", "an effect", 0.05, "a reason")
    assert V.decide(effect, [e]).verdict == V.decide(effect, [e, e]).verdict == V.HOLDS
    rng = np.random.default_rng(9)
    for _ in range(300):
        seeds = [U.SeedEffect.normal(x, abs(s) + 1e-3) for x, s in zip(rng.normal(0, 0.05, 3), rng.normal(0, 0.02, 3))]
        iv = U.combine(seeds)
        agreeing = U.SeedEffect.normal(iv.estimate, float(np.mean([x.se for x in seeds])))
        assert U.combine([*seeds, agreeing]).half_width <= iv.half_width + 1e-12


@pytest.mark.parametrize("n_seeds", [2, 3, 5])
def test_p_value_is_the_one_sample_t_test_of_the_seeds(n_seeds):
    from scipy.stats import ttest_1samp

    est = np.random.default_rng(n_seeds).normal(0.05, 0.04, n_seeds)
    iv = U.combine([U.SeedEffect.normal(x, 1e-4) for x in est])  # seed spread dominates the image noise
    assert iv.df == n_seeds - 1
    assert U.p_value(iv) == pytest.approx(ttest_1samp(est, 0.0).pvalue, rel=1e-9)
    # the interval and the p-value agree: p < 0.05 exactly when the interval excludes 0
    assert (U.p_value(iv) < 0.05) == (iv.lo > 0 or iv.hi < 0)


def test_p_value_of_a_floored_combination_is_normal():
    e = U.SeedEffect.normal(0.03, 0.01)
    iv = U.combine([e, e, e])
    assert iv.floor_binds and U.p_value(iv) == pytest.approx(2 * __import__("scipy").stats.norm.sf(0.03 / (0.01 / math.sqrt(3))))


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
