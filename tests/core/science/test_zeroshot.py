"""The zero-shot classifier (the renormalised mean of prompt embeddings) and MI-Zero top-K pooling."""
import numpy as np

from pathboard.plugins.tasks.zeroshot import zero_shot_classifier
from pathboard.plugins.tasks.zeroshot_wsi import topk_pool


def test_topk_pooling():
    sims = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.95], [0.2, 0.3]])
    np.testing.assert_allclose(topk_pool(sims, 1), [0.9, 0.95])
    np.testing.assert_allclose(topk_pool(sims, 2), [0.85, 0.625])
    np.testing.assert_allclose(topk_pool(sims, 100), sims.mean(0))  # K beyond the tile count


def test_ensemble_classifier_is_the_renormalised_mean():
    rng = np.random.default_rng(0)
    table = {t: v / np.linalg.norm(v) for t, v in ((f"t{i}", rng.normal(size=8)) for i in range(6))}
    clf = zero_shot_classifier(lambda texts: np.stack([table[t] for t in texts]),
                               {"a": ["t0", "t1", "t2"], "b": ["t3", "t4", "t5"]})
    mean = (table["t0"] + table["t1"] + table["t2"]) / 3
    np.testing.assert_allclose(clf[0], mean / np.linalg.norm(mean), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(clf, axis=1), 1, rtol=1e-6)
