"""Paired comparisons: the same resamples for both models, groups resampled together, bootstrap
p-values and Holm's correction."""
from __future__ import annotations

import numpy as np
import pytest
from support.synthetic import clustered, loop_resamples

from pathboard.core.science.compare import (
    METRICS,
    bootstrap_p_value,
    holm,
    paired_bootstrap,
    paired_difference,
)
from pathboard.core.science.metrics import (
    confusion_matrices,
    percentile_ci,
    resampled_confusions,
    scores_from_confusion,
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


def _old_paired(y, pa, pb, k, ordinal, groups):
    """The comparison as it was computed before resamples were shared: both models' confusions per chunk."""
    present = np.unique(y)
    names = [m for m in METRICS if ordinal or m != "quadratic_kappa"]
    every = np.arange(len(y))[None]
    sa = scores_from_confusion(confusion_matrices(y, pa, k, every), present, ordinal)
    sb = scores_from_confusion(confusion_matrices(y, pb, k, every), present, ordinal)
    diffs = {name: [] for name in names}
    for cm_a, cm_b in resampled_confusions(y, [pa, pb], k, groups=groups):
        a, b = scores_from_confusion(cm_a, present, ordinal), scores_from_confusion(cm_b, present, ordinal)
        for name in names:
            diffs[name].append(a[name] - b[name])
    return {name: (float(sa[name][0] - sb[name][0]), *percentile_ci(np.concatenate(d)),
                   bootstrap_p_value(np.concatenate(d))) for name, d in diffs.items()}


def test_compare_cells_scores_each_model_once_and_matches_pair_by_pair(monkeypatch):
    import pandas as pd

    from pathboard.core.science import compare

    rng = np.random.default_rng(5)
    n = 150
    y = rng.integers(0, 3, n)
    items = np.array([f"img{i}" for i in range(n)])
    groups = np.array([f"patient{i // 5}" for i in range(n)])
    rows = []
    for m, quality in enumerate((0.9, 0.7, 0.6, 0.5)):
        pred = np.where(rng.random(n) < quality, y, rng.integers(0, 3, n))
        rows.append({"cell_id": f"c{m}", "model": f"m{m}", "y_true": y.tolist(), "y_pred": pred.tolist(),
                     "items": items.tolist(), "groups": groups.tolist()})
    keep = np.sort(rng.choice(n, 120, replace=False))  # a fifth model that scored only some of the items
    rows.append({"cell_id": "c4", "model": "m4", "y_true": y[keep].tolist(), "y_pred": y[keep].tolist(),
                 "items": items[keep].tolist(), "groups": groups[keep].tolist()})
    frame = pd.DataFrame([{**r, "dataset": "d", "task": "zeroshot", "variant": "", "prompt_mode": "single",
                           "protocol_hash": "h", "n_classes": 3, "ordinal": False} for r in rows])
    calls = []
    real = compare.resampled_scores
    monkeypatch.setattr(compare, "resampled_scores", lambda *a, **k: calls.append(1) or real(*a, **k))
    got = compare.compare_cells(frame)
    # 4 models on all items, once each; the fifth's 4 pairs each need both sides on its 120 items
    assert len(calls) == 4 + 4 + 1
    assert len(got) == 10 * len([m for m in METRICS if m != "quadratic_kappa"])
    by_pair = {(r[2], r[3], r[8]): r for r in got}
    for a, b in [(0, 1), (0, 3), (2, 3), (1, 4)]:
        ra, rb = rows[a], rows[b]
        shared = np.isin(items, rb["items"]) & np.isin(items, ra["items"])
        pa = np.asarray(ra["y_pred"])[np.isin(ra["items"], items[shared])]
        pb = np.asarray(rb["y_pred"])[np.isin(rb["items"], items[shared])]
        want = _old_paired(y[shared], pa, pb, 3, False, groups[shared])
        for metric, (diff, low, high, p) in want.items():
            row = by_pair[(f"m{a}", f"m{b}", metric)]
            assert (row[9], row[10], row[11], row[14]) == (diff, low, high, p), (a, b, metric)


def test_a_dataset_s_models_on_the_same_items_share_one_draw_of_the_resamples(monkeypatch):
    """Where every model of a comparison group scored the same items (truth and groups alike), their resamples are
    drawn once for all of them, and every pair's numbers are those of the pair alone."""
    import pandas as pd

    from pathboard.core.science import compare

    rng = np.random.default_rng(8)
    n = 120
    y = rng.integers(0, 3, n)
    items, groups = [f"img{i}" for i in range(n)], [f"patient{i // 4}" for i in range(n)]
    preds = [np.where(rng.random(n) < quality, y, rng.integers(0, 3, n)) for quality in (0.9, 0.7, 0.6, 0.5)]
    frame = pd.DataFrame([{"cell_id": f"c{m}", "model": f"m{m}", "y_true": y.tolist(), "y_pred": p.tolist(),
                           "items": items, "groups": groups, "dataset": "d", "task": "zeroshot", "variant": "",
                           "prompt_mode": "single", "protocol_hash": "h", "n_classes": 3, "ordinal": False}
                          for m, p in enumerate(preds)])
    alone, together = [], []
    real_one, real_many = compare.resampled_scores, compare.resampled_scores_many
    monkeypatch.setattr(compare, "resampled_scores", lambda *a, **k: alone.append(1) or real_one(*a, **k))
    monkeypatch.setattr(compare, "resampled_scores_many", lambda *a, **k: together.append(len(a[1])) or
                        real_many(*a, **k))
    got = compare.compare_cells(frame)
    assert together == [4] and not alone  # one draw of the resamples for the 4 models, none per model
    by_pair = {(r[2], r[3], r[8]): r for r in got}
    for a, b in [(0, 1), (1, 3), (2, 3)]:
        want = _old_paired(y, preds[a], preds[b], 3, False, np.asarray(groups))
        for metric, (diff, low, high, p) in want.items():
            row = by_pair[(f"m{a}", f"m{b}", metric)]
            assert (row[9], row[10], row[11], row[14]) == (diff, low, high, p), (a, b, metric)
