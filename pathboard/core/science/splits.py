"""Which items a task evaluates, and how it splits the rest into a training pool: one rule for every task.

**Groups** come from one place, the Record meta ``"group"`` of each item: the patient for slides (TCGA:
the case barcode; GTEx: the donor; EBRAINS: ``pat_id``), the slide or case for patches where the name
carries it, a near-duplicate cluster for LC25000. An item without a group is its own group. Intervals
resample groups (a cluster bootstrap) and splits never put one group on both sides.

**Evaluated items** (:func:`evaluated_items`): labelled, and in the dataset's ``eval_split``; a dataset
without one evaluates every labelled item outside its ``"train"`` split (every labelled item when all are
``"train"``). Zero-shot and few-shot therefore score the same items.

**Training pool** of a dataset with its own ``"train"`` split (:func:`official_split`): its labelled
``"train"`` items, less any whose group also has an evaluated item. Without one, :func:`group_hash_split`
splits the evaluated items 50/50 by group: each group counts under its most frequent class (ties: the
smaller class index), and within each class the groups ordered by sha256("<dataset id>\\n<group>") train in
their first half (rounded down); the rest are evaluated.
"""
from __future__ import annotations

import hashlib

import numpy as np

TRAIN = "train"
#: how :func:`group_hash_split` splits, for a cell's protocol
HASH_SPLIT_RULE = "50/50 by group (sha256 of dataset id and group), stratified by each group's majority class"


def _rows(paths: list[str], rows) -> np.ndarray:
    """Row indices of ``rows``: a boolean mask, row indices, or item paths."""
    rows = list(rows) if not isinstance(rows, np.ndarray) else rows
    if len(rows) and isinstance(rows[0], str):
        where = {p: i for i, p in enumerate(paths)}
        return np.asarray([where[r] for r in rows], dtype=np.int64)
    rows = np.asarray(rows)
    return np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64)


def item_groups(manifest, rows=None) -> np.ndarray | None:
    """The groups (Record meta ``"group"``) of the manifest ``rows`` (a boolean mask, row indices or item
    paths; every row when None), as strings in that order; None when none of them has a group. An item
    without a group is its own group (``"item:<path>"``)."""
    paths = manifest.paths
    index = np.arange(len(paths)) if rows is None else _rows(paths, rows)
    meta = manifest.meta if len(getattr(manifest, "meta", None) or []) == len(paths) else [{}] * len(paths)
    found = [meta[i].get("group") for i in index]
    if not any(g not in (None, "") for g in found):
        return None
    return np.asarray([str(g) if g not in (None, "") else f"item:{paths[i]}" for g, i in zip(found, index)])


def _split_names(manifest) -> np.ndarray:
    return np.array([s or "" for s in manifest.splits], dtype=object)


def evaluated_items(dataset, manifest) -> np.ndarray:
    """Boolean mask of the rows every task evaluates: labelled, and in the dataset's ``eval_split``; without
    one, every labelled row outside ``"train"`` (every labelled row when all of them are ``"train"``)."""
    labelled = np.asarray(manifest.labels) >= 0
    splits = _split_names(manifest)
    split = getattr(dataset, "eval_split", None)
    if split is not None:
        return labelled & (splits == split)
    outside = labelled & (splits != TRAIN)
    return outside if outside.any() else labelled


def official_split(dataset, manifest) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(training rows, evaluated rows, training rows left out) of a dataset that has its own labelled
    ``"train"`` items and something else to evaluate; None otherwise. Training items whose group also has an
    evaluated item are left out of the pool, so the two sides never share a group."""
    labelled = np.asarray(manifest.labels) >= 0
    train = labelled & (_split_names(manifest) == TRAIN)
    evaluated = evaluated_items(dataset, manifest) & ~train
    if not train.any() or not evaluated.any():
        return None
    groups = item_groups(manifest)
    if groups is None:
        return train, evaluated, 0
    tested = set(groups[evaluated])
    shared = train & np.isin(groups, list(tested))
    return train & ~shared, evaluated, int(shared.sum())


def group_hash_split(dataset_id: str, manifest, candidates: np.ndarray) -> np.ndarray:
    """Boolean training mask over the ``candidates`` rows, whole groups at a time (see the module docstring);
    the candidates not in it are evaluated."""
    labels = np.asarray(manifest.labels)
    groups = item_groups(manifest)
    keys = groups if groups is not None else np.asarray(manifest.paths, dtype=object)
    members: dict[str, list[int]] = {}
    for i in np.flatnonzero(candidates):
        members.setdefault(str(keys[i]), []).append(int(i))
    by_class: dict[int, list[str]] = {}
    for key, rows in members.items():
        values, counts = np.unique(labels[rows], return_counts=True)
        by_class.setdefault(int(values[counts.argmax()]), []).append(key)  # ties: the smaller class
    train = np.zeros(len(labels), dtype=bool)
    for c in sorted(by_class):
        order = sorted(by_class[c], key=lambda g: hashlib.sha256(f"{dataset_id}\n{g}".encode()).digest())
        for key in order[: len(order) // 2]:
            train[members[key]] = True
    return train


def split_rule(manifest) -> str:
    """How :func:`group_hash_split` splits this manifest, for a cell's protocol."""
    return HASH_SPLIT_RULE if item_groups(manifest) is not None else \
        "50/50 by item (sha256 of dataset id and path), stratified by class"
