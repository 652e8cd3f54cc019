"""Classification metrics with seeded bootstrap 95% confidence intervals.

Point estimates come from scikit-learn. The bootstrap recomputes the same formulas from one
confusion matrix per resample, vectorised, so 1,000 resamples cost milliseconds rather than
1,000 scikit-learn calls per metric; ``tests/test_metrics.py`` checks both agree with scikit-learn.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

N_BOOT = 1000
SEED = 0


@dataclass(frozen=True)
class Metric:
    name: str
    value: float
    ci_low: float
    ci_high: float
    n: int


def percentile_ci(samples) -> tuple[float, float]:
    """The 95% percentile interval of bootstrap ``samples``, ignoring NaN/inf (NaNs when none is finite)."""
    samples = np.asarray(samples, dtype=np.float64).ravel()
    samples = samples[np.isfinite(samples)]
    if not len(samples):
        return float("nan"), float("nan")
    low, high = np.percentile(samples, [2.5, 97.5])
    return float(low), float(high)


def normalised(x) -> np.ndarray:
    """Rows scaled to unit L2 norm, as float32 (all-zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _class_label(name: str, class_names: list[str]) -> str:
    """``recall/<index>`` -> ``recall/<class name>``; other names unchanged."""
    return f"recall/{class_names[int(name.split('/')[1])]}" if name.startswith("recall/") else name


def bootstrap_indices(n: int, n_boot: int = N_BOOT, seed: int = SEED, chunk: int = 100) -> Iterator[np.ndarray]:
    """Resample indices, ``chunk`` resamples at a time. The same (n, seed) gives the same resamples,
    so two models scored on one dataset share them (paired comparisons)."""
    rng = np.random.default_rng(seed)
    chunk = max(1, min(chunk, 10_000_000 // max(n, 1)))
    for start in range(0, n_boot, chunk):
        yield rng.integers(0, n, size=(min(chunk, n_boot - start), n))


def confusion_matrices(y_true: np.ndarray, y_pred: np.ndarray, k: int, idx: np.ndarray) -> np.ndarray:
    """[B, k, k] confusion matrices (rows true, columns predicted) of the resamples in ``idx``."""
    b = idx.shape[0]
    codes = y_true[idx] * k + y_pred[idx] + (np.arange(b) * k * k)[:, None]
    return np.bincount(codes.ravel(), minlength=b * k * k).reshape(b, k, k)


def scores_from_confusion(cm: np.ndarray, present: np.ndarray, ordinal: bool) -> dict[str, np.ndarray]:
    """The metrics of each [.., k, k] confusion matrix, matching scikit-learn's definitions."""
    cm = cm.astype(np.float64)
    k = cm.shape[-1]
    n = cm.sum(axis=(-2, -1))
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support, predicted = cm.sum(axis=-1), cm.sum(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, tp / support, np.nan)
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), 0.0)
        out = {
            "accuracy": tp.sum(-1) / n,
            "balanced_accuracy": np.nanmean(recall, axis=-1),
            "weighted_f1": (f1[..., present] * support[..., present]).sum(-1) / support[..., present].sum(-1),
        }
        expected = support[..., :, None] * predicted[..., None, :] / n[..., None, None]
        ii, jj = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
        weights = {"cohen_kappa": (ii != jj).astype(float)}
        if ordinal:
            weights["quadratic_kappa"] = (ii - jj) ** 2.0
        for name, w in weights.items():
            out[name] = 1 - (w * cm).sum((-2, -1)) / (w * expected).sum((-2, -1))
        for c in present:
            out[f"recall/{c}"] = recall[..., c]
    return out


def classification_metrics(y_true, y_pred, class_names: list[str], ordinal: bool = False,
                           n_boot: int = N_BOOT, seed: int = SEED) -> list[Metric]:
    """All metrics for labels/predictions indexing ``class_names`` (every candidate class)."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, cohen_kappa_score, f1_score, recall_score

    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    k, n = len(class_names), len(y_true)
    labels = np.arange(k)
    present = np.unique(y_true)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # predictions of classes absent from y_true are simply wrong
        point = {
            "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
            "weighted_f1": f1_score(y_true, y_pred, labels=present, average="weighted", zero_division=0),
            "cohen_kappa": cohen_kappa_score(y_true, y_pred, labels=labels),
            "accuracy": accuracy_score(y_true, y_pred),
        }
        if ordinal:
            point["quadratic_kappa"] = cohen_kappa_score(y_true, y_pred, labels=labels, weights="quadratic")
        for c, r in zip(present, recall_score(y_true, y_pred, labels=present, average=None, zero_division=0)):
            point[f"recall/{c}"] = r
    boot = {name: [] for name in point}
    for idx in bootstrap_indices(n, n_boot, seed):
        for name, values in scores_from_confusion(confusion_matrices(y_true, y_pred, k, idx), present, ordinal).items():
            boot[name].append(values)
    return [Metric(_class_label(name, class_names), float(value), *percentile_ci(np.concatenate(boot[name])), n)
            for name, value in point.items()]


def median_metrics(y_true, preds: list[np.ndarray], class_names: list[str], ordinal: bool = False,
                   n_boot: int = N_BOOT, seed: int = SEED) -> list[Metric]:
    """Per metric, the median over several prediction vectors (e.g. few-shot draws), with a 95%
    bootstrap CI of that median (every vector rescored on the same resamples of the items, the median
    taken per resample)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    preds = [np.asarray(p, dtype=np.int64) for p in preds]
    k, n, present = len(class_names), len(y_true), np.unique(y_true)

    def scored(idx):  # name -> [draws, resamples]
        draws = [scores_from_confusion(confusion_matrices(y_true, p, k, idx), present, ordinal) for p in preds]
        return {name: np.stack([d[name] for d in draws]) for name in draws[0]}

    point = scored(np.arange(n)[None, :])
    boot: dict[str, list] = {name: [] for name in point}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # all-NaN medians (a class absent from a resample)
        for idx in bootstrap_indices(n, n_boot, seed):
            for name, values in scored(idx).items():
                boot[name].append(np.nanmedian(values, axis=0))
    return [Metric(_class_label(name, class_names), float(np.median(values[:, 0])),
                   *percentile_ci(np.concatenate(boot[name]) if boot[name] else []), n)
            for name, values in point.items()]


def iqr_metrics(draws: list[list[Metric]]) -> list[Metric]:
    """Per metric of several scorings (e.g. few-shot draws): the median, ci_low/ci_high = its 25th/75th
    percentiles (an interquartile range, not a confidence interval)."""
    out = []
    for i, first in enumerate(draws[0]):
        values = [d[i].value for d in draws]
        q25, q50, q75 = np.percentile(values, [25, 50, 75])
        out.append(Metric(first.name, float(q50), float(q25), float(q75), first.n))
    return out
