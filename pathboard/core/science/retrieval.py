"""Cross-modal retrieval metrics (CONCH, Lu et al., Nature Medicine 2024): Recall@K both ways.

Recall@K is the fraction of queries with a correct item among the top K; with several correct items (an
image with several captions, a case's several slides) a query is a hit when any of them is in the top K.
Items of equal score are taken in a random order, in expectation (:func:`hit_rates`): identical captions of
two images tie exactly, and a model that scores everything equal gets chance, not a free hit.
(:func:`first_hit_ranks` counts ties against the query: the lower bound.) ``mean_recall`` is the mean of
the six Recall@{1,5,10} values.

Captions follow CLIP_benchmark's convention (``clip_benchmark.metrics.zeroshot_retrieval``), which the
papers that used it published: every (image, caption) pair is a text of its own, and a text's only correct
image is its own, even when another image has the same caption (:func:`caption_pairs`). pathboard's
earlier convention, each distinct caption once and correct for every image that has it
(:func:`pairs_index`), reads higher with shared captions; the retrieval task keeps it as a variant.
``tests/core/science/test_retrieval.py`` checks the Recall@K against CLIP_benchmark's own ``recall_at_k``.

95% CIs: 1,000 seeded bootstrap resamples of the queries, or of their ``groups`` (the slides of one case,
the figures of one article) when given, the two directions resampled independently.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pathboard.core.science.metrics import N_BOOT, SEED, Metric, bootstrap_counts, estimate, normalised, units_of

KS = (1, 5, 10)
CHUNK = 1024


def _chunks(queries: np.ndarray, gallery: np.ndarray, positives: Sequence[Sequence[int]]):
    """(first query, [q, G] cosine similarities, [q, G] correct-item mask, [q, 1] best correct score) per
    chunk of CHUNK queries."""
    queries, gallery = normalised(queries), normalised(gallery)
    for start in range(0, len(queries), CHUNK):
        sim = queries[start : start + CHUNK] @ gallery.T
        correct = np.zeros(sim.shape, dtype=bool)
        for i, pos in enumerate(positives[start : start + CHUNK]):
            if len(pos) == 0:
                raise ValueError(f"query {start + i} has no correct item")
            correct[i, list(pos)] = True
        yield start, sim, correct, np.where(correct, sim, -np.inf).max(axis=1)[:, None]


def first_hit_ranks(queries: np.ndarray, gallery: np.ndarray, positives: Sequence[Sequence[int]]) -> np.ndarray:
    """0-based rank of the best-ranked correct gallery item for each query: the number of wrong items
    scoring at least as high as it (cosine similarity). ``positives[q]`` lists the correct gallery rows."""
    ranks = np.empty(len(queries), dtype=np.int64)
    for start, sim, correct, best in _chunks(queries, gallery, positives):
        ranks[start : start + len(sim)] = ((sim >= best) & ~correct).sum(axis=1)
    return ranks


def hit_rates(queries: np.ndarray, gallery: np.ndarray, positives: Sequence[Sequence[int]], ks=KS) -> np.ndarray:
    """[queries, len(ks)] the probability that a correct gallery item is among the top K of each query when
    items of equal score are put in a random order: 1 or 0 where no tie reaches the K-th place. Identical
    texts (one caption given to two images, embedded twice) tie exactly; CLIP_benchmark leaves their order to
    ``torch.topk``, which is arbitrary, and this is its expectation. A model that scores everything equal gets
    chance, K / gallery size, not a free hit."""
    out = np.empty((len(queries), len(ks)), dtype=np.float64)
    for start, sim, correct, best in _chunks(queries, gallery, positives):
        above = ((sim > best) & ~correct).sum(axis=1)  # wrong items strictly above the best correct one
        tied_wrong = ((sim == best) & ~correct).sum(axis=1)
        tied_right = ((sim == best) & correct).sum(axis=1)
        for j, k in enumerate(ks):
            out[start : start + len(sim), j] = _hit_chance(int(k) - above, tied_wrong, tied_right)
    return out


def _hit_chance(room: np.ndarray, wrong: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Per query, P(a correct item takes one of the first ``room`` places of a random order of ``wrong`` wrong
    and ``right`` correct tied items) = 1 - P(the first ``room`` are all wrong): 0 without room, 1 when the
    room outnumbers the wrong items; one product factor per place, over every query at once."""
    all_wrong = np.ones(len(room))
    for i in range(int(room.max(initial=0))):  # room <= K: a few steps, never a loop over queries
        step = (i < room) & (i < wrong)
        all_wrong[step] *= (wrong[step] - i) / (wrong[step] + right[step] - i)
    return np.where(room <= 0, 0.0, np.where(room > wrong, 1.0, 1.0 - all_wrong))


def _hits(ranks: np.ndarray, ks) -> np.ndarray:
    """[queries, len(ks)] hits: a hit-rate matrix (:func:`hit_rates`) as it is, or ranks (:func:`first_hit_ranks`,
    ties counted against the query) compared with each K."""
    ranks = np.asarray(ranks)
    if ranks.ndim == 2:
        return ranks.astype(np.float64)
    return (ranks[:, None] < np.asarray(ks)[None, :]).astype(np.float64)


def _recall_samples(hits: np.ndarray, n_boot: int, seed: int, groups=None) -> np.ndarray:
    """[n_boot, len(ks)] Recall@K of each bootstrap resample of the queries' ``hits`` [queries, len(ks)] (of
    their groups when given)."""
    return np.concatenate([np.empty((0, hits.shape[1]))] + [(counts @ hits) / counts.sum(axis=1, keepdims=True)
                          for counts in bootstrap_counts(len(hits), n_boot, seed, groups=groups)])


def retrieval_metrics(i2t_ranks: np.ndarray, t2i_ranks: np.ndarray, ks=KS, n_boot: int = N_BOOT,
                      seed: int = SEED, i2t_groups=None, t2i_groups=None) -> list[Metric]:
    """Recall@K both ways and their mean, with 95% bootstrap CIs over queries, or over the queries' groups
    (``i2t_groups``, ``t2i_groups``: one label per query) where they have them: a case's several slides are
    not independent queries. Each direction is the queries' ranks (:func:`first_hit_ranks`) or their hit
    rates at ``ks`` (:func:`hit_rates`)."""
    i2t_ranks, t2i_ranks = np.asarray(i2t_ranks), np.asarray(t2i_ranks)
    values, samples, units = {}, {}, {}
    for direction, ranks, s, groups in (("i2t", i2t_ranks, seed, i2t_groups), ("t2i", t2i_ranks, seed + 1,
                                                                                t2i_groups)):
        hits = _hits(ranks, ks)
        boot = _recall_samples(hits, n_boot, s, groups)
        units[direction] = units_of(len(ranks), groups)
        for j, k in enumerate(ks):
            values[f"{direction}_recall@{k}"] = float(hits[:, j].mean())
            samples[f"{direction}_recall@{k}"] = boot[:, j]
    values["mean_recall"] = float(np.mean(list(values.values())))
    samples["mean_recall"] = np.mean(np.stack(list(samples.values())), axis=0)
    units["mean"] = min(units["i2t"], units["t2i"])
    n = {"i2t": len(i2t_ranks), "t2i": len(t2i_ranks), "mean": len(i2t_ranks)}
    return [estimate(name, value, samples[name], n[name.split("_")[0]], units[name.split("_")[0]])
            for name, value in values.items()]


def caption_pairs(captions: list[list[str]], valid: np.ndarray) -> tuple[list[str], list[int], list[list[int]]]:
    """CLIP_benchmark's texts: one per (image, caption) pair, readable images first in order, then the
    captions of unreadable images (distractors only); each readable pair's image row (into the readable
    images; -1 for a distractor), and each readable image's pair rows."""
    texts: list[str] = []
    image_of: list[int] = []
    pairs: list[list[int]] = []
    for row, i in enumerate(np.flatnonzero(valid)):
        pairs.append(list(range(len(texts), len(texts) + len(captions[i]))))
        texts += list(captions[i])
        image_of += [row] * len(captions[i])
    for i in np.flatnonzero(~valid):
        texts += list(captions[i])
        image_of += [-1] * len(captions[i])
    return texts, image_of, pairs


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
