"""Ranking stability across prompt draws: τ-b for every pair of draws at once, as scipy computes it."""
import numpy as np
import pytest
from scipy.stats import kendalltau

from pathboard.core.science.rankings import average_ranks, pairwise_tau, stability


def test_pairwise_tau_is_scipys_tau_b_with_ties_and_constant_rows():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, (30, 6)).astype(float)  # many ties
    scores[3] = 0.5  # a constant draw: τ undefined against every other
    taus = pairwise_tau(scores)
    for i in range(len(scores)):
        for j in range(len(scores)):
            if i != j:
                expected = kendalltau(scores[i], scores[j]).statistic
                assert taus[i, j] == pytest.approx(expected, nan_ok=True, abs=1e-12)


def test_stability_of_draws_that_agree_and_disagree():
    agree = np.array([[0.9, 0.5, 0.1], [0.8, 0.6, 0.2], [0.7, 0.4, 0.3]])
    tau, first, median = stability(agree)
    assert tau == pytest.approx(1.0) and list(first) == [1, 0, 0] and list(median) == [1, 2, 3]
    flipped = np.array([[0.9, 0.1], [0.1, 0.9]])
    assert stability(flipped)[0] == pytest.approx(-1.0)
    assert np.isnan(stability(np.array([[0.5, 0.5], [0.5, 0.5]]))[0])


def test_tied_models_share_their_average_rank():
    from scipy.stats import rankdata

    scores = np.array([[0.5, 0.5, 0.3], [0.6, 0.6, 0.1]])  # a and b tied in every draw, both above c
    _, first, median = stability(scores)
    assert list(median) == [1.5, 1.5, 3.0]  # not 1 and 2 by column order
    assert list(first) == [0.5, 0.5, 0.0]
    mixed = np.array([[0.5, 0.5, 0.3], [0.4, 0.4, 0.6], [0.2, 0.2, 0.2], [0.1, 0.3, 0.2]])
    expected = np.stack([rankdata(-row, method="average") for row in mixed])
    assert (average_ranks(mixed) == expected).all()
