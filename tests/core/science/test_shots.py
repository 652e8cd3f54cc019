"""The k-shot protocol: seeded draws, the shot counts, and every classifier's predictions in one pass."""
import numpy as np

from pathboard.core.science.shots import draw_support, predict_all, shot_counts, torch_seed


def test_draws_are_reproducible_from_the_seed():
    labels = np.repeat([0, 1, 2], [7, 12, 9])
    classes = np.array([0, 1, 2])
    a = draw_support(labels, classes, 4, draw=2, seed=0)
    assert np.array_equal(a, draw_support(labels, classes, 4, draw=2, seed=0))
    assert not np.array_equal(a, draw_support(labels, classes, 4, draw=3, seed=0))
    assert not np.array_equal(a, draw_support(labels, classes, 4, draw=2, seed=1))
    assert len(set(a)) == 12 and np.array_equal(np.bincount(labels[a]), [4, 4, 4])
    assert shot_counts(7) == [1, 2, 4] and shot_counts(16) == [1, 2, 4, 8, 16] and shot_counts(0) == []
    assert torch_seed(0, 4, 2) == torch_seed(0, 4, 2) != torch_seed(0, 4, 3)


def test_predict_all_is_each_classifiers_argmax_in_chunks(monkeypatch):
    from pathboard.core.science import shots

    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 5)).astype(np.float32)
    weights, biases = rng.normal(size=(3, 4, 5)).astype(np.float32), rng.normal(size=(3, 4)).astype(np.float32)
    rows = np.array([9, 0, 4, 2])
    monkeypatch.setattr(shots, "CHUNK", 3)  # two chunks
    out = predict_all(x, rows, weights, biases)
    xn = x[rows] / np.linalg.norm(x[rows], axis=1, keepdims=True)
    for m in range(3):
        assert np.array_equal(out[m], (xn @ weights[m].T + biases[m]).argmax(axis=1))
