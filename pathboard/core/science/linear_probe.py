"""The few-shot linear probe: an L2-regularised logistic regression on frozen embeddings (CONCH's
linear-probe protocol: scikit-learn's LogisticRegression objective, solved to a tighter tolerance, see below).

Its inverse regularisation C is chosen by stratified cross-validation *within the support set* (min(5, k)
folds, balanced accuracy, grid :data:`C_GRID`, ties to the smaller C); with one item per class there is
nothing to cross-validate and C = :data:`DEFAULT_C` (scikit-learn's default). Test items are never seen
before prediction. Fits run in float64 whatever the embeddings' dtype: scikit-learn 1.9 fits float32
input in float32, so the numbers would otherwise depend on the installed release.

The cross-validation's fits (6 C x up to 5 folds per support set, ~540 per few-shot cell) minimise scikit-learn's own
objective (the mean log loss plus ``||W||^2 / (2 C n)``) until every gradient entry is at most 1e-6, all of a support
set (and the whole set at every C, for the final fit) in one batched, preconditioned L-BFGS run
(:mod:`pathboard.core.science.logistic`): one SciPy L-BFGS-B run per fit spent more time in SciPy's wrappers than in
the arithmetic. A pool too large for one run (k = all) runs each fold's problems on that fold's items, and fits the
whole set at the chosen C only. scikit-learn stops at 1e-4, where a large-C fit on a separable support set can stop
far from the flat optimum, at a point that depends on the optimiser's path; at 1e-6 they land much nearer the
minimiser. The folds are scikit-learn's ``StratifiedKFold(shuffle=True)`` folds (:func:`stratified_folds`, the same
assignment): a few-shot run on cached embeddings imports neither scikit-learn nor SciPy's optimisers
(``benchmarks/fewshot_cost.py``).
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from pathboard.core.science.logistic import MAX_ITER, ConvergenceWarning, fit_logistic, fit_logistic_many, one_run
from pathboard.core.science.metrics import SEED

C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
DEFAULT_C = 1.0
FOLDS = 5
#: support-set entries (items x dims) below which fits run on one BLAS thread
SMALL_FIT = 2_000_000


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
    return cross_validated(x, y, seed)[0]


def cross_validated(x: np.ndarray, y: np.ndarray, seed: int = SEED) -> tuple[float, np.ndarray]:
    """(C chosen by :func:`select_c`'s cross-validation, :func:`fit_logistic`'s weights on all of (x, y) at that
    C). Where everything shares one solver run, the whole set is fitted at every C in the folds' run, which costs
    little more than the folds alone (the run lasts as long as its slowest problem) and spares a run of its own
    afterwards; where it cannot (a large pool: the runs then cost what their problems do), at the chosen C only."""
    x = np.asarray(x, dtype=np.float64)
    classes, codes = np.unique(y, return_inverse=True)
    k = int(np.bincount(codes).min()) if len(y) else 0
    if k < 2:
        return DEFAULT_C, fit_logistic(x, codes, len(classes), DEFAULT_C)
    folds = stratified_folds(y, min(FOLDS, k), seed)
    problems = [(fit, C) for C in C_GRID for fit, _ in folds]  # every class is in every fit part (stratified)
    whole = [(np.arange(len(x)), C) for C in C_GRID]
    together = one_run(len(x), x.shape[1], len(classes), len(problems) + len(whole))
    fits = fit_logistic_many(x, codes, len(classes), problems + whole if together else problems)
    scores = [np.mean([balanced_accuracy(codes[held], _predict_codes(fits[c * len(folds) + f], x[held]))
                       for f, (_, held) in enumerate(folds)]) for c in range(len(C_GRID))]
    best = int(np.argmax(scores))  # argmax takes the first (smallest C) of equal scores
    if together:
        return float(C_GRID[best]), fits[len(problems) + best]
    # a pool too large to share one run (k = all): runs cost what their problems do, so only the chosen C
    return float(C_GRID[best]), fit_logistic(x, codes, len(classes), C_GRID[best])


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
        w = cross_validated(x, y, seed)[1]
    if len(classes) == 2:  # one decision function: class 1 when w.x + b > 0
        return (np.vstack([np.zeros(x.shape[1]), w[0, :-1]]).astype(np.float32),
                np.array([0.0, w[0, -1]], dtype=np.float32))
    return w[:, :-1].astype(np.float32), w[:, -1].astype(np.float32)


@contextmanager
def probe_convergence() -> Iterator[list[int]]:
    """[fits that stopped before converging] of the probes fitted inside, filled when the block ends: the solver's
    :class:`ConvergenceWarning` s, counted for the cell's notes instead of printed. Other warnings pass."""
    stopped = [0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield stopped
    for w in caught:
        if isinstance(w.message, ConvergenceWarning):
            stopped[0] += w.message.stopped
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def convergence_note(task: str, dataset: str, stopped: int) -> list[str]:
    """The cell's note about probe fits that stopped before converging (none when all converged)."""
    if not stopped:
        return []
    return [f"{task} on {dataset}: {stopped} linear-probe fit(s) stopped before converging ({MAX_ITER:,} iterations, "
            "or no step satisfied the line search); a C chosen from them may differ from the converged one"]
