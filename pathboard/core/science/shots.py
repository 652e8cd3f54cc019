"""The k-shot protocol shared by patch and slide few-shot (CONCH's few-shot evaluation): k = 1, 2, 4, ...
labelled training items per class, each k drawn :data:`DRAWS` times from ``numpy.random.default_rng((seed,
k, draw))`` per class in class order, so the same seed gives identical draws; every classifier a draw fits
is a linear map, and all of them predict the test items in one streamed pass (:func:`predict_all`)."""
from __future__ import annotations

import dataclasses

import numpy as np

from pathboard.core.science.metrics import SEED, Metric, normalised

DRAWS = 5
#: the largest k of the curve (few-shot is at most 16 per class); "all" is a variant of its own
K_MAX = 16
CHUNK = 4096


def shot_counts(max_k: int) -> list[int]:
    """1, 2, 4, ... up to ``max_k``."""
    return [2**i for i in range(max(0, int(max_k)).bit_length())]


def fewshot_headline(method: str, k: int, draws: int, k_max: int = K_MAX, unit: str = "class") -> str:
    """What a few-shot headline is, in words, for its protocol and everywhere it is shown: the method, its
    k (and why it is below ``k_max``) and that it is the median over the draws."""
    short = f" (the smallest {unit} of the training pool holds {k})" if k < k_max else ""
    return f"{method} at k = {k} per {unit}{short}, median of {draws} draws"


def draw_support(labels: np.ndarray, classes: np.ndarray, k: int, draw: int, seed: int = SEED) -> np.ndarray:
    """Positions (into ``labels``) of k items per class of ``classes``: draw ``draw`` of shot k."""
    rng = np.random.default_rng((seed, k, draw))
    return np.concatenate([rng.choice(np.flatnonzero(labels == c), size=k, replace=False) for c in classes])


def torch_seed(seed: int, k: int, draw: int) -> int:
    """The torch seed of draw ``draw`` at shot ``k`` (numpy's SeedSequence of the same triple as the draw)."""
    return int(np.random.SeedSequence((seed, k, draw)).generate_state(1)[0])


def predict_all(embeddings, rows: np.ndarray, weights: np.ndarray, biases: np.ndarray) -> np.ndarray:
    """[M, len(rows)] class positions predicted by M linear classifiers ([M, C, D], [M, C]) for the
    L2-normalised embeddings of ``rows``, streamed in chunks."""
    m, c, d = weights.shape
    flat_w, flat_b = weights.reshape(m * c, d).T, biases.reshape(m * c)
    out = np.empty((m, len(rows)), dtype=np.int64)
    for start in range(0, len(rows), CHUNK):
        x = normalised(embeddings[rows[start : start + CHUNK]])
        out[:, start : start + len(x)] = (x @ flat_w + flat_b).reshape(len(x), m, c).argmax(axis=2).T
    return out


def with_spread(metric: Metric, spread: Metric | None) -> Metric:
    """``metric`` (a headline median with its bootstrap CI) carrying the draws' q1/q3 of ``spread``."""
    return metric if spread is None else dataclasses.replace(metric, q1=spread.q1, q3=spread.q3)
