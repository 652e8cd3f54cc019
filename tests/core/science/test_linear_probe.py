"""The linear probe: scikit-learn's logistic regression, C chosen by cross-validation on the support set only."""
import numpy as np

from pathboard.core.science import linear_probe
from pathboard.core.science.linear_probe import C_GRID, DEFAULT_C, linear_probe_classifier, select_c


def separable(n_per_class=12, d=8, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 5
    y = np.repeat(np.arange(k), n_per_class)
    return (centres[y] + rng.normal(size=(len(y), d))).astype(np.float32), y


def test_the_probe_separates_separable_classes_and_binary_has_two_rows():
    for k in (2, 3):
        x, y = separable(k=k)
        w, b = linear_probe_classifier(x, y, np.arange(k))
        assert w.shape == (k, x.shape[1]) and b.shape == (k,) and w.dtype == np.float32
        assert np.mean((x @ w.T + b).argmax(axis=1) == y) == 1.0
        if k == 2:  # binary: one decision function, written as class 0 at zero and class 1 at w.x + b
            assert not w[0].any() and b[0] == 0 and w[1].any()


def test_float32_and_float64_embeddings_give_the_same_probe():
    # scikit-learn 1.9 fits float32 input in float32; the probe fits in float64 so that its numbers do not
    # depend on the installed release
    x, y = separable(n_per_class=20, d=32, seed=3)
    w32, b32 = linear_probe_classifier(x, y, np.arange(3))
    w64, b64 = linear_probe_classifier(x.astype(np.float64), y, np.arange(3))
    assert np.array_equal(w32, w64) and np.array_equal(b32, b64)


def test_c_is_chosen_by_cross_validation_on_the_support_set_ties_to_the_smaller():
    x, y = separable(n_per_class=10)
    assert select_c(x, y) in C_GRID
    assert select_c(x[[0, 10, 20]], y[[0, 10, 20]]) == DEFAULT_C  # one item per class: nothing to cross-validate
    # every C scores alike on perfectly separated, far apart classes: the smallest wins
    far = np.repeat(np.eye(3) * 100, 6, axis=0)
    assert select_c(far, np.repeat(np.arange(3), 6)) == C_GRID[0]


def test_the_cv_shortcuts_equal_scikit_learn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(0)
    for n_classes in (2, 3, 5):
        x, y = rng.normal(size=(60, 8)), rng.integers(0, n_classes, 60)
        model = LogisticRegression().fit(x, y)
        xt, yt = rng.normal(size=(40, 8)), rng.integers(0, n_classes, 40)
        assert np.array_equal(linear_probe._predict(model, xt), model.predict(xt))
        assert linear_probe.balanced_accuracy(yt, model.predict(xt)) == balanced_accuracy_score(yt, model.predict(xt))
