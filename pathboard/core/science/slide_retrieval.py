"""Slide-to-slide retrieval by label (TITAN, Ding et al. 2024): does a slide's neighbourhood share its diagnosis?

Each query slide ranks the gallery's slides by cosine similarity of their embeddings (ties: gallery order).
Over the K most similar (K = 1, 3, 5, as TITAN reports):

- ``acc@K``: at least one of them has the query's label;
- ``mvacc@K``: their majority label is the query's (a tie goes to the tied label ranked highest).

Slides of the query's own patient are never retrieved (``exclude``): a patient's other slides would make the
task one of recognising the patient. Each metric is the mean over queries with a 95% bootstrap CI on
:func:`~pathboard.core.science.metrics.mean_metric`'s resamples (of patients, when ``groups`` are given).
"""
from __future__ import annotations

import numpy as np

from pathboard.core.science.metrics import Metric, mean_metric

KS = (1, 3, 5)


def top_labels(queries: np.ndarray, gallery: np.ndarray, labels: np.ndarray, k: int,
               exclude: np.ndarray | None = None) -> np.ndarray:
    """[Q, k] labels of each query's k most similar gallery slides, most similar first (-1 where the gallery,
    less the excluded slides, holds fewer than k)."""
    sim = np.asarray(queries, dtype=np.float32) @ np.asarray(gallery, dtype=np.float32).T
    if exclude is not None:
        sim = np.where(exclude, -np.inf, sim)
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    out = np.asarray(labels)[order]
    taken = np.take_along_axis(sim, order, axis=1)
    return np.where(np.isfinite(taken), out, -1)


def majority(top: np.ndarray) -> np.ndarray:
    """[Q]: each row's most frequent label (>= 0); a tie goes to the tied label ranked first; -1 for none."""
    out = np.full(len(top), -1, dtype=np.int64)
    for q, row in enumerate(top):
        row = row[row >= 0]
        if len(row):
            values, first, counts = np.unique(row, return_index=True, return_counts=True)
            best = counts == counts.max()
            out[q] = values[best][np.argmin(first[best])]
    return out


def slide_retrieval_metrics(queries, query_labels, gallery, gallery_labels, exclude=None, ks=KS,
                            groups=None) -> list[Metric]:
    """``acc@K`` and ``mvacc@K`` for every K in ``ks`` (see the module)."""
    truth = np.asarray(query_labels)
    top = top_labels(queries, gallery, gallery_labels, max(ks), exclude)
    out = []
    for k in ks:
        out.append(mean_metric(f"acc@{k}", (top[:, :k] == truth[:, None]).any(axis=1), groups=groups))
    for k in ks:
        out.append(mean_metric(f"mvacc@{k}", majority(top[:, :k]) == truth, groups=groups))
    return out
