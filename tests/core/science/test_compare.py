"""Paired comparisons: the same resamples for both models, groups resampled together, bootstrap
p-values and Holm's correction."""
from __future__ import annotations

import numpy as np
import pytest
from support.synthetic import clustered, loop_resamples

from pathboard.core.science.compare import (
    bootstrap_p_value,
    holm,
    paired_bootstrap,
    paired_difference,
)


def test_paired_differences_share_resamples():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    good = np.where(rng.random(200) < 0.9, y, rng.integers(0, 3, 200))
    poor = np.where(rng.random(200) < 0.5, y, rng.integers(0, 3, 200))
    ab = paired_difference(y, good, poor, 3, ordinal=False)
    ba = paired_difference(y, poor, good, 3, ordinal=False)
    diff, low, high = ab["balanced_accuracy"]
    assert low > 0 and diff > 0.2  # a clear, significant win
    assert ba["balanced_accuracy"] == pytest.approx((-diff, -high, -low))  # same resamples, mirrored
    same = paired_difference(y, good, good, 3, ordinal=False)
    assert same["weighted_f1"] == (0.0, 0.0, 0.0)  # paired: identical predictions never differ
    assert "quadratic_kappa" not in ab and "quadratic_kappa" in paired_difference(y, good, poor, 3, True)


def test_cluster_paired_difference_equals_a_plain_loop():
    y_true, good, groups = clustered(n_groups=25, per_group=6, seed=3)
    rng = np.random.default_rng(9)
    poor = np.where(rng.random(len(y_true)) < 0.5, y_true, rng.integers(0, 3, len(y_true)))
    n_boot = 200
    got = paired_bootstrap(y_true, good, poor, 3, False, n_boot=n_boot, seed=4, groups=groups)["accuracy"]
    diffs = np.array([np.mean(good[i] == y_true[i]) - np.mean(poor[i] == y_true[i])
                      for i in loop_resamples(list(groups), n_boot, 4)])
    assert got.diff == pytest.approx(np.mean(good == y_true) - np.mean(poor == y_true))
    assert (got.ci_low, got.ci_high) == pytest.approx(tuple(np.percentile(diffs, [2.5, 97.5])), abs=1e-12)
    p = 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0))
    assert got.p_value == pytest.approx(min(1, max(1 / (n_boot + 1), p)))
    # the same resamples for both models: mirrored, and identical predictions never differ
    back = paired_bootstrap(y_true, poor, good, 3, False, n_boot=n_boot, seed=4, groups=groups)["accuracy"]
    assert (back.diff, back.ci_low, back.ci_high) == pytest.approx((-got.diff, -got.ci_high, -got.ci_low))
    assert back.p_value == got.p_value
    same = paired_bootstrap(y_true, good, good, 3, False, groups=groups)["accuracy"]
    assert same == (0.0, 0.0, 0.0, 1.0)
    assert paired_difference(y_true, good, poor, 3, False, n_boot, 4, groups)["accuracy"] == tuple(got[:3])


def test_holm_matches_a_hand_computed_example():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> cumulative max 0.06
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # 0.5*2 = 1, clipped; 0.6 raised to the max
    assert holm([0.2]) == pytest.approx([0.2])
    got = holm([0.01, np.nan, 0.02])  # NaN stays NaN and is not counted
    assert np.isnan(got[1]) and got[[0, 2]] == pytest.approx([0.02, 0.02])
    assert holm([]).shape == (0,)


def test_holm_matches_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.random.default_rng(0).uniform(0, 0.2, 37)
    p[5] = p[9]  # ties
    assert holm(p) == pytest.approx(multitest.multipletests(p, method="holm")[1])


def test_bootstrap_p_value():
    assert bootstrap_p_value(np.ones(999)) == pytest.approx(1 / 1000)  # bounded below by 1/(B+1)
    assert bootstrap_p_value(np.zeros(100)) == 1.0
    assert bootstrap_p_value([-1, 1, 2, 3]) == pytest.approx(0.5)
    assert bootstrap_p_value([-1, -2, 0, np.nan]) == pytest.approx(2 / 3)
    assert np.isnan(bootstrap_p_value([np.nan]))
