"""Calibration and ranking metrics of zero-shot classification, with seeded bootstrap 95% CIs.

Probabilities are ``softmax(logit_scale * cosine)`` at the model's own learned logit scale: what the
model itself would output, not a temperature fitted afterwards. "ece" is the expected calibration
error of the top-1 confidence in 15 equal-width bins (lo, hi], the first also holding 0 (Guo et al.
2017): sum_b |B_b|/n * |acc(B_b) - conf(B_b)|. "brier" is scikit-learn's ``brier_score_loss``, the number
papers publish: with two classes the mean (p_1 - 1[y = 1])^2, in [0, 1]; with more the multi-class Brier
score (Brier 1950), the mean over items of sum_c (p_c - 1[y = c])^2, in [0, 2]. "nll" is the mean
-log p_true (p clipped at 1e-15). "auroc" is the binary AUROC of class 1 with two candidate classes, else
the unweighted macro one-vs-rest AUROC over the classes of ``y_true`` with positives and negatives (ties
count half): scikit-learn's ``roc_auc_score(multi_class="ovr", average="macro")``. CONCH's code reports
one-vs-one (``multi_class="ovo"``) instead, which differs from it with more than two classes; "auroc/<class>"
gives each class's one-vs-rest AUROC with more than two classes.
The CIs come from the very bootstrap resamples (of items, or of ``groups``) that
:mod:`pathboard.core.science.metrics` uses, each item weighted by how often a resample drew it.
"""
from __future__ import annotations

import warnings

import numpy as np

from pathboard.core.science.metrics import N_BOOT, SEED, Metric, bootstrap_counts, estimate, units_of

LOWER_IS_BETTER = frozenset({"ece", "brier", "nll"})
N_BINS = 15
EPS = 1e-15


def softmax_probs(similarities, logit_scale: float) -> np.ndarray:
    """[N, C] float64 probabilities ``softmax(logit_scale * similarities)`` over each row, computed stably."""
    z = float(logit_scale) * np.asarray(similarities, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _ranking(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """What :func:`_weighted_auc` needs of a class, once: (the negatives in ascending order of score, the positives,
    for each positive the negatives scored strictly below it, and those scored at most as high: None when no
    negative ties a positive)."""
    order = np.argsort(scores, kind="stable")
    negatives, positives = order[~positive[order]], np.flatnonzero(positive)
    ascending, at = scores[negatives], scores[positives]
    below, up_to = np.searchsorted(ascending, at, side="left"), np.searchsorted(ascending, at, side="right")
    return negatives, positives, below, None if np.array_equal(below, up_to) else up_to


def _weighted_auc(w: np.ndarray, negatives: np.ndarray, positives: np.ndarray, below: np.ndarray,
                  up_to: np.ndarray | None) -> np.ndarray:
    """[b] Mann-Whitney AUCs of items weighted by ``w`` ([b, n]: one row a resample), ranked by :func:`_ranking`:
    each positive's weight times the negative weight below it (ties count half), over the positive and the
    negative weight; NaN for a resample without positives or without negatives. The negatives' running total is
    taken once per resample and read at each positive, rather than binning each resample's weights by distinct
    score; bootstrap weights are counts, so the sums are exact and the numbers those of binning."""
    total = np.zeros((len(w), len(negatives) + 1))
    np.cumsum(np.take(w, negatives, axis=1), axis=1, out=total[:, 1:])  # weight of the k lowest-scored negatives
    pos = np.take(w, positives, axis=1)
    under = np.take(total, below, axis=1)
    if up_to is not None:
        under = 0.5 * (under + np.take(total, up_to, axis=1))
    den = pos.sum(1) * total[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, np.einsum("bi,bi->b", pos, under) / den, np.nan)


def calibration_metrics(y_true, probs, class_names: list[str], n_boot: int = N_BOOT, seed: int = SEED,
                        groups=None) -> list[Metric]:
    """"ece", "brier", "nll", "auroc" (and "auroc/<class>" with more than two classes) of [N, C]
    ``probs`` for labels ``y_true`` indexing ``class_names``, with 95% bootstrap CIs (a cluster
    bootstrap over ``groups`` when given)."""
    y = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    n, k = len(y), len(class_names)
    if p.shape != (n, k):
        raise ValueError(f"calibration_metrics: probabilities of shape {p.shape} for {n} items, {k} classes")
    rows = np.arange(n)
    conf = p.max(axis=1)
    bins = np.searchsorted(np.linspace(0, 1, N_BINS + 1)[1:-1], conf, side="left")  # (lo, hi], 0 in bin 0
    gap = np.zeros((n, N_BINS))
    gap[rows, bins] = (p.argmax(axis=1) == y) - conf  # per item: correct - confidence, in its bin
    onehot = np.zeros_like(p)
    onehot[rows, y] = 1.0
    squared = (p[:, 1] - onehot[:, 1]) ** 2 if k == 2 else ((p - onehot) ** 2).sum(1)  # as scikit-learn's
    per_item = np.stack([squared, -np.log(np.clip(p[rows, y], EPS, 1.0))], axis=1)

    # one-vs-rest AUROC: class 1 alone with two candidate classes, else every class with both outcomes
    present = [c for c in np.unique(y) if 0 < (y == c).sum() < n]
    classes = ([1] if 0 < (y == 1).sum() < n else []) if k == 2 else present
    ranked = {c: _ranking(p[:, c], y == c) for c in classes}

    def scores(w: np.ndarray) -> dict[str, np.ndarray]:  # [b, n] item weights -> metric -> [b]
        total = w.sum(1)
        brier, nll = (w @ per_item).T / total
        out = {"ece": np.abs(w @ gap).sum(1) / total, "brier": brier, "nll": nll}
        aucs = {c: _weighted_auc(w, *ranking) for c, ranking in ranked.items()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample in which no class qualifies
            out["auroc"] = np.nanmean(np.stack(list(aucs.values())), 0) if aucs else np.full(len(w), np.nan)
        if k > 2:
            out.update({f"auroc/{class_names[c]}": a for c, a in aucs.items()})
        return out

    point = scores(np.ones((1, n)))
    boot: dict[str, list] = {name: [] for name in point}
    for counts in bootstrap_counts(n, n_boot, seed, groups=groups):
        for name, values in scores(counts.astype(np.float64)).items():
            boot[name].append(values)
    units = units_of(n, groups)
    return [estimate(name, float(value[0]), np.concatenate(boot[name]) if boot[name] else [], n, units)
            for name, value in point.items()]


#: the zero-shot variant holding the reliability diagram's bins
RELIABILITY = "reliability"


def reliability_bins(y_true, probs) -> list[Metric]:
    """The reliability diagram behind the ECE: per non-empty confidence bin (the same ``N_BINS`` bins),
    ``bin=II/confidence`` (mean top-1 confidence), ``bin=II/accuracy`` (share correct) and ``bin=II/count``
    (items in the bin). ``n`` is every item scored, as for every metric. Point values: a picture, not an
    estimate with a CI."""
    y = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    conf = p.max(axis=1)
    correct = p.argmax(axis=1) == y
    bins = np.searchsorted(np.linspace(0, 1, N_BINS + 1)[1:-1], conf, side="left")
    nan = float("nan")
    out = []
    for b in np.unique(bins):
        mine = bins == b
        count = int(mine.sum())
        out += [Metric(f"bin={b:02d}/confidence", float(conf[mine].mean()), nan, nan, len(y)),
                Metric(f"bin={b:02d}/accuracy", float(correct[mine].mean()), nan, nan, len(y)),
                Metric(f"bin={b:02d}/count", float(count), nan, nan, len(y))]
    return out
