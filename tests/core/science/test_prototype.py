"""Prototypes: the re-normalised mean of each class's support embeddings, scored by cosine similarity."""
import numpy as np

from pathboard.core.science.metrics import normalised
from pathboard.core.science.prototype import prototype_classifier


def test_each_class_is_its_renormalised_mean_and_scores_are_cosines():
    rng = np.random.default_rng(5)
    x = normalised(rng.normal(size=(12, 4)))
    y = np.repeat([2, 0, 1], 4)
    w, b = prototype_classifier(x, y, np.array([0, 1, 2]))
    for c in range(3):
        mean = x[y == c].mean(axis=0)
        np.testing.assert_allclose(w[c], mean / np.linalg.norm(mean), rtol=1e-6)
    assert not b.any() and np.allclose(np.linalg.norm(w, axis=1), 1)
    # a spread-out class has a short mean: the re-normalised prototype, not the raw mean, decides
    angles = np.radians([0.0, 0.0, 53.13 + 70, 53.13 - 70])  # class 1 spread 70° either side of the query
    support = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    w, _ = prototype_classifier(support, np.array([0, 0, 1, 1]), np.array([0, 1]))
    query = normalised(np.array([[0.6, 0.8]]))
    raw = np.stack([support[:2].mean(axis=0), support[2:].mean(axis=0)])
    assert (query @ w.T).argmax() == 1 and (query @ raw.T).argmax() == 0
