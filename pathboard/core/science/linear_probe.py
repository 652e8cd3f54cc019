"""The few-shot linear probe: an L2-regularised logistic regression on frozen embeddings (CONCH's
linear-probe protocol, scikit-learn's LogisticRegression with lbfgs: its objective and settings).

Its inverse regularisation C is chosen by stratified cross-validation *within the support set* (min(5, k)
folds, balanced accuracy, grid :data:`C_GRID`, ties to the smaller C); with one item per class there is
nothing to cross-validate and C = :data:`DEFAULT_C` (scikit-learn's default). Test items are never seen
before prediction. Fits run in float64 whatever the embeddings' dtype: scikit-learn 1.9 fits float32
input in float32, so the numbers would otherwise depend on the installed release.

The cross-validation's fits (6 C x up to 5 folds per support set, ~540 per few-shot cell) minimise
scikit-learn's own objective with its own optimiser and settings (:func:`fit_logistic`: the mean log loss
plus ``||W||^2 / (2 C n)``, SciPy's L-BFGS-B, gtol 1e-4, ftol 64 eps, maxls 50) but with the loss and its
gradient in a few numpy products: scikit-learn's per-fit validation and loss object cost several times
the arithmetic on support sets this small. The final classifier is the same fit on the whole support set, and
the folds are scikit-learn's ``StratifiedKFold(shuffle=True)`` folds (:func:`stratified_folds`, the same
assignment): a few-shot run on cached embeddings needs no scikit-learn, whose import alone (~1 s) was a fifth
of such a run (``benchmarks/fewshot_cost.py``).
"""
from __future__ import annotations

import numpy as np

from pathboard.core.science.metrics import SEED

C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
DEFAULT_C = 1.0
FOLDS = 5
MAX_ITER = 1000
TOL = 1e-4  # scikit-learn's default: L-BFGS-B's gtol
#: support-set entries (items x dims) below which fits run on one BLAS thread
SMALL_FIT = 2_000_000


def _loss_grad(params: np.ndarray, x: np.ndarray, y: np.ndarray, onehot: np.ndarray | None,
               l2: float) -> tuple[float, np.ndarray]:
    """scikit-learn's lbfgs objective and its gradient: binary (``onehot`` None: one column, y in {0, 1}) or
    multinomial; the mean loss plus ``l2 / 2`` times the squared weights (the intercept is not penalised)."""
    n, d = x.shape
    w = params.reshape(-1, d + 1)  # (outputs, features + intercept)
    z = x @ w[:, :d].T + w[:, d]
    if onehot is None:
        z = z[:, 0]
        loss = np.logaddexp(0.0, z) - y * z
        err = (0.5 * (1.0 + np.tanh(0.5 * z)) - y)[:, None]  # sigmoid(z) - y, stable
    else:
        top = z.max(axis=1, keepdims=True)
        e = np.exp(z - top)
        total = e.sum(axis=1, keepdims=True)
        loss = (np.log(total) + top)[:, 0] - z[np.arange(n), y]
        err = e / total - onehot
    grad = np.empty_like(w)
    grad[:, :d] = err.T @ x / n + l2 * w[:, :d]
    grad[:, d] = err.sum(axis=0) / n
    return float(loss.mean() + 0.5 * l2 * np.sum(w[:, :d] ** 2)), grad.ravel()


def fit_logistic(x: np.ndarray, y: np.ndarray, n_classes: int, C: float) -> np.ndarray:
    """(outputs, features + 1) weights and intercepts of scikit-learn's L2 logistic regression (lbfgs) on
    float64 ``x`` and label codes ``y`` in 0..n_classes-1: one output for two classes, else one per class.
    Tried and left: minimising the cross-validation's 30 problems as one L-BFGS run (their curvatures mix:
    90 iterations of a 30x larger problem where each alone takes 7-14), and starting each C from the previous
    C's solution (it changed the C chosen on nearly separable support sets, where the optimum is flat)."""
    from scipy.optimize import minimize

    outputs = 1 if n_classes == 2 else n_classes
    onehot = None if n_classes == 2 else np.eye(n_classes)[y]
    start = np.zeros(outputs * (x.shape[1] + 1))
    result = minimize(_loss_grad, start, args=(x, y.astype(np.float64) if onehot is None else y, onehot,
                                               1.0 / (C * len(x))),
                      method="L-BFGS-B", jac=True, options={"maxiter": MAX_ITER, "maxls": 50, "gtol": TOL,
                                                            "ftol": 64 * np.finfo(float).eps})
    return result.x.reshape(outputs, -1)


def _predict_codes(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Label codes predicted by :func:`fit_logistic`'s weights: the class of the largest decision value (one
    output: class 1 above zero), as scikit-learn's ``predict`` without its per-call input validation."""
    scores = x @ w[:, :-1].T + w[:, -1]
    return (scores[:, 0] > 0).astype(np.int64) if w.shape[0] == 1 else scores.argmax(axis=1)


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """scikit-learn's balanced_accuracy_score: the mean recall over the classes present in ``y_true``."""
    classes = np.unique(y_true)
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in classes]))


def stratified_folds(y: np.ndarray, n_splits: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit, held-out) item indices of ``n_splits`` stratified folds, shuffled by ``seed``: the assignment of
    scikit-learn's ``StratifiedKFold(n_splits, shuffle=True, random_state=seed)``, so the C chosen is the
    same. Classes are numbered in order of first appearance; the items of the sorted labels are dealt to the
    folds in turn, which fixes how many of each class each fold holds; then each class's fold numbers are
    shuffled (one ``RandomState(seed)``, class by class) and handed to its items in order."""
    y = np.asarray(y)
    _, first, inverse = np.unique(y, return_index=True, return_inverse=True)
    codes = np.argsort(np.argsort(first))[inverse]  # class numbers in order of first appearance
    n_classes = len(first)
    dealt = np.sort(codes)
    per_fold = np.stack([np.bincount(dealt[i::n_splits], minlength=n_classes) for i in range(n_splits)])
    rng = np.random.RandomState(seed)
    fold = np.empty(len(y), dtype=np.int64)
    for c in range(n_classes):
        numbers = np.repeat(np.arange(n_splits), per_fold[:, c])
        rng.shuffle(numbers)
        fold[codes == c] = numbers
    items = np.arange(len(y))
    return [(items[fold != i], items[fold == i]) for i in range(n_splits)]


def select_c(x: np.ndarray, y: np.ndarray, seed: int = SEED) -> float:
    """C by stratified cross-validation within the training set (balanced accuracy; ties: smaller C)."""
    k = min(np.unique(y, return_counts=True)[1]) if len(y) else 0
    if k < 2:
        return DEFAULT_C
    folds = stratified_folds(y, min(FOLDS, k), seed)
    classes, codes = np.unique(y, return_inverse=True)
    x = np.asarray(x, dtype=np.float64)
    scores = []
    for C in C_GRID:
        fold_scores = []
        for fit, held in folds:  # every class is in every fold's training part (stratified, k >= folds)
            w = fit_logistic(x[fit], codes[fit], len(classes), C)
            fold_scores.append(balanced_accuracy(codes[held], _predict_codes(w, x[held])))
        scores.append(np.mean(fold_scores))
    return float(C_GRID[int(np.argmax(scores))])  # argmax takes the first (smallest C) of equal scores


def linear_probe_classifier(x: np.ndarray, y: np.ndarray, classes: np.ndarray,
                            seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """([C, D] weights, [C] biases) of a logistic regression fitted on (x, y), C chosen on (x, y) only;
    the class of an item is the argmax of ``weights @ x + biases``."""
    from threadpoolctl import threadpool_limits

    x = np.asarray(x, dtype=np.float64)
    labels, codes = np.unique(y, return_inverse=True)
    assert list(labels) == list(classes)
    # small fits are dominated by BLAS thread start-up (15x slower on a busy 2-core machine): one thread
    with threadpool_limits(1 if x.size < SMALL_FIT else None):
        w = fit_logistic(x, codes, len(classes), select_c(x, y, seed))
    if len(classes) == 2:  # one decision function: class 1 when w.x + b > 0
        return (np.vstack([np.zeros(x.shape[1]), w[0, :-1]]).astype(np.float32),
                np.array([0.0, w[0, -1]], dtype=np.float32))
    return w[:, :-1].astype(np.float32), w[:, -1].astype(np.float32)
