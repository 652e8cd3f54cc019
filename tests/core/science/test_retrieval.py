"""Recall@K both ways on hand-built rankings: several correct items, ties, CLIP_benchmark's convention and its
own recall_at_k, intervals over groups."""
import numpy as np
import pytest

from pathboard.core.science.retrieval import (
    caption_pairs,
    first_hit_ranks,
    hit_rates,
    pairs_index,
    retrieval_metrics,
)

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


def shared_caption_set(seed=0, n=40, share=0.2):
    """Images with 1-3 captions each, about ``share`` of the captions also given to another image; text
    embeddings near their image's, each pair row jittered (no exact ties: torch.topk orders ties arbitrarily)."""
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(n, 16))
    captions = [[f"img{i}-cap{j}" for j in range(rng.integers(1, 4))] for i in range(n)]
    for i in range(n):
        if rng.random() < share:  # image i also gets a caption of image j
            captions[i].append(captions[int(rng.integers(0, n))][0])
    meaning = {}
    for i, caps in enumerate(captions):
        for c in caps:
            meaning.setdefault(c, images[i] + rng.normal(scale=1.6, size=16))
    return images, captions, meaning, rng


def test_recall_at_k_is_clip_benchmarks_with_shared_captions():
    import torch
    from clip_benchmark.metrics import zeroshot_retrieval  # the test extra pins clip-benchmark

    images, captions, meaning, rng = shared_caption_set()
    valid = np.ones(len(images), dtype=bool)
    texts, image_of, own = caption_pairs(captions, valid)
    text_emb = np.stack([meaning[t] for t in texts]) + rng.normal(scale=1e-4, size=(len(texts), 16))
    i2t = first_hit_ranks(images, text_emb, own)
    t2i = first_hit_ranks(text_emb, images, [[i] for i in image_of])
    ours = {m.name: m.value for m in retrieval_metrics(i2t, t2i, n_boot=0)}
    # CLIP_benchmark's own computation on the same embeddings (zeroshot_retrieval.evaluate, minus the model)
    t, v = torch.nn.functional.normalize(torch.tensor(text_emb), dim=-1), torch.nn.functional.normalize(
        torch.tensor(images), dim=-1)
    scores = t @ v.T
    positive = torch.zeros_like(scores, dtype=torch.bool)
    positive[torch.arange(len(texts)), torch.tensor(image_of)] = True
    for k in (1, 5, 10):
        image_retrieval = (zeroshot_retrieval.recall_at_k(scores, positive, k) > 0).float().mean().item()
        text_retrieval = (zeroshot_retrieval.recall_at_k(scores.T, positive.T, k) > 0).float().mean().item()
        assert ours[f"t2i_recall@{k}"] == pytest.approx(image_retrieval)
        assert ours[f"i2t_recall@{k}"] == pytest.approx(text_retrieval)
    # pathboard's earlier convention counts a shared caption as a hit for every image that has it: higher
    distinct, img_pos, txt_pos = pairs_index(captions, valid)
    d_emb = np.stack([meaning[c] for c in distinct])
    d_i2t = first_hit_ranks(images, d_emb, img_pos)
    d_t2i = first_hit_ranks(d_emb, images, txt_pos)
    old = {m.name: m.value for m in retrieval_metrics(d_i2t, d_t2i, n_boot=0)}
    assert old["t2i_recall@10"] > ours["t2i_recall@10"]


def test_intervals_resample_the_queries_groups():
    ranks = np.array([0, 0, 0, 0, 20, 20, 20, 20, 0, 20, 0, 20])  # queries of 3 cases, 4 each
    cases = np.repeat(["a", "b", "c"], 4)
    by_case = {m.name: m for m in retrieval_metrics(ranks, ranks, n_boot=300, i2t_groups=cases, t2i_groups=cases)}
    by_query = {m.name: m for m in retrieval_metrics(ranks, ranks, n_boot=300)}
    assert by_case["i2t_recall@1"].value == by_query["i2t_recall@1"].value == 0.5
    assert by_case["i2t_recall@1"].units == 3 and by_query["i2t_recall@1"].units == 12
    width = {name: m["i2t_recall@1"].ci_high - m["i2t_recall@1"].ci_low
             for name, m in (("case", by_case), ("query", by_query))}
    assert width["case"] > width["query"]  # a case's queries move together


def test_tied_items_are_taken_in_a_random_order_in_expectation():
    query = angles([0.0])
    flat = np.ones((8, 2))  # a model that scores everything equal: chance, not a free hit, not a certain miss
    assert hit_rates(query, flat, [[3]], ks=(1, 2, 8)).tolist() == [[1 / 8, 2 / 8, 1.0]]
    # an image whose caption two other images also have: three identical texts tie on top
    gallery = np.concatenate([angles([0.0, 0.0, 0.0]), angles([40.0, 50.0])])
    assert hit_rates(query, gallery, [[1]], ks=(1, 2, 3))[0] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert hit_rates(query, gallery, [[0, 2]], ks=(1, 2))[0] == pytest.approx([2 / 3, 1.0])
    # without ties the hit rates are the ranks' hits
    gallery = angles(np.arange(12) * 10.0)
    ranks = first_hit_ranks(angles([0.0, 0.0]), gallery, [[3], [11]])
    assert hit_rates(angles([0.0, 0.0]), gallery, [[3], [11]]).tolist() == (ranks[:, None] < [1, 5, 10]).tolist()
