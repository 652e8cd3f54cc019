"""Few-shot prototypes (nearest class mean; CONCH's "SimpleShot"-style baseline): each class is the
re-normalised mean of its support embeddings, and an item gets the class of highest cosine similarity."""
from __future__ import annotations

import numpy as np

from pathboard.core.science.metrics import normalised


def prototype_classifier(x: np.ndarray, y: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([C, D] weights, [C] biases): the re-normalised mean embedding of each class of ``classes`` over the
    L2-normalised support ``x`` with labels ``y``; its scores are cosine similarities (biases are zero)."""
    means = np.stack([x[y == c].mean(axis=0) for c in classes])
    return normalised(means), np.zeros(len(classes), dtype=np.float32)
