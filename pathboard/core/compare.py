"""Paired bootstrap comparisons between models scored on the same items.

Two models' predictions on one dataset, task, variant and prompt mode are resampled with the
*same* bootstrap indices (``metrics.bootstrap_indices`` depends only on n and the seed), and the
difference of each metric is summarised by its point value and 95% CI. A CI that excludes zero
marks a significant win. Results go to the ``comparisons`` table; the leaderboard reads them.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np

from pathboard.core.metrics import (
    N_BOOT,
    SEED,
    bootstrap_indices,
    confusion_matrices,
    percentile_ci,
    scores_from_confusion,
)

METRICS = ("balanced_accuracy", "weighted_f1", "cohen_kappa", "quadratic_kappa", "accuracy")


def paired_difference(y_true, pred_a, pred_b, k: int, ordinal: bool, n_boot: int = N_BOOT, seed: int = SEED):
    """metric -> (A - B, ci_low, ci_high) over shared resamples of the items."""
    y_true, pred_a, pred_b = (np.asarray(x, dtype=np.int64) for x in (y_true, pred_a, pred_b))
    present = np.unique(y_true)
    everything = np.arange(len(y_true))[None]
    point = {}
    for name in METRICS:
        if name == "quadratic_kappa" and not ordinal:
            continue
        a = scores_from_confusion(confusion_matrices(y_true, pred_a, k, everything), present, ordinal)[name][0]
        b = scores_from_confusion(confusion_matrices(y_true, pred_b, k, everything), present, ordinal)[name][0]
        point[name] = a - b
    diffs = {name: [] for name in point}
    for idx in bootstrap_indices(len(y_true), n_boot, seed):
        sa = scores_from_confusion(confusion_matrices(y_true, pred_a, k, idx), present, ordinal)
        sb = scores_from_confusion(confusion_matrices(y_true, pred_b, k, idx), present, ordinal)
        for name in point:
            diffs[name].append(sa[name] - sb[name])
    out = {}
    for name, value in point.items():
        out[name] = (float(value), *percentile_ci(np.concatenate(diffs[name])))
    return out


def paired_items(a, b) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(y_true, pred_a, pred_b) on the items both cells scored, in A's order; None when they share no
    item or disagree on an item's truth. Cells stored without item ids pair only when their y_true
    vectors are equal (the rule before item ids were stored)."""
    items_a, items_b = a["items"], b["items"]
    if items_a is None or items_b is None or len(items_a) == 0 or len(items_b) == 0:
        if list(a.y_true) != list(b.y_true):
            return None
        return np.asarray(a.y_true), np.asarray(a.y_pred), np.asarray(b.y_pred)
    where_b = {item: i for i, item in enumerate(items_b)}
    rows_a = [i for i, item in enumerate(items_a) if item in where_b]
    if not rows_a:
        return None
    rows_b = [where_b[items_a[i]] for i in rows_a]
    y_true = np.asarray(a.y_true)[rows_a]
    if not np.array_equal(y_true, np.asarray(b.y_true)[rows_b]):
        return None
    return y_true, np.asarray(a.y_pred)[rows_a], np.asarray(b.y_pred)[rows_b]


def compare_latest(store) -> int:
    """Compare every pair of models whose latest cells share dataset, task, variant, prompt mode and
    protocol, on the items both scored (by item id); replace the stored comparisons. Returns how many
    rows were stored."""
    cells = store.query("""
        SELECT c.cell_id, c.model, c.dataset, c.task, c.variant, coalesce(c.prompt_mode, '') AS prompt_mode,
               coalesce(c.protocol_hash, '') AS protocol_hash, p.y_true, p.y_pred, p.n_classes, p.ordinal, p.items
        FROM cells c JOIN predictions p USING (cell_id)
        QUALIFY row_number() OVER (PARTITION BY c.model, c.dataset, c.task, c.variant, coalesce(c.prompt_mode, ''),
                                                coalesce(c.protocol_hash, '') ORDER BY c.created_at DESC) = 1""")
    rows = []
    for _, group in cells.groupby(["dataset", "task", "variant", "prompt_mode", "protocol_hash"]):
        for (_, a), (_, b) in combinations(group.sort_values("model").iterrows(), 2):
            paired = paired_items(a, b)
            if paired is None:
                continue  # no item in common: nothing to pair
            y_true, pred_a, pred_b = paired
            for metric, (diff, low, high) in paired_difference(y_true, pred_a, pred_b, int(a.n_classes),
                                                               bool(a.ordinal)).items():
                rows.append([a.cell_id, b.cell_id, a.model, b.model, a.dataset, a.task, a.variant, a.prompt_mode,
                             metric, diff, low, high, len(y_true), bool(low > 0 or high < 0)])
    store.replace_comparisons(rows)
    return len(rows)
