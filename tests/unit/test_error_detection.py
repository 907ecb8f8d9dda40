"""Conductance (vs completeness and Captum), mutation / LCR, the error detector and its metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from advinterp.core.stats import wilson_interval
from advinterp.interpret import conductance, error_detection as ed, mutation
from advinterp.models.architectures import build_model


@pytest.fixture(scope="module")
def net_and_data():
    torch.manual_seed(0)
    model = build_model("small_cnn", (1, 28, 28), 10, [0.13], [0.31]).eval()
    x = torch.rand(12, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    return model, x


@pytest.mark.parametrize("layer", ["conv2", "fc1"])
def test_completeness_converges(net_and_data, layer):
    model, x = net_and_data
    gaps = [float(conductance.completeness_gap(model, x, layer, m).mean()) for m in (4, 32, 256)]
    assert gaps[2] <= gaps[1] + 1e-6 and gaps[1] <= gaps[0] + 1e-6, gaps
    assert gaps[2] < 0.01 * float(model(x).detach().abs().mean())


def test_left_rule_equals_captum_and_right_rule_converges_to_it(net_and_data):
    from captum.attr import LayerConductance

    model, x = net_and_data
    base = conductance.zero_baseline(model, x)
    gaps = []
    for m in (10, 100):
        left, target = conductance.layer_conductance(model, x, "conv2", steps=m, rule="left", reduce="none")
        right, _ = conductance.layer_conductance(model, x, "conv2", steps=m, rule="right", reduce="none")
        ref = LayerConductance(model, model.conv2).attribute(x, baselines=base, target=target, n_steps=m,
                                                              method="riemann_trapezoid").detach()
        assert torch.allclose(left, ref, atol=1e-5)
        gaps.append(float((right - ref).abs().sum((1, 2, 3)).mean()))
    assert gaps[1] < gaps[0] / 3, "the right/left discretisation gap shrinks like 1/m"


def test_channel_reduction_and_baseline(net_and_data):
    model, x = net_and_data
    full, _ = conductance.layer_conductance(model, x, "conv2", reduce="none")
    mean, _ = conductance.layer_conductance(model, x, "conv2", reduce="mean")
    assert mean.shape == (12, 32) and torch.allclose(mean, full.mean((2, 3)), atol=1e-6)
    assert torch.allclose(model.normalize(conductance.zero_baseline(model, x)), torch.zeros_like(x), atol=1e-6)
    with pytest.raises(ValueError, match="conductance_steps=0"):
        conductance.layer_conductance(model, x, "conv2", steps=0)


def test_mutants_are_deterministic_and_the_model_is_restored(net_and_data):
    model, x = net_and_data
    before = {k: v.clone() for k, v in model.state_dict().items()}
    y = model(x).argmax(1)
    kw = dict(operator="NAI", rate=0.1, n_mutants=5, seed=4, accept=0.0)
    a = mutation.mutate_and_predict(model, x, x, y, **kw)
    b = mutation.mutate_and_predict(model, x, x, y, **kw)
    assert torch.equal(a.predictions, b.predictions) and a.predictions.shape == (5, 12)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    gf = mutation.mutate_and_predict(model, x, x, y, operator="GF", rate=0.1, n_mutants=3, seed=4, accept=0.0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()) and gf.tried == 3
    ws = mutation.mutate_and_predict(model, x, x, y, operator="WS", rate=0.1, n_mutants=3, seed=4, accept=0.0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()) and ws.kept == 3


def test_nai_mutants_are_drawn_without_replacement_and_each_evaluated_once(net_and_data, monkeypatch):
    """At a rate that negates one of 48 filters, draws repeat filters: a repeat is skipped, so the kept
    mutants negate different filters and each is evaluated once (validation and x in one pass)."""
    model, x = net_and_data
    y = model(x).argmax(1)
    calls = []
    real = mutation.predict
    monkeypatch.setattr(mutation, "predict", lambda *a, **k: calls.append(1) or real(*a, **k))
    res = mutation.mutate_and_predict(model, x, None, y, val_index=torch.arange(len(x)), operator="NAI", rate=0.02,
                                      n_mutants=30, seed=1, accept=0.0)
    assert res.kept == res.tried == 30 and res.possible == 48 and not res.exhausted
    assert len(calls) == 1 + 30
    # the filters behind the kept mutants: 30 different ones (replayed from the same draws)
    seen, draws = [], 0
    while len(seen) < 30:
        m = mutation._Mutation(model, "NAI", 0.02, mutation.derive_seed(1, "NAI", 0.02, draws))
        draws += 1
        if m.filters not in seen:
            seen.append(m.filters)
    assert draws > 30, "with 48 filters, 30 draws with replacement almost surely repeat one"


def test_an_operator_whose_distinct_mutants_run_out_says_so(net_and_data):
    model, x = net_and_data
    y = model(x).argmax(1)
    kw = dict(operator="NAI", rate=0.02, n_mutants=60, seed=0, accept=0.0)
    with pytest.raises(RuntimeError, match=r"only 48 of the 48 distinct NAI mutants .* use mutation_op GF or WS"):
        mutation.mutate_and_predict(model, x, x, y, **kw)
    res = mutation.mutate_and_predict(model, x, x, y, allow_fewer=True, **kw)
    assert res.kept == res.tried == res.possible == 48 and res.exhausted
    # GF and WS draw a distinct mutant each time: no limit
    assert mutation.distinct_mutants(model, "GF", 0.02) is None and mutation.distinct_mutants(model, "WS", 0.02) is None
    assert mutation.distinct_mutants(model, "NAI", 0.05) == math.comb(48, 2)


def test_weight_shuffling_permutes_each_chosen_filter(net_and_data):
    model, _ = net_and_data
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    before = [m.weight.detach().clone() for m in convs]
    mut = mutation._Mutation(model, "WS", 0.1, seed=3)
    with mut:
        during = {id(m): m.weight.detach().clone() for m in convs}
    for conv, c, old_w, _ in mut.saved:
        new = during[id(conv)][c]
        assert not torch.equal(new, old_w) and torch.equal(new.flatten().sort().values, old_w.flatten().sort().values)
    assert all(torch.equal(a, m.weight) for a, m in zip(before, convs))


def test_nai_negates_exactly_the_chosen_filters(net_and_data):
    model, _ = net_and_data
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    before = [m.weight.detach().clone() for m in convs]
    mut = mutation._Mutation(model, "NAI", 0.1, seed=0)
    with mut:
        during = {id(m): m.weight.detach().clone() for m in convs}
    changed = sum(int((a != during[id(m)]).flatten(1).any(1).sum()) for a, m in zip(before, convs))
    assert changed == mutation.n_mutated(model, 0.1) == 5
    for conv, c, old_w, _ in mut.saved:
        assert torch.equal(during[id(conv)][c], -old_w)


def test_rate_that_mutates_nothing_is_a_value_error(net_and_data):
    model, _ = net_and_data
    with pytest.raises(ValueError, match=r"mutation_rate=0.001 is not allowed: at least .* 48 conv filters"):
        mutation.n_mutated(model, 0.001)
    with pytest.raises(ValueError, match="a model with conv layers"):
        mutation.n_mutated(nn.Sequential(nn.Linear(2, 2)), 0.5)


def test_acceptance_rule_and_lcr(net_and_data):
    model, x = net_and_data
    y = model(x).argmax(1)
    with pytest.raises(RuntimeError, match="use a smaller mutation_rate"):
        mutation.mutate_and_predict(model, x, x, y, rate=0.5, n_mutants=2, accept=1.01, max_tries=3)
    # a hopeless rate stops soon after EARLY_CHECK tries, not after all max_tries
    with pytest.raises(RuntimeError, match=r"only 0 of (\d+) .*stopped after") as err:
        mutation.mutate_and_predict(model, x, x, y, rate=0.5, n_mutants=20, accept=1.01, max_tries=2000)
    assert mutation.EARLY_CHECK <= int(str(err.value).split(" of ")[1].split()[0]) < 1000
    # a table that reports how many it got asks for the accepted ones, however few
    few = mutation.mutate_and_predict(model, x, x, y, rate=0.5, n_mutants=20, accept=1.01, max_tries=200,
                                      allow_fewer=True)
    assert few.kept == 0 and few.predictions.shape == (0, len(x)) and few.tried >= mutation.EARLY_CHECK
    # the bound is optimistic: it never stops a rate that would reach n_mutants on average
    assert all(wilson_interval(round(p * n), n, mutation.EARLY_STOP_Z)[1] > p
               for p in (0.01, 0.05, 0.12, 0.5) for n in (100, 500))
    res = mutation.MutationResult("NAI", 0.1, torch.tensor([0, 1, 2]),
                                  torch.tensor([[0, 1, 0], [1, 1, 0], [0, 1, 2], [0, 0, 0]]), 4)
    assert torch.allclose(res.lcr(), torch.tensor([0.25, 0.25, 0.75]))
    assert torch.allclose(res.lcr(2), torch.tensor([0.5, 0.0, 1.0]))


def test_sprt_decides_early_on_clear_cases():
    changes = torch.zeros(100, 2)
    changes[:, 0] = 1.0  # always flips: clearly above threshold
    flagged, used = mutation.sprt(changes, threshold=0.1)
    assert flagged.tolist() == [True, False]
    assert int(used.max()) < 100


def test_error_detector_learns_a_separable_problem():
    g = torch.Generator().manual_seed(0)
    wrong = torch.rand(600, generator=g) < 0.2
    feats = torch.randn(600, 8, generator=g) * 10 + 100
    feats[wrong, 0] += 30  # one informative feature, on a large offset (normalisation matters)
    det = ed.ErrorDetector(epochs=20).fit(feats[:400], wrong[:400])
    assert ed.auroc(wrong[400:].numpy(), det.predict_proba(feats[400:]).numpy()) > 0.95
    assert torch.allclose(det.mean_, feats[:400].mean(0))


def test_stacking_selective_metrics_and_coverage():
    rng = np.random.default_rng(0)
    wrong = rng.random(400) < 0.25
    feats = np.c_[wrong + rng.normal(0, 0.3, 400), wrong + rng.normal(0, 0.6, 400)]
    for kind in ed.STACKERS:
        oof, test = ed.stack(kind, feats[:200], wrong[:200], feats[200:], seed=0)
        assert oof.shape == (200,) and test.shape == (200,)
        assert ed.auroc(wrong[200:], test) > 0.85, kind
    score = np.array([0.9, 0.8, 0.1, 0.2, 0.3])
    truth = np.array([1, 0, 0, 0, 1])
    m = ed.selective_metrics(truth, score, threshold=0.5)
    assert m == pytest.approx({"recall_wrong": 0.5, "recall_correct": 2 / 3, "coverage": 0.6,
                               "acc_kept": 2 / 3, "detector_accuracy": 0.6})
    cov, acc = ed.coverage_curve(truth, score, n=5)
    assert cov[-1] == 1.0 and acc[-1] == pytest.approx(0.6) and acc[0] == 1.0
    assert ed.youden_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == pytest.approx(0.8)


def test_validation_by_index_equals_separate_validation_images(net_and_data):
    model, x = net_and_data
    y = model(x).argmax(1)
    val = torch.arange(6)
    a = mutation.mutate_and_predict(model, x, x[val], y[val], rate=0.1, n_mutants=4, seed=1, accept=0.5)
    b = mutation.mutate_and_predict(model, x, None, y[val], val_index=val, rate=0.1, n_mutants=4, seed=1, accept=0.5)
    assert torch.equal(a.predictions, b.predictions) and a.tried == b.tried


def test_the_seeds_of_a_run_score_disjoint_test_parts():
    """Chapter 6: overlapping test halves would correlate the seeds' estimates (issue 31)."""
    from advinterp.studies.wrong_predictions import split_halves

    n = 101
    for parts in (1, 2, 3, 5):
        tests = []
        for part in range(parts):
            val, test = split_halves(n, part, parts)
            assert set(val.tolist()).isdisjoint(test.tolist()) and len(val) + len(test) == n
            tests.append(set(test.tolist()))
        assert all(a.isdisjoint(b) for i, a in enumerate(tests) for b in tests[i + 1:])
        assert min(len(t) for t in tests) >= n // max(2, parts)
    val, test = split_halves(n, 0, 1)
    assert abs(len(val) - len(test)) <= 1  # one seed: Wu et al.'s 50/50 split
    with pytest.raises(ValueError, match="part"):
        split_halves(n, 3, 3)


def test_tracing_against_its_null_is_paired_per_image_and_counts_the_null_mean_noise():
    """Chapter 5: the null's mean is a mean of AUROCs on the same images as the detector's, so the effect
    is paired per case (the structural components of the mean), and the Monte Carlo variance of a mean
    over n_permutations draws is added; an unpaired interval (the detector's alone against a fixed
    number) ignores the null's own sampling noise."""
    from advinterp.interpret.tracing import rank_auc
    from advinterp.core.auroc import auroc_interval
    from advinterp.studies.tracing import Scores, detector_effects

    g = np.random.default_rng(0)
    ok = torch.ones(200, dtype=torch.bool)
    fooled = torch.ones(150, dtype=torch.bool)
    clean, adv = torch.tensor(g.normal(1.0, 1, 200)), torch.tensor(g.normal(0.0, 1, 150))
    base = -np.r_[clean.numpy(), adv.numpy()]
    null = 0.3 * base + g.normal(0, 1, (50, 350))              # permuted detectors: partly the same signal
    s = Scores(None, clean, torch.rand(200), ok, {"a": adv}, {"a": torch.rand(150)}, {"a": fooled}, {"a": null})
    e = detector_effects(s, "a")["vs_null"]
    labels = np.r_[np.zeros(200), np.ones(150)]
    aucs = rank_auc(null[:, :200], null[:, 200:])
    assert e.estimate == pytest.approx(roc_auc(labels, base) - aucs.mean())
    without_mc = auroc_interval(labels, base, null)
    assert e.hi - e.lo > without_mc.hi - without_mc.lo
    alone = auroc_interval(labels, base, reference=float(aucs.mean()))
    assert e.hi - e.lo != pytest.approx(alone.hi - alone.lo, rel=0.01)


def roc_auc(labels, scores) -> float:
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score(labels, scores))

