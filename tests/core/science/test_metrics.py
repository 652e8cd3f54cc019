"""Classification metrics and their intervals: the vectorised bootstrap against scikit-learn and a plain
loop, items or groups resampled, medians over draws."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score, f1_score
from support.synthetic import clustered, loop_resamples

from pathboard.core.science.metrics import (
    bootstrap_counts,
    bootstrap_indices,
    bootstrap_label,
    classification_metrics,
    confusion_matrices,
    median_metrics,
    scores_from_confusion,
)


@pytest.mark.parametrize("seed", range(5))
def test_vectorised_bootstrap_formulas_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    k = 5
    y_true = rng.choice([0, 1, 3, 4], size=60)  # class 2 absent from the truth, as BACK is in the samples
    y_pred = np.where(rng.random(60) < 0.6, y_true, rng.integers(0, k, 60))
    present = np.unique(y_true)
    idx = next(bootstrap_indices(60, n_boot=20, seed=seed))
    got = scores_from_confusion(confusion_matrices(y_true, y_pred, k, idx), present, ordinal=True)
    for b in range(20):
        t, p = y_true[idx[b]], y_pred[idx[b]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # predicted classes absent from the truth
            bal = balanced_accuracy_score(t, p)
        assert got["balanced_accuracy"][b] == pytest.approx(bal)
        assert got["weighted_f1"][b] == pytest.approx(
            f1_score(t, p, labels=np.unique(t), average="weighted", zero_division=0))
        assert got["cohen_kappa"][b] == pytest.approx(cohen_kappa_score(t, p, labels=range(k)))
        assert got["quadratic_kappa"][b] == pytest.approx(
            cohen_kappa_score(t, p, labels=range(k), weights="quadratic"))


def test_metrics_point_estimates_cis_and_seed():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.integers(0, 3, 300))
    names = ["a", "b", "c", "unused"]
    metrics = {m.name: m for m in classification_metrics(y_true, y_pred, names, ordinal=True)}
    assert set(metrics) == {"balanced_accuracy", "weighted_f1", "cohen_kappa", "quadratic_kappa", "accuracy",
                            "recall/a", "recall/b", "recall/c"}
    bal = metrics["balanced_accuracy"]
    assert bal.value == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert bal.ci_low < bal.value < bal.ci_high and bal.ci_high - bal.ci_low < 0.15 and bal.n == 300
    again = {m.name: m for m in classification_metrics(y_true, y_pred, names, ordinal=True)}
    assert again == metrics  # seeded
    other = {m.name: m for m in classification_metrics(y_true, y_pred, names, ordinal=True, seed=1)}
    assert other["balanced_accuracy"].ci_low != bal.ci_low


def test_perfect_and_chance_predictions():
    y = np.repeat(np.arange(4), 25)
    perfect = {m.name: m for m in classification_metrics(y, y, list("abcd"))}
    assert perfect["weighted_f1"].value == 1 and perfect["cohen_kappa"].ci_low == 1
    constant = {m.name: m for m in classification_metrics(y, np.zeros_like(y), list("abcd"))}
    assert constant["balanced_accuracy"].value == 0.25 and constant["cohen_kappa"].value == 0


def old_classification_cis(y_true, y_pred, k, n_boot=1000, seed=0):
    """The item bootstrap exactly as it was written before groups existed."""
    rng = np.random.default_rng(seed)
    n = len(y_true)
    chunk = max(1, min(100, 10_000_000 // max(n, 1)))
    present = np.unique(y_true)
    boot = {}
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        b = idx.shape[0]
        codes = y_true[idx] * k + y_pred[idx] + (np.arange(b) * k * k)[:, None]
        cm = np.bincount(codes.ravel(), minlength=b * k * k).reshape(b, k, k)
        for name, values in scores_from_confusion(cm, present, False).items():
            boot.setdefault(name, []).append(values)
    return {name: tuple(np.percentile(np.concatenate(v)[np.isfinite(np.concatenate(v))], [2.5, 97.5]))
            for name, v in boot.items()}


def test_cluster_bootstrap_ci_equals_a_plain_loop_over_groups():
    y_true, y_pred, groups = clustered(n_groups=30, per_group=7, seed=1)
    # shuffle, and give groups unequal sizes: the resamples must not depend on the items' order
    rng = np.random.default_rng(5)
    order = rng.permutation(len(groups))[: len(groups) - 23]
    y_true, y_pred, groups = y_true[order], y_pred[order], groups[order]
    n_boot, seed = 300, 7
    metrics = {m.name: m for m in classification_metrics(y_true, y_pred, list("abc"), n_boot=n_boot, seed=seed,
                                                         groups=groups)}
    resamples = loop_resamples(list(groups), n_boot, seed)
    accuracy = [np.mean(y_true[idx] == y_pred[idx]) for idx in resamples]
    low, high = np.percentile(accuracy, [2.5, 97.5])
    assert metrics["accuracy"].ci_low == pytest.approx(low, abs=1e-12)
    assert metrics["accuracy"].ci_high == pytest.approx(high, abs=1e-12)
    assert metrics["accuracy"].value == pytest.approx(np.mean(y_true == y_pred))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        balanced = [balanced_accuracy_score(y_true[idx], y_pred[idx]) for idx in resamples]
    assert (metrics["balanced_accuracy"].ci_low, metrics["balanced_accuracy"].ci_high) == pytest.approx(
        tuple(np.percentile(balanced, [2.5, 97.5])), abs=1e-12)


def test_ragged_indices_and_counts_are_the_same_resamples():
    y_true, y_pred, groups = clustered(n_groups=12, per_group=5, seed=2)
    groups = groups.copy()
    groups[:3] = ["lonely-a", "lonely-b", "lonely-c"]  # unequal group sizes
    reference = loop_resamples(list(groups), 45, 3)
    ragged = [i for chunk in bootstrap_indices(len(groups), 45, 3, chunk=10, groups=groups) for i in chunk]
    counts = np.concatenate(list(bootstrap_counts(len(groups), 45, 3, chunk=10, groups=groups)))
    assert len(ragged) == len(reference) == len(counts) == 45
    assert {len(i) for i in ragged} != {len(groups)}  # resamples vary in length
    for got, want, count in zip(ragged, reference, counts):
        assert sorted(got) == sorted(want)
        assert np.array_equal(count, np.bincount(want, minlength=len(groups)))
    # weighted confusion matrices = scikit-learn on the ragged resample
    cms = confusion_matrices(y_true, y_pred, 3, counts=counts)
    scores = scores_from_confusion(cms, np.unique(y_true), ordinal=True)
    for b, idx in enumerate(reference[:10]):
        assert cms[b].sum() == len(idx)
        assert scores["cohen_kappa"][b] == pytest.approx(cohen_kappa_score(y_true[idx], y_pred[idx], labels=range(3)))
        assert scores["quadratic_kappa"][b] == pytest.approx(
            cohen_kappa_score(y_true[idx], y_pred[idx], labels=range(3), weights="quadratic"))
    # the chunk size does not change the resamples
    again = np.concatenate(list(bootstrap_counts(len(groups), 45, 3, chunk=7, groups=groups)))
    assert np.array_equal(again, counts)


def test_median_metrics_resample_groups():
    y_true, y_pred, groups = clustered(n_groups=40, per_group=30, seed=4)
    rng = np.random.default_rng(0)
    other = np.where(rng.random(len(y_true)) < 0.9, y_pred, y_true)
    items = {m.name: m for m in median_metrics(y_true, [y_pred, other, y_pred], list("abc"))}
    cluster = {m.name: m for m in median_metrics(y_true, [y_pred, other, y_pred], list("abc"), groups=groups)}
    assert cluster["accuracy"].value == items["accuracy"].value
    assert cluster["accuracy"].ci_high - cluster["accuracy"].ci_low > \
        2 * (items["accuracy"].ci_high - items["accuracy"].ci_low)


def test_cluster_ci_is_clearly_wider_on_clustered_items():
    y_true, y_pred, groups = clustered(n_groups=50, per_group=40, seed=0)
    items = {m.name: m for m in classification_metrics(y_true, y_pred, list("abc"))}
    cluster = {m.name: m for m in classification_metrics(y_true, y_pred, list("abc"), groups=groups)}
    for name in ("accuracy", "balanced_accuracy", "weighted_f1", "cohen_kappa"):
        assert cluster[name].value == items[name].value  # the point estimate does not depend on groups
        wide, narrow = cluster[name].ci_high - cluster[name].ci_low, items[name].ci_high - items[name].ci_low
        assert wide > 2.5 * narrow, (name, wide, narrow)
    # groups of one item each: the same distribution as the item bootstrap (widths agree roughly)
    singles = {m.name: m for m in classification_metrics(y_true, y_pred, list("abc"),
                                                         groups=np.arange(len(y_true)).astype(str))}
    width = singles["accuracy"].ci_high - singles["accuracy"].ci_low
    assert width == pytest.approx(items["accuracy"].ci_high - items["accuracy"].ci_low, rel=0.25)


def test_bootstrap_label():
    assert bootstrap_label(None) == "items"
    assert bootstrap_label(["x", "y", "x"]) == "cluster by group (2 groups)"


def test_without_groups_the_numbers_are_those_of_before():
    y_true, y_pred, _ = clustered(n_groups=20, per_group=13, seed=8)
    old = old_classification_cis(y_true, y_pred, 3)
    now = {m.name: m for m in classification_metrics(y_true, y_pred, list("abc"))}
    for name in ("accuracy", "balanced_accuracy", "weighted_f1", "cohen_kappa"):
        assert (now[name].ci_low, now[name].ci_high) == old[name]  # bit-identical
    # the count form of the item resamples is the same resamples
    idx = np.concatenate(list(bootstrap_indices(len(y_true), 50, 2)))
    counts = np.concatenate(list(bootstrap_counts(len(y_true), 50, 2)))
    assert all(np.array_equal(c, np.bincount(i, minlength=len(y_true))) for c, i in zip(counts, idx))
    assert np.array_equal(confusion_matrices(y_true, y_pred, 3, idx), confusion_matrices(y_true, y_pred, 3,
                                                                                         counts=counts))


def test_every_interval_says_what_it_rests_on():
    """The units resampled (groups, else items) and the share of resamples left out as undefined: a rare
    class absent from a resample has no recall there, and percentile_ci left those out without a word."""
    from pathboard.core.science.metrics import MIN_UNITS, interval_caveat

    rng = np.random.default_rng(0)
    y = np.array([0] * 14 + [1] * 14 + [2] * 2)  # class 2: 2 of 30 items
    pred = np.where(rng.random(30) < 0.7, y, rng.integers(0, 3, 30))
    m = {x.name: x for x in classification_metrics(y, pred, ["a", "b", "c"])}
    assert m["balanced_accuracy"].units == 30 and m["balanced_accuracy"].undefined == 0.0
    assert m["recall/c"].undefined == pytest.approx((28 / 30) ** 30, abs=0.03)  # 10.6% here: c not drawn
    assert "undefined in" in interval_caveat(m["recall/c"].units, m["recall/c"].undefined)
    groups = np.repeat(np.arange(6), 5).astype(str)
    grouped = {x.name: x for x in classification_metrics(y, pred, ["a", "b", "c"], groups=groups)}
    assert grouped["balanced_accuracy"].units == 6 < MIN_UNITS
    assert interval_caveat(6, 0.0) == "over 6 unit(s) only" and interval_caveat(30, 0.0) == ""
    none = {x.name: x for x in classification_metrics(y, pred, ["a", "b", "c"], n_boot=0)}
    assert none["balanced_accuracy"].units == 0  # no interval, nothing resampled
    tiny = {x.name: x for x in classification_metrics([0, 0, 1, 1], [0, 1, 1, 1], ["a", "b"])}
    assert tiny["cohen_kappa"].undefined > 0.05  # one class drawn only: kappa undefined in 6% of resamples


def test_confusion_matrices_count_each_resample_apart_and_take_none():
    """One matrix a resample, by drawn indices or by counts (the same numbers either way), and none for none."""
    from pathboard.core.science.metrics import confusion_matrices

    rng = np.random.default_rng(9)
    y, p = rng.integers(0, 3, 50), rng.integers(0, 3, 50)
    idx = rng.integers(0, 50, (7, 50))
    counts = np.stack([np.bincount(row, minlength=50) for row in idx])
    by_index, by_count = confusion_matrices(y, p, 3, idx), confusion_matrices(y, p, 3, counts=counts)
    expected = np.zeros((7, 3, 3), dtype=np.int64)
    for r, row in enumerate(idx):
        np.add.at(expected[r], (y[row], p[row]), 1)
    assert np.array_equal(by_index, expected) and np.array_equal(by_count, expected)
    assert confusion_matrices(y, p, 3, idx[:0]).shape == confusion_matrices(y, p, 3, counts=counts[:0]).shape == (0, 3, 3)
