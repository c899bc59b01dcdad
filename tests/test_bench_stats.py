"""The benchmark statistics against values computed by hand or by scipy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from rliable import metrics as rlm

from marl.bench import stats


def test_normalise_maps_random_to_zero_and_reference_to_one():
    out = stats.normalise([-20.0, -15.0, -10.0, -5.0], random_score=-20.0, reference_score=-10.0)
    np.testing.assert_allclose(out, [0.0, 0.5, 1.0, 1.5])
    # a reference below random (a cost to minimise) still maps random to 0 and reference to 1
    np.testing.assert_allclose(stats.normalise([10.0, 4.0], 10.0, 4.0), [0.0, 1.0])
    with pytest.raises(ValueError, match="must be finite and differ"):
        stats.normalise([1.0], 3.0, 3.0)


def test_iqm_by_hand():
    # 8 values: 25% trimmed from each end leaves 3, 4, 5, 6
    assert stats.iqm(np.array([[8.0, 1.0, 3.0, 6.0], [2.0, 5.0, 7.0, 4.0]])) == pytest.approx(4.5)
    # an outlier run moves the mean but not the IQM
    x = np.array([[0.1], [0.2], [0.3], [100.0]])
    assert stats.iqm(x) == pytest.approx(0.25)
    assert stats.AGGREGATES["mean"](x) == pytest.approx(25.15)


def test_median_mean_and_optimality_gap_by_hand():
    scores = np.array([[0.5, 1.5, 0.2], [0.7, 1.1, 0.4]])  # 2 runs x 3 tasks; task means 0.6, 1.3, 0.3
    assert stats.AGGREGATES["median"](scores) == pytest.approx(0.6)
    assert stats.AGGREGATES["mean"](scores) == pytest.approx((0.6 + 1.3 + 0.3) / 3)
    # scores above the reference count as 1: 1 - mean(0.5, 1, 0.2, 0.7, 1, 0.4)
    assert stats.optimality_gap(scores) == pytest.approx(1 - 3.8 / 6)


def test_probability_of_improvement_by_hand_and_against_rliable():
    # one task: pairs (1,0) win, (1,2) loss, (2,0) win, (2,2) tie = 2.5 / 4
    assert stats.probability_of_improvement(np.array([[1.0], [2.0]]), np.array([[0.0], [2.0]])) == 0.625
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, size=(5, 3)).astype(float)  # integers: plenty of ties
    y = rng.integers(0, 4, size=(4, 3)).astype(float)
    assert stats.probability_of_improvement(x, y) == pytest.approx(rlm.probability_of_improvement(x, y))
    assert stats.probability_of_improvement(x, x) == pytest.approx(0.5)


def test_bootstrap_ci_of_a_mean_matches_scipy():
    values = np.random.default_rng(1).normal(2.0, 1.0, size=40)
    point, lo, hi = stats.mean_with_ci(values, reps=20000, seed=0)
    ref = scipy.stats.bootstrap((values,), np.mean, n_resamples=20000, method="percentile",
                                confidence_level=0.95, random_state=0).confidence_interval
    assert point == pytest.approx(values.mean())
    # two independent Monte-Carlo estimates of the same percentiles
    assert lo == pytest.approx(ref.low, abs=0.02)
    assert hi == pytest.approx(ref.high, abs=0.02)


def test_bootstrap_is_stratified_by_task():
    # every run of a task has the same score, tasks differ: resampling runs *within* tasks never
    # changes any aggregate, so the CIs collapse onto the point estimates
    scores = np.tile([0.0, 0.5, 1.0, 2.0], (3, 1))
    est = stats.aggregate_estimates({"m": scores}, reps=500, seed=0)["m"]
    for name, (point, lo, hi) in est.items():
        assert lo == pytest.approx(point) and hi == pytest.approx(point), name
    assert est["IQM"][0] == pytest.approx(0.75)
    assert est["optimality_gap"][0] == pytest.approx(1 - 2.5 / 4)


def test_bootstrap_is_seeded_and_leaves_numpy_global_state_alone():
    scores = {"a": np.random.default_rng(2).uniform(size=(5, 4)), "b": np.random.default_rng(3).uniform(size=(5, 4))}
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    one = stats.aggregate_estimates(scores, reps=300, seed=7)
    assert np.array_equal(np.random.get_state()[1], before)
    assert one == stats.aggregate_estimates(scores, reps=300, seed=7)
    assert one != stats.aggregate_estimates(scores, reps=300, seed=8)
    for method in scores:
        for point, lo, hi in one[method].values():
            assert lo <= point + 1e-12 and point <= hi + 1e-12


def test_improvement_matrix_points_and_symmetry():
    a = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    b = a - 10.0
    mat = stats.improvement_matrix({"a": a, "b": b}, reps=200, seed=0)
    assert mat[("a", "b")] == (1.0, 1.0, 1.0)
    assert mat[("b", "a")] == (0.0, 0.0, 0.0)


def test_performance_profile_by_hand():
    scores = {"m": np.array([[0.1, 0.6], [0.4, 0.9]])}
    prof, lo, hi = stats.performance_profiles(scores, np.array([0.0, 0.5, 1.0]), reps=200, seed=0)["m"]
    np.testing.assert_allclose(prof, [1.0, 0.5, 0.0])
    assert lo[0] == hi[0] == 1.0 and lo[2] == hi[2] == 0.0


def test_sample_efficiency_is_iqm_per_point():
    curves = np.random.default_rng(4).uniform(size=(4, 3, 5))  # runs x tasks x points
    point, lo, hi = stats.sample_efficiency({"m": curves}, reps=300, seed=0)["m"]
    for t in range(5):
        assert point[t] == pytest.approx(stats.iqm(curves[:, :, t]))
    assert np.all(lo <= point + 1e-12) and np.all(point <= hi + 1e-12)
