"""Calibration and ranking metrics (ECE, Brier, NLL, AUROC) against loops and scikit-learn, with
bootstrap CIs on the same resamples as the other metrics."""
import numpy as np
import pytest
from scipy.special import softmax
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from pathboard.core.science.calibration import LOWER_IS_BETTER, calibration_metrics, softmax_probs
from pathboard.core.science.metrics import bootstrap_indices, percentile_ci


def sample(k: int, n: int = 200, seed: int = 0, present=None):
    """Labels and softmax probabilities of random logits that lean towards the true class."""
    rng = np.random.default_rng(seed)
    y = rng.choice(present if present is not None else k, size=n)
    logits = rng.normal(size=(n, k)) * 2
    logits[np.arange(n), y] += 1.5
    return y, softmax(logits, axis=1)


def by_name(*args, **kwargs):
    return {m.name: m for m in calibration_metrics(*args, **kwargs)}


def ece_loop(y, p, bins=15):
    conf, correct = p.max(1), p.argmax(1) == y
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for b in range(bins):
        inside = (conf > edges[b]) & (conf <= edges[b + 1]) | ((b == 0) & (conf == 0))
        if inside.any():
            total += inside.sum() / len(y) * abs(correct[inside].mean() - conf[inside].mean())
    return total


def brier_loop(y, p):
    """scikit-learn's convention: class 1's squared error with two classes, the sum over classes with more."""
    if p.shape[1] == 2:
        return np.mean([(p[i, 1] - (y[i] == 1)) ** 2 for i in range(len(y))])
    return np.mean([sum((p[i, c] - (y[i] == c)) ** 2 for c in range(p.shape[1])) for i in range(len(y))])


def auroc_reference(y, p, k):
    """sklearn's binary AUROC of class 1, or the mean one-vs-rest AUROC over classes with both outcomes."""
    if k == 2:
        return roc_auc_score(y, p[:, 1]) if len(np.unique(y)) == 2 else np.nan
    aucs = [roc_auc_score(y == c, p[:, c]) for c in np.unique(y) if 0 < (y == c).sum() < len(y)]
    return np.mean(aucs) if aucs else np.nan


def resampled(idx):
    return idx if isinstance(idx, list) else list(idx)


@pytest.mark.parametrize("k", [2, 4])
def test_point_estimates_match_loops_and_sklearn(k):
    y, p = sample(k)
    m = by_name(y, p, [f"c{i}" for i in range(k)], n_boot=0)
    assert m["brier"].value == pytest.approx(brier_loop(y, p))
    assert m["brier"].value == pytest.approx(brier_score_loss(y, p if k > 2 else p[:, 1]))  # what papers publish
    assert m["nll"].value == pytest.approx(log_loss(y, p, labels=range(k)))
    assert m["ece"].value == pytest.approx(ece_loop(y, p))
    assert m["auroc"].value == pytest.approx(auroc_reference(y, p, k))
    if k == 2:
        assert m["auroc"].value == pytest.approx(roc_auc_score(y, p[:, 1]))
        assert set(m) == {"ece", "brier", "nll", "auroc"}
    else:
        assert m["auroc"].value == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"))
        for c in range(k):
            assert m[f"auroc/c{c}"].value == pytest.approx(roc_auc_score(y == c, p[:, c]))
    for metric in m.values():  # n_boot=0: finite points, NaN CIs
        assert np.isfinite(metric.value) and np.isnan(metric.ci_low) and np.isnan(metric.ci_high)
        assert metric.n == len(y)
    assert LOWER_IS_BETTER == {"ece", "brier", "nll"}


def test_multiclass_auroc_averages_only_the_present_classes():
    y, p = sample(5, present=[0, 2, 3])  # classes 1 and 4 never occur
    m = by_name(y, p, list("abcde"), n_boot=0)
    assert set(m) == {"ece", "brier", "nll", "auroc", "auroc/a", "auroc/c", "auroc/d"}
    assert m["auroc"].value == pytest.approx(np.mean([roc_auc_score(y == c, p[:, c]) for c in (0, 2, 3)]))
    assert m["nll"].value == pytest.approx(log_loss(y, p, labels=range(5)))


def test_tied_scores_count_half():
    p1 = np.array([0.5, 0.5, 0.2, 0.8])  # pairs (pos, neg): (.5,.5) half, (.5,.2) (.8,.5) (.8,.2) whole
    y = np.array([1, 0, 0, 1])
    m = by_name(y, np.stack([1 - p1, p1], 1), ["neg", "pos"], n_boot=0)
    assert m["auroc"].value == pytest.approx(3.5 / 4) == roc_auc_score(y, p1)
    y, p = sample(3, seed=1)
    p = np.round(p, 1)  # many ties; rows need not sum to 1 for AUROC
    m = by_name(y, p, list("abc"), n_boot=0)
    assert m["auroc"].value == pytest.approx(np.mean([roc_auc_score(y == c, p[:, c]) for c in range(3)]))


def test_one_class_gives_nan_auroc():
    y, p = sample(2, present=[0])
    m = by_name(y, p, ["a", "b"], n_boot=20)
    assert np.isnan(m["auroc"].value) and np.isnan(m["auroc"].ci_low)
    assert np.isfinite(m["brier"].ci_low)


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("clustered", [False, True])
def test_cis_match_a_loop_over_the_same_resamples(k, clustered):
    y, p = sample(k, seed=k)
    if k == 4:
        p = np.round(p, 2)  # ties under resampling too
    groups = np.random.default_rng(9).integers(0, 25, len(y)).astype(str) if clustered else None
    m = by_name(y, p, list("abcd"[:k]), n_boot=50, seed=3, groups=groups)
    loops = {"brier": [], "ece": [], "nll": [], "auroc": []}
    for chunk in bootstrap_indices(len(y), 50, 3, groups=groups):
        for idx in resampled(chunk):
            t, q = y[idx], p[idx]
            loops["brier"].append(brier_loop(t, q))
            loops["ece"].append(ece_loop(t, q))
            loops["nll"].append(-np.mean(np.log(np.clip(q[np.arange(len(t)), t], 1e-15, 1))))  # rounding gave zeros
            loops["auroc"].append(auroc_reference(t, q, k))
    assert len(loops["brier"]) == 50
    for name, values in loops.items():
        low, high = percentile_ci(values)
        assert (m[name].ci_low, m[name].ci_high) == pytest.approx((low, high)), name
        assert np.isfinite(low) and low <= high


def test_seeded_cis_repeat_and_grouped_cis_are_finite():
    y, p = sample(4, seed=5)
    groups = [f"slide{i % 30}" for i in range(len(y))]
    a = calibration_metrics(y, p, list("abcd"), n_boot=100, groups=groups)
    assert a == calibration_metrics(y, p, list("abcd"), n_boot=100, groups=groups)
    assert all(np.isfinite([x.value, x.ci_low, x.ci_high]).all() and x.ci_low <= x.ci_high for x in a)
    assert a != calibration_metrics(y, p, list("abcd"), n_boot=100, seed=1, groups=groups)


def test_softmax_probs():
    s = np.random.default_rng(0).uniform(-1, 1, size=(50, 6)).astype(np.float32)
    for scale in (1.0, 100.0, 1e4):  # large scales must not overflow
        q = softmax_probs(s, scale)
        assert q.dtype == np.float64 and np.isfinite(q).all()
        np.testing.assert_allclose(q.sum(1), 1.0)
        np.testing.assert_allclose(q, softmax(scale * s.astype(np.float64), axis=1), rtol=1e-10, atol=1e-300)


def test_ece_bins_are_closed_on_the_right():
    edges = np.linspace(0, 1, 16)
    conf = np.concatenate([edges[8:], edges[8:15] + 1e-9])  # on the edges and just above them
    p = np.stack([conf, 1 - conf], 1)
    y = np.arange(len(conf)) % 2
    assert by_name(y, p, ["a", "b"], n_boot=0)["ece"].value == pytest.approx(ece_loop(y, p))


def test_reliability_bins_reproduce_the_ece():
    """The reliability diagram's bins are the ECE's: sum over bins of count/n x |accuracy - confidence|."""
    from pathboard.core.science.calibration import reliability_bins

    rng = np.random.default_rng(3)
    logits = rng.normal(size=(400, 4)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = rng.integers(0, 4, 400)
    bins = {m.name: m for m in reliability_bins(y, probs)}
    ece = {m.name: m for m in calibration_metrics(y, probs, list("abcd"), n_boot=10)}["ece"].value
    names = sorted({n.split("/")[0] for n in bins})
    assert sum(bins[f"{b}/count"].value for b in names) == 400
    rebuilt = sum(bins[f"{b}/count"].value / 400 * abs(bins[f"{b}/accuracy"].value - bins[f"{b}/confidence"].value)
                  for b in names)
    assert rebuilt == pytest.approx(ece, abs=1e-12)
    assert all(0 <= bins[f"{b}/confidence"].value <= 1 for b in names) and len(names) > 3
