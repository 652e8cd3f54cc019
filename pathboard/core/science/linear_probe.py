"""The few-shot linear probe: an L2-regularised logistic regression on frozen embeddings (CONCH's
linear-probe protocol, scikit-learn's LogisticRegression with lbfgs).

Its inverse regularisation C is chosen by stratified cross-validation *within the support set* (min(5, k)
folds, balanced accuracy, grid :data:`C_GRID`, ties to the smaller C); with one item per class there is
nothing to cross-validate and C = :data:`DEFAULT_C` (scikit-learn's default). Test items are never seen
before prediction. Fits run in float64 whatever the embeddings' dtype: scikit-learn 1.9 fits float32
input in float32, so the numbers would otherwise depend on the installed release.
"""
from __future__ import annotations

import numpy as np

from pathboard.core.science.metrics import SEED

C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
DEFAULT_C = 1.0
FOLDS = 5
MAX_ITER = 1000
#: support-set entries (items x dims) below which fits run on one BLAS thread
SMALL_FIT = 2_000_000


def _logistic(C: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=MAX_ITER)


def _predict(model, x: np.ndarray) -> np.ndarray:
    """``model.predict(x)`` without scikit-learn's per-call input validation (the CV calls it hundreds of
    times on tiny folds): the class of the largest decision value."""
    scores = x @ model.coef_.T + model.intercept_
    if scores.shape[1] == 1:
        return model.classes_[(scores[:, 0] > 0).astype(np.int64)]
    return model.classes_[scores.argmax(axis=1)]


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """scikit-learn's balanced_accuracy_score: the mean recall over the classes present in ``y_true``."""
    classes = np.unique(y_true)
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in classes]))


def select_c(x: np.ndarray, y: np.ndarray, seed: int = SEED) -> float:
    """C by stratified cross-validation within the training set (balanced accuracy; ties: smaller C)."""
    from sklearn.model_selection import StratifiedKFold

    k = min(np.unique(y, return_counts=True)[1]) if len(y) else 0
    if k < 2:
        return DEFAULT_C
    folds = list(StratifiedKFold(n_splits=min(FOLDS, k), shuffle=True, random_state=seed).split(x, y))
    scores = []
    for C in C_GRID:
        fold_scores = []
        for fit, held in folds:
            model = _logistic(C).fit(x[fit], y[fit])
            fold_scores.append(balanced_accuracy(y[held], _predict(model, x[held])))
        scores.append(np.mean(fold_scores))
    return float(C_GRID[int(np.argmax(scores))])  # argmax takes the first (smallest C) of equal scores


def linear_probe_classifier(x: np.ndarray, y: np.ndarray, classes: np.ndarray,
                            seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """([C, D] weights, [C] biases) of a logistic regression fitted on (x, y), C chosen on (x, y) only;
    the class of an item is the argmax of ``weights @ x + biases``."""
    from threadpoolctl import threadpool_limits

    x = np.asarray(x, dtype=np.float64)
    # small fits are dominated by BLAS thread start-up (15x slower on a busy 2-core machine): one thread
    with threadpool_limits(1 if x.size < SMALL_FIT else None):
        model = _logistic(select_c(x, y, seed)).fit(x, y)
    assert list(model.classes_) == list(classes)
    if len(classes) == 2:  # one decision function: class 1 when w.x + b > 0
        return (np.vstack([np.zeros_like(model.coef_[0]), model.coef_[0]]).astype(np.float32),
                np.array([0.0, model.intercept_[0]], dtype=np.float32))
    return model.coef_.astype(np.float32), model.intercept_.astype(np.float32)
