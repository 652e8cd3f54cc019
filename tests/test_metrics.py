import warnings

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score, f1_score

from pathboard.core.science.metrics import (
    bootstrap_indices,
    classification_metrics,
    confusion_matrices,
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
