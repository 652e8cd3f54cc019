"""Cross-modal retrieval metrics (CONCH, Lu et al., Nature Medicine 2024): Recall@K both ways.

Recall@K is the fraction of queries with a correct item among the top K; with several correct items (an
image with several captions, a caption shared by the panels of one figure, a case's several slides) a query
is a hit when any of them is in the top K. Ties count against the query (a correct item ranks below every
wrong item with the same score), so a model that scores everything equal gets no free hits. ``mean_recall``
is the mean of the six Recall@{1,5,10} values. 95% CIs: 1,000 seeded bootstrap resamples of the queries,
the two directions resampled independently.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pathboard.core.science.metrics import N_BOOT, SEED, Metric, bootstrap_indices, estimate, normalised

KS = (1, 5, 10)
CHUNK = 1024


def first_hit_ranks(queries: np.ndarray, gallery: np.ndarray, positives: Sequence[Sequence[int]]) -> np.ndarray:
    """0-based rank of the best-ranked correct gallery item for each query: the number of wrong items
    scoring at least as high as it (cosine similarity). ``positives[q]`` lists the correct gallery rows."""
    queries, gallery = normalised(queries), normalised(gallery)
    ranks = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), CHUNK):
        sim = queries[start : start + CHUNK] @ gallery.T
        correct = np.zeros(sim.shape, dtype=bool)
        for i, pos in enumerate(positives[start : start + CHUNK]):
            if len(pos) == 0:
                raise ValueError(f"query {start + i} has no correct item")
            correct[i, list(pos)] = True
        best = np.where(correct, sim, -np.inf).max(axis=1)
        ranks[start : start + CHUNK] = ((sim >= best[:, None]) & ~correct).sum(axis=1)
    return ranks


def _recall_samples(ranks: np.ndarray, ks, n_boot: int, seed: int) -> np.ndarray:
    """[n_boot, len(ks)] Recall@K of each bootstrap resample of the queries."""
    hits = (ranks[:, None] < np.asarray(ks)[None, :]).astype(np.float64)
    return np.concatenate([hits[idx].mean(axis=1) for idx in bootstrap_indices(len(ranks), n_boot, seed)])


def retrieval_metrics(i2t_ranks: np.ndarray, t2i_ranks: np.ndarray, ks=KS, n_boot: int = N_BOOT,
                      seed: int = SEED) -> list[Metric]:
    """Recall@K both ways and their mean, with 95% bootstrap CIs over queries."""
    i2t_ranks, t2i_ranks = np.asarray(i2t_ranks), np.asarray(t2i_ranks)
    values, samples = {}, {}
    for direction, ranks, s in (("i2t", i2t_ranks, seed), ("t2i", t2i_ranks, seed + 1)):
        boot = _recall_samples(ranks, ks, n_boot, s)
        for j, k in enumerate(ks):
            values[f"{direction}_recall@{k}"] = float(np.mean(ranks < k))
            samples[f"{direction}_recall@{k}"] = boot[:, j]
    values["mean_recall"] = float(np.mean(list(values.values())))
    samples["mean_recall"] = np.mean(np.stack(list(samples.values())), axis=0)
    n = {"i2t": len(i2t_ranks), "t2i": len(t2i_ranks), "mean": len(i2t_ranks)}
    return [estimate(name, value, samples[name], n[name.split("_")[0]]) for name, value in values.items()]


def pairs_index(captions: list[list[str]], valid: np.ndarray) -> tuple[list[str], list[list[int]], list[list[int]]]:
    """Distinct captions (first-seen order), each readable image's caption rows, and each caption's
    readable image rows (indices into the readable images)."""
    texts: dict[str, int] = {}
    image_rows = np.flatnonzero(valid)
    img_pos: list[list[int]] = []
    for i in image_rows:
        img_pos.append([texts.setdefault(c, len(texts)) for c in captions[i]])
    for i in np.flatnonzero(~valid):  # unreadable images: their captions stay in the gallery as distractors
        for c in captions[i]:
            texts.setdefault(c, len(texts))
    txt_pos: list[list[int]] = [[] for _ in texts]
    for row, pos in enumerate(img_pos):
        for t in pos:
            txt_pos[t].append(row)
    return list(texts), img_pos, txt_pos
