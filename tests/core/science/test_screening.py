"""KEEP's label-free prompt screening and tile vote, checked step by step on cases small enough to do by hand."""
from __future__ import annotations

import numpy as np
import pytest

from pathboard.core.science import screening


def unit(*rows):
    a = np.asarray(rows, dtype=np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_every_combination_of_one_template_and_one_synonym_per_class():
    combos = screening.combinations(2, [3, 1])
    assert combos.shape == (6, 3) and len({tuple(c) for c in combos}) == 6
    assert combos.tolist()[:3] == [[0, 0, 0], [0, 1, 0], [0, 2, 0]]
    drawn = screening.combinations(22, [5] * 30, limit=100)  # 22 x 5^30: drawn, seeded, distinct
    assert drawn.shape == (100, 31) and len({tuple(c) for c in drawn}) == 100
    assert (drawn == screening.combinations(22, [5] * 30, limit=100)).all()


def test_the_screening_score_by_hand():
    # one template; class A has synonyms a0, a1, class B has b0: candidates (a0, b0) and (a1, b0)
    bank = np.zeros((1, 2, 2, 2), dtype=np.float32)
    bank[0, 0, 0] = [1, 0]   # a0
    bank[0, 0, 1] = unit([1, 1])[0]  # a1
    bank[0, 1, 0] = [0, 1]   # b0
    bank[0, 1, 1] = [0, 1]   # padding: never chosen
    combos = np.array([[0, 0, 0], [0, 1, 0]])
    tiles = unit([1, 0], [0.6, 0.8])
    # candidate 0: tile 1 sims (1, 0) -> (1 - 0) - |1 + 0 - 1| = 1; tile 2 (0.6, 0.8) -> 0.2 - 0.4 = -0.2; mean 0.4
    # candidate 1: a1 = (.7071, .7071): tile 1 (.7071, 0) -> .7071 - |.7071 - 1| = .4142;
    #              tile 2 (.9899, .8) -> .1899 - .7899 = -.6; mean -.0929
    scores = screening.screening_scores(tiles, bank, combos)
    assert scores[0] == pytest.approx(0.4, abs=1e-6)
    assert scores[1] == pytest.approx((0.41421 - 0.6) / 2, abs=1e-4)
    best = screening.screened_classifier(bank, combos, scores, top=1)
    assert np.allclose(best, [[1, 0], [0, 1]])  # candidate 0 alone
    both = screening.screened_classifier(bank, combos, scores, top=2)  # the two summed, rows re-normalised
    assert np.allclose(both[0], unit([1 + 0.70711, 0.70711])[0], atol=1e-5) and np.allclose(both[1], [0, 1])


def test_smoothing_averages_the_up_left_up_and_left_neighbours():
    coords = np.array([[0, 0], [10, 0], [0, 10], [10, 10]])
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    out = screening.smoothed(probs, coords, step=10)
    assert out[0].tolist() == [1.0, 0.0]  # no neighbour above or to the left
    assert out[1].tolist() == [0.5, 0.5]  # itself and its left neighbour
    assert out[3].tolist() == pytest.approx([1 / 4, 3 / 4])  # itself, up-left, up and left
    assert out[2].tolist() == [0.5, 0.5]  # itself and its up neighbour
    assert screening.vote_shares(out).tolist() == [0.75, 0.25]  # the ties of tiles 1 and 2 go to the first class


def test_an_added_class_collects_votes_but_never_labels_the_slide():
    bank = np.zeros((1, 3, 1, 3), dtype=np.float32)
    bank[0, :, 0] = np.eye(3)  # classes X, Y and an added "Normal"
    combos = screening.combinations(1, [1, 1, 1])
    tiles = unit(*[[0, 0, 1]] * 6, [0, 1, 0.1], [0, 1, 0.1], [1, 0, 0.1])  # mostly Normal, then Y twice, X once
    coords = np.array([[100 * i, 0] for i in range(9)])  # no tile touches another
    shares = screening.screened_vote(tiles, coords, 10, bank, combos, n_labels=2)
    assert shares.tolist() == pytest.approx([1 / 9, 2 / 9]) and shares.argmax() == 1


def test_single_mode_screens_the_canonical_prompt_alone():
    from pathboard.core.interfaces.prompts import PromptSet

    prompts = PromptSet({"A": ["a", "alpha"], "B": ["b"], "N": ["normal"]}, ["CLASSNAME.", "an image of CLASSNAME."])
    seen = []

    def encode(texts):
        seen.append(list(texts))
        return np.eye(len(texts), 4, dtype=np.float32)[:, :4] + 1e-3

    bank, combos, extra = screening.screening_bank(encode, prompts, "single", ["A", "B"])
    assert extra == ["N"] and combos.shape == (1, 4) and seen[-1] == ["a.", "b.", "normal."]
    bank, combos, _ = screening.screening_bank(encode, prompts, "ensemble", ["A", "B"])
    assert bank.shape[:3] == (2, 3, 2) and len(combos) == 2 * 2 * 1 * 1
