"""Paired bootstrap comparisons between models scored on the same items, Holm-corrected.

Two models' predictions on one dataset, task, variant and prompt mode are resampled with the
*same* bootstrap resamples (``metrics.bootstrap_indices`` depends only on n, the seed and the
groups), and the difference of each metric is summarised by its point value, 95% CI and a two-sided
bootstrap p-value. When the items carry groups (patient, case, slide; stored with the predictions)
the resamples draw groups, as the cells' own intervals did, since items of one group are not
independent. A leaderboard view shows many comparisons at once, so ``significant`` is decided on
Holm-adjusted p-values (:func:`compare_cells` says over which family). Results go to the
``comparisons`` table; the leaderboard reads them.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from itertools import combinations
from typing import NamedTuple

import numpy as np

from pathboard.core.science.metrics import (
    N_BOOT,
    SEED,
    Resampled,
    group_codes,
    percentile_ci,
    resampled_scores,
    resampled_scores_many,
)

METRICS = ("balanced_accuracy", "weighted_f1", "cohen_kappa", "quadratic_kappa", "accuracy")
#: family-wise error rate of the ``significant`` flags
ALPHA = 0.05


class Difference(NamedTuple):
    diff: float
    ci_low: float
    ci_high: float
    #: two-sided bootstrap p-value of "no difference"
    p_value: float


def bootstrap_p_value(diffs) -> float:
    """Two-sided p-value of a zero difference from bootstrap ``diffs``: 2 min(P(d <= 0), P(d >= 0)),
    bounded to [1/(B+1), 1] over the B finite resamples (NaN when none is finite)."""
    d = np.asarray(diffs, dtype=np.float64).ravel()
    d = d[np.isfinite(d)]
    if not len(d):
        return float("nan")
    p = 2 * min(np.mean(d <= 0), np.mean(d >= 0))
    return float(min(1.0, max(1.0 / (len(d) + 1), p)))


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input order: the i-th smallest of m p-values
    (i = 0, 1, ...) times m - i, made non-decreasing in that order (cumulative max) and clipped at 1.
    NaNs stay NaN and do not count towards m."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    out[order] = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    return out


def difference(a: Resampled, b: Resampled) -> dict[str, Difference]:
    """metric -> :class:`Difference` (A - B, CI, p-value) of two models scored on the same resamples, for the
    compared :data:`METRICS` they have."""
    out = {}
    for name in (m for m in METRICS if m in a.point):
        d = a.boot[name] - b.boot[name]
        out[name] = Difference(a.point[name] - b.point[name], *percentile_ci(d), bootstrap_p_value(d))
    return out


def paired_bootstrap(y_true, pred_a, pred_b, k: int, ordinal: bool, n_boot: int = N_BOOT, seed: int = SEED,
                     groups=None) -> dict[str, Difference]:
    """metric -> :class:`Difference` (A - B, CI, p-value) over shared resamples of the items, or of
    their ``groups`` (a cluster-paired bootstrap) when given."""
    return difference(resampled_scores(y_true, pred_a, k, ordinal, n_boot, seed, groups),
                      resampled_scores(y_true, pred_b, k, ordinal, n_boot, seed, groups))


def paired_difference(y_true, pred_a, pred_b, k: int, ordinal: bool, n_boot: int = N_BOOT, seed: int = SEED,
                      groups=None):
    """metric -> (A - B, ci_low, ci_high) over shared resamples of the items (of the ``groups`` when given)."""
    return {name: d[:3] for name, d in paired_bootstrap(y_true, pred_a, pred_b, k, ordinal, n_boot, seed,
                                                        groups).items()}


def _present(value):
    """A stored list column as an array, or None (NULL: None, NaN or pandas' NA)."""
    if value is None or np.ndim(value) == 0:
        return None
    return np.asarray(value)


def paired_rows(a, b) -> tuple[np.ndarray, np.ndarray] | None:
    """(rows of A, rows of B) holding the items both cells scored, in A's order; None when they share
    no item or disagree on an item's truth. Cells stored without item ids pair only when their y_true
    vectors are equal (the rule before item ids were stored)."""
    items_a, items_b = _present(a["items"]), _present(b["items"])
    if items_a is None or items_b is None or len(items_a) == 0 or len(items_b) == 0:
        if list(a.y_true) != list(b.y_true):
            return None
        every = np.arange(len(a.y_true))
        return every, every
    if len(items_a) == len(items_b) and np.array_equal(items_a, items_b):  # the usual case: the same items, in order
        every = np.arange(len(items_a))
        return (every, every) if np.array_equal(np.asarray(a.y_true), np.asarray(b.y_true)) else None
    where_b = {item: i for i, item in enumerate(items_b)}
    rows_a = np.asarray([i for i, item in enumerate(items_a) if item in where_b], dtype=np.int64)
    if not len(rows_a):
        return None
    rows_b = np.asarray([where_b[items_a[i]] for i in rows_a], dtype=np.int64)
    if not np.array_equal(np.asarray(a.y_true)[rows_a], np.asarray(b.y_true)[rows_b]):
        return None
    return rows_a, rows_b


def paired_groups(a, b, rows_a, rows_b) -> np.ndarray | None:
    """The groups of the paired items: A's stored groups, else B's (a cell stored before groups were,
    or by a task without them), else None (resample items)."""
    for cell, rows in ((a, rows_a), (b, rows_b)):
        groups = _present(cell.get("groups"))
        if groups is not None and len(groups) == len(cell.y_true):
            return groups[rows].astype(str)
    return None


def _digest(array: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(array).tobytes(), digest_size=16).digest()


def _key(cell, rows: np.ndarray, groups) -> tuple:
    """What a cell's resampled scores are kept under in ``scored``: the cell, its rows and their groups."""
    return cell.cell_id, _digest(rows), None if groups is None else _digest(np.asarray(groups, dtype=str))


def _scores(scored: dict, cell, rows: np.ndarray, groups) -> Resampled:
    """``cell``'s :class:`Resampled` on its ``rows`` resampled by ``groups``, computed once per ``scored``."""
    key = _key(cell, rows, groups)
    if key not in scored:
        scored[key] = resampled_scores(np.asarray(cell.y_true)[rows], np.asarray(cell.y_pred)[rows],
                                       int(cell.n_classes), bool(cell.ordinal), groups=groups)
    return scored[key]


def _score_together(scored: dict, group) -> None:
    """Fill ``scored`` for every cell of ``group`` at once where they all hold the same items in the same order,
    the same truth, classes and groups (the usual case: one dataset's models). The bootstrap's resamples are then
    drawn once for all the models instead of once a model. :func:`_scores` finds them under its own keys; the
    numbers are the same either way."""
    cells = [cell for _, cell in group.iterrows()]
    if len(cells) < 3:  # one pair: nothing to share
        return
    first, every = cells[0], np.arange(len(cells[0].y_true))
    stored = _present(first.get("groups"))
    for cell in cells[1:]:
        rows = paired_rows(first, cell)
        if rows is None or not (np.array_equal(rows[0], every) and np.array_equal(rows[1], every)):
            return
        if (cell.n_classes, cell.ordinal) != (first.n_classes, first.ordinal):
            return
        theirs = _present(cell.get("groups"))
        if (theirs is None) != (stored is None) or (stored is not None and not np.array_equal(theirs, stored)):
            return
    groups = paired_groups(first, first, every, every)
    results = resampled_scores_many(first.y_true, [cell.y_pred for cell in cells], int(first.n_classes),
                                    bool(first.ordinal), groups=groups)
    scored.update({_key(cell, every, groups): result for cell, result in zip(cells, results)})


def compare_cells(cells) -> list[list]:
    """The ``comparisons`` rows of every pair of models whose cells (one frame row each: the newest cell of a
    model, dataset, task, variant, prompt mode and protocol, with its stored predictions) share dataset, task,
    variant, prompt mode and protocol, on the items both scored (by item id), resampling their groups when
    stored.

    Each row keeps the raw two-sided bootstrap p-value (``p_value``) and its Holm adjustment
    (``p_holm``); ``significant`` is ``p_holm < 0.05``. The Holm family is one (task, variant, prompt
    mode, metric): every pair of models on every dataset and under every protocol. That is exactly
    what one leaderboard view (a task, metric and prompt mode, across the datasets) can show at once,
    so the family-wise error rate holds for whatever a reader looks at in it, including any subset of
    datasets (Holm over a superset is conservative for a subset). The protocol hash is deliberately not
    part of the family: it hashes each dataset's own prompts, so it differs between datasets and would
    shrink the family to one dataset, while the view sets the datasets side by side. Different metrics
    (and variants) are separate views, each read on its own, so each is its own family.
    """
    from tqdm.auto import tqdm

    rows, families = [], defaultdict(list)
    groups = cells.groupby(["dataset", "task", "variant", "prompt_mode", "protocol_hash"])
    for _, group in tqdm(groups, total=groups.ngroups, desc="paired comparisons", unit="cell", disable=None,
                         leave=False):
        scored: dict[tuple, Resampled] = {}  # each model's resamples once, for all its pairs on the same items
        _score_together(scored, group)
        for (_, a), (_, b) in combinations(group.sort_values("model").iterrows(), 2):
            paired = paired_rows(a, b)
            if paired is None:
                continue  # no item in common: nothing to pair
            rows_a, rows_b = paired
            y_true = np.asarray(a.y_true)[rows_a]
            groups = paired_groups(a, b, rows_a, rows_b)
            n_groups = None if groups is None else group_codes(groups)[1]
            differences = difference(_scores(scored, a, rows_a, groups), _scores(scored, b, rows_b, groups))
            for metric, d in differences.items():
                families[(a.task, a.variant, a.prompt_mode, metric)].append(len(rows))
                rows.append([a.cell_id, b.cell_id, a.model, b.model, a.dataset, a.task, a.variant, a.prompt_mode,
                             metric, d.diff, d.ci_low, d.ci_high, len(y_true), False, d.p_value, None, n_groups,
                             a.protocol_hash])
    for members in families.values():
        for i, p in zip(members, holm([rows[i][14] for i in members])):
            rows[i][15] = None if np.isnan(p) else float(p)
            rows[i][13] = bool(np.isfinite(p) and p < ALPHA)
    return rows
