"""Recall@K both ways on hand-built rankings: several correct items, ties counted against the query."""
import numpy as np
import pytest

from pathboard.plugins.tasks.retrieval import first_hit_ranks, pairs_index, retrieval_metrics

METRICS = {f"{d}_recall@{k}" for d in ("i2t", "t2i") for k in (1, 5, 10)} | {"mean_recall"}


def angles(degrees):
    r = np.radians(degrees)
    return np.stack([np.cos(r), np.sin(r)], axis=1)


def test_recall_at_k_on_a_hand_built_ranking():
    # 12 gallery items at 0, 10, ..., 110 degrees; the query at 0 degrees ranks them in that order
    gallery = angles(np.arange(12) * 10.0)
    queries = angles([0.0, 0.0, 0.0, 0.0])
    ranks = first_hit_ranks(queries, gallery, [[0], [3], [7], [11]])
    assert ranks.tolist() == [0, 3, 7, 11]
    m = {x.name: x for x in retrieval_metrics(ranks, np.array([0, 5]), n_boot=200)}
    assert m["i2t_recall@1"].value == 0.25  # only the first query has its item on top
    assert m["i2t_recall@5"].value == 0.5  # ranks 0 and 3 are in the top 5
    assert m["i2t_recall@10"].value == 0.75  # rank 11 is not in the top 10
    assert (m["t2i_recall@1"].value, m["t2i_recall@5"].value, m["t2i_recall@10"].value) == (0.5, 0.5, 1.0)
    assert m["mean_recall"].value == pytest.approx(np.mean([0.25, 0.5, 0.75, 0.5, 0.5, 1.0]))
    assert set(m) == METRICS and m["i2t_recall@1"].n == 4 and m["t2i_recall@1"].n == 2
    for x in m.values():
        assert x.ci_low <= x.value <= x.ci_high
    assert m["i2t_recall@5"].ci_high - m["i2t_recall@5"].ci_low > 0
    again = {x.name: x for x in retrieval_metrics(ranks, np.array([0, 5]), n_boot=200)}
    assert again == m  # seeded bootstrap


def test_several_correct_items_and_ties():
    gallery = angles(np.arange(12) * 10.0)
    query = angles([0.0])
    # any correct item counts: the best of items 9 and 2 is at rank 2
    assert first_hit_ranks(query, gallery, [[9, 2]]).tolist() == [2]
    # other correct items ranked above do not push a correct item down
    assert first_hit_ranks(query, gallery, [[0, 1, 2]]).tolist() == [0]
    # ties count against the query: equal scores give no free hit
    flat = np.ones((5, 2))
    assert first_hit_ranks(query, flat, [[3]]).tolist() == [4]
    # captions shared by images and images with several captions
    texts, img_pos, txt_pos = pairs_index([["a", "b"], ["b"], ["c"], ["d"]], np.array([True, True, True, False]))
    assert texts == ["a", "b", "c", "d"]  # the unreadable image's caption stays a distractor
    assert img_pos == [[0, 1], [1], [2]] and txt_pos == [[0], [0, 1], [2], []]
