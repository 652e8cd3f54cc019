"""The linear probe: scikit-learn's logistic regression, C chosen by cross-validation on the support set only."""
import numpy as np
import pytest

from pathboard.core.science import linear_probe, logistic
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
        w = np.hstack([model.coef_, model.intercept_[:, None]])  # fit_logistic's layout
        assert np.array_equal(model.classes_[linear_probe._predict_codes(w, xt)], model.predict(xt))
        assert linear_probe.balanced_accuracy(yt, model.predict(xt)) == balanced_accuracy_score(yt, model.predict(xt))


def _objective(w, x, y, n_classes, C):
    onehot = None if n_classes == 2 else np.eye(n_classes)[y]
    f, g = logistic._loss_grad(w[None], np.hstack([x, np.ones((len(x), 1))]), y.astype(float) if onehot is None
                               else y, onehot, np.full((1, len(x)), 1 / len(x)), np.array([1 / (C * len(x))]))
    return f[0], np.abs(g).max()


def test_the_fits_minimise_scikit_learn_s_objective_as_far_as_scikit_learn():
    # scikit-learn's stopping rule (max |gradient| <= 1e-4): as close to the optimum as its fits, within a margin
    from sklearn.linear_model import LogisticRegression

    def layout(model):  # fit_logistic's; the softmax's weights are defined up to a constant per feature: centred
        w = np.hstack([model.coef_, model.intercept_[:, None]])
        return w - w.mean(axis=0) if len(w) > 1 else w

    rng = np.random.default_rng(1)
    for n_classes in (2, 3, 5):
        for C in (0.01, 1.0, 1000.0):
            x, y = rng.normal(size=(40, 16)), np.arange(40) % n_classes
            theirs = LogisticRegression(C=C, max_iter=1000).fit(x, y)  # lbfgs, stopped at max |gradient| <= 1e-4
            exact = layout(LogisticRegression(C=C, max_iter=100_000, tol=1e-12).fit(x, y))
            w = logistic.fit_logistic(x, y, n_classes, C)
            ours = w - w.mean(axis=0) if n_classes > 2 else w
            f, g = _objective(w, x, y, n_classes, C)
            assert g <= logistic.TOL and f <= _objective(layout(theirs), x, y, n_classes, C)[0] + 1e-6
            if C <= 1:  # at large C the optimum is flat: a gradient of 1e-4 leaves the weights loose, theirs too
                assert np.abs(ours - exact).max() <= 1.5 * np.abs(layout(theirs) - exact).max() + 1e-4, (n_classes, C)
            xt = rng.normal(size=(2000, 16))
            assert np.mean(linear_probe._predict_codes(w, xt) == theirs.predict(xt)) >= (0.95 if C > 100 else 0.999)


def test_problems_fitted_together_equal_problems_fitted_alone_and_stay_in_their_items_span():
    """The same objective to the same rule, in one run or alone; a fold's weights lie in the span of its own fit
    items (the held-out items of the other folds in the run never shape them), and a repeated row counts twice."""
    rng = np.random.default_rng(4)
    for n_classes, d in ((2, 64), (4, 64), (4, 8)):  # fewer items than features (reduced basis), and more
        x, y = rng.normal(size=(30, d)), np.arange(30) % n_classes
        problems = [(np.sort(rng.choice(30, 24, replace=False)), C) for C in (0.1, 10.0, 1000.0)]
        together = logistic.fit_logistic_many(x, y, n_classes, problems)
        xt = rng.normal(size=(2000, d))
        for (rows, C), w in zip(problems, together):
            alone = logistic.fit_logistic(x[rows], y[rows], n_classes, C)
            (f, g), (f_alone, _) = _objective(w, x[rows], y[rows], n_classes, C), _objective(alone, x[rows], y[rows],
                                                                                             n_classes, C)
            assert g <= logistic.TOL and abs(f - f_alone) <= 1e-9 * max(1.0, C), (n_classes, d, C)
            agree = np.mean(linear_probe._predict_codes(w, xt) == linear_probe._predict_codes(alone, xt))
            assert agree >= (0.99 if C > 100 else 0.999), (n_classes, d, C, agree)
            span, _ = np.linalg.qr(x[rows].T)
            outside = w[:, :-1] - (w[:, :-1] @ span) @ span.T
            assert np.abs(outside).max() <= 1e-9 * np.abs(w).max(), (n_classes, d, C, np.abs(outside).max())
    x, y = rng.normal(size=(12, 16)), np.arange(12) % 2
    twice = np.array([0, 0, *range(1, 12)])
    ones = [(twice, 1.0), (np.arange(12), 1.0)]
    assert np.allclose(logistic.fit_logistic_many(x, y, 2, ones)[0], logistic.fit_logistic(x[twice], y[twice], 2, 1.0),
                       atol=1e-5)


def test_the_cross_validation_predicts_as_scikit_learn_s_converged_fits():
    """Held-out predictions of every fold and C against scikit-learn's fits converged to 1e-10, and the C chosen.
    At large C on separable support sets the optimum is flat: a gradient of 1e-4 (scikit-learn's default tolerance)
    leaves the weights loose, and where a fit stops depends on its path. With that default, scikit-learn itself
    chooses another C than its converged fits in 2 of these 9 cases (3 and 7: 1000 instead of 0.01); the probe
    stops at 1e-6 and chooses as the converged fits do."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(2)
    cases = [(rng.normal(size=(n * k, 24)) + np.repeat(rng.normal(size=(k, 24)) * s, n, axis=0),
              np.repeat(np.arange(k), n)) for n, k, s in ((4, 3, 0.4), (8, 2, 0.3), (16, 4, 0.2), (16, 3, 0.5))]
    rng = np.random.default_rng(7)  # fewer items than features: the fits run in the items' span
    cases += [(rng.normal(size=(n * k, 64)) + np.repeat(rng.normal(size=(k, 64)) * s, n, axis=0),
               np.repeat(np.arange(k), n)) for n, k, s in ((16, 3, 0.3), (8, 5, 0.3), (16, 2, 0.2), (12, 4, 0.25),
                                                          (16, 9, 0.3))]
    agree, chosen = [], []
    for x, y in cases:
        folds = linear_probe.stratified_folds(y, min(5, np.bincount(y).min()), 0)
        problems = [(fit, C) for C in C_GRID for fit, _ in folds]
        ours = logistic.fit_logistic_many(x, y, len(np.unique(y)), problems)
        scores = {}
        for (fit, C), w, (_, held) in zip(problems, ours, folds * len(C_GRID)):
            theirs = LogisticRegression(C=C, max_iter=100_000, tol=1e-10).fit(x[fit], y[fit]).predict(x[held])
            same = linear_probe._predict_codes(w, x[held]) == theirs
            assert same.all() or C > 1, (C, np.mean(same))
            agree.append(np.mean(same))
            scores.setdefault(C, []).append(linear_probe.balanced_accuracy(y[held], theirs))
        converged = C_GRID[int(np.argmax([np.mean(scores[C]) for C in C_GRID]))]
        chosen.append((select_c(x, y), converged))
    assert np.mean(agree) >= 0.99
    assert all(ours == theirs for ours, theirs in chosen), chosen
    assert len({theirs for _, theirs in chosen}) >= 3  # the cases do not all choose alike


def test_stratified_folds_are_scikit_learn_s():
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(3)
    for trial in range(60):
        n_classes = 2 + trial % 4
        y = rng.choice([f"c{c}" for c in range(n_classes)], size=int(rng.integers(n_classes * 5, 90)))
        y[:n_classes * 5] = np.repeat([f"c{c}" for c in range(n_classes)], 5)[rng.permutation(n_classes * 5)]
        splits = 2 + trial % 4
        seed = int(rng.integers(0, 1000))
        theirs = list(StratifiedKFold(n_splits=splits, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
        ours = linear_probe.stratified_folds(y, splits, seed)
        assert len(ours) == splits
        for (fit, held), (tfit, theld) in zip(ours, theirs):
            assert np.array_equal(fit, tfit) and np.array_equal(held, theld), (trial, splits, seed)


def test_the_final_fit_from_the_cross_validation_s_run_is_the_fit_alone():
    for k, d in ((3, 8), (2, 64)):
        x, y = separable(n_per_class=10, d=d, k=k, seed=5)
        C, w = linear_probe.cross_validated(x, y)
        alone = logistic.fit_logistic(x.astype(np.float64), y, k, C)
        assert C == select_c(x, y) and np.allclose(w, alone, atol=1e-3 * max(1.0, np.abs(alone).max()))


def test_a_pool_too_large_for_one_run_runs_each_fold_on_its_own_items_and_fits_only_the_chosen_c(monkeypatch):
    """Where the problems cannot share one run (k = all), a run holds the problems of one fit set and reads only
    those items, and the whole pool is fitted at the chosen C only: the same C and weights as in one run."""
    x, y = separable(n_per_class=40, d=8, k=3, seed=6)
    one_run = linear_probe.cross_validated(x, y)
    runs: list[tuple[int, int]] = []  # (items read, problems) of each solver run
    solve = logistic._lbfgs

    def spy(zb, y, onehot, s, *rest):
        runs.append((len(zb), len(s)))
        return solve(zb, y, onehot, s, *rest)

    monkeypatch.setattr(logistic, "_lbfgs", spy)
    monkeypatch.setattr(logistic, "BUDGET", 96 * 3 * 4)  # four problems of a fold's 96 items x 3 outputs per run
    C, w = linear_probe.cross_validated(x, y)
    assert C == one_run[0] and np.allclose(w, one_run[1], atol=1e-4 * np.abs(w).max())
    # each of 5 folds (96 of the 120 items) runs its 6 C as 4 and 2; then the whole pool at the chosen C alone
    assert sorted(runs) == sorted([(96, 4), (96, 2)] * 5 + [(120, 1)]), runs


def test_fits_that_stop_early_warn_and_the_probe_counts_them():
    import warnings

    x, y = separable(n_per_class=10, d=8, k=3, seed=6)
    with pytest.warns(logistic.ConvergenceWarning, match="2 of 2 logistic fits stopped"):
        logistic.fit_logistic_many(x, y, 3, [(np.arange(30), 1000.0), (np.arange(20), 1000.0)], max_iter=2)
    with pytest.warns(UserWarning, match="something else"):  # other warnings pass through
        with linear_probe.probe_convergence() as counts:
            logistic.fit_logistic_many(x, y, 3, [(np.arange(30), 1.0)])  # converges: no warning
            logistic.fit_logistic_many(x, y, 3, [(np.arange(30), 1000.0), (np.arange(20), 1.0)], max_iter=2)
            warnings.warn("something else", UserWarning, stacklevel=1)
    assert counts == [2]
    note = linear_probe.convergence_note("fewshot", "lung", counts[0])[0]
    assert note.startswith("fewshot on lung: 2 linear-probe fit(s) stopped before converging")
    assert linear_probe.convergence_note("fewshot", "lung", 0) == []


def test_no_problems_fit_nothing():
    x, y = separable(n_per_class=5, d=4, k=2, seed=1)
    assert logistic.fit_logistic_many(x, y, 2, []) == []
