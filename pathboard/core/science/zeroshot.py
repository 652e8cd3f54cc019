"""Zero-shot classification, as in CONCH (Lu et al., Nature Medicine 2024).

Each class becomes one text embedding, the re-normalised mean of its L2-normalised prompt embeddings;
an image (or tile) is assigned the class of highest cosine similarity. A slide is scored by MI-Zero top-K
pooling (Lu et al., CVPR 2023): a class's slide score is the mean similarity of its K most similar tiles.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

CHUNK = 65_536
#: the MI-Zero K values a slide task reports, and the headline one (fixed, never chosen on test slides)
TOPK_VALUES = (1, 5, 10, 50, 100)
TOPK_HEADLINE = 50


def zero_shot_classifier(encode_texts: Callable, prompts: dict[str, list[str]]) -> np.ndarray:
    """[C, D]: per class, the mean of its L2-normalised prompt embeddings, re-normalised."""
    weights = np.stack([encode_texts(texts).mean(axis=0) for texts in prompts.values()])
    return weights / np.linalg.norm(weights, axis=1, keepdims=True)


def similarities(image_embeddings, classifier: np.ndarray) -> np.ndarray:
    """[N, C] cosine similarities, streamed over the (memory-mapped) rows."""
    return np.concatenate([np.asarray(image_embeddings[i : i + CHUNK]) @ classifier.T
                           for i in range(0, len(image_embeddings), CHUNK)])


def predict(image_embeddings, classifier: np.ndarray) -> np.ndarray:
    """Index of the most similar class per image."""
    return similarities(image_embeddings, classifier).argmax(axis=1)


def topk_pool(similarities: np.ndarray, k: int) -> np.ndarray:
    """[C] slide scores (MI-Zero): per class, the mean similarity of its top-k tiles ([T, C] in)."""
    k = min(k, len(similarities))
    return np.sort(similarities, axis=0)[-k:].mean(axis=0)
