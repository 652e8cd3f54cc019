"""The one split rule: which items every task evaluates, which train, and the groups that keep them apart."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from support.synthetic import manifest

from pathboard.core.interfaces.dataset import Dataset, Manifest
from pathboard.core.science.splits import (
    HASH_SPLIT_RULE,
    evaluated_items,
    group_hash_split,
    item_groups,
    official_split,
    split_rule,
)


def labelled(paths, labels, splits=None, groups=None) -> Manifest:
    n = len(paths)
    return Manifest(root=None, paths=list(paths), labels=np.asarray(labels), splits=splits or [None] * n, hash="h",
                    meta=[{} if g is None else {"group": g} for g in (groups or [None] * n)])


def dataset(eval_split=None) -> Dataset:
    return Dataset(id="ds", folder="ds", classes=["a", "b", "c"], splits=("train", "val", "test"),
                   eval_split=eval_split)


def test_hash_split_is_deterministic_stratified_and_half():
    paths = [f"c{c}/img{i}.png" for c in range(3) for i in range(11)]
    m = labelled(paths, np.repeat([0, 1, 2], 11))
    train = group_hash_split("ds", m, np.ones(33, dtype=bool))
    assert np.array_equal(train, group_hash_split("ds", labelled(list(paths), m.labels), np.ones(33, dtype=bool)))
    assert np.array_equal(np.bincount(m.labels[train]), [5, 5, 5])
    # adding an item moves at most that class's boundary: earlier decisions mostly stay
    more = group_hash_split("ds", labelled(paths + ["c0/new.png"], np.append(m.labels, 0)), np.ones(34, dtype=bool))
    assert (more[:33] == train).sum() >= 31
    assert not group_hash_split("other", m, np.ones(33, dtype=bool)).tolist() == train.tolist()  # the id seeds it
    assert split_rule(m).startswith("50/50 by item")


def test_whole_groups_go_to_one_side():
    n = 90
    groups = [f"patient{i // 3}" for i in range(n)]  # three items per patient (rotated twins, one slide, ...)
    m = labelled([f"{i}.png" for i in range(n)], np.repeat([0, 1, 2], 30), groups=groups)
    train = group_hash_split("ds", m, np.ones(n, dtype=bool))
    assert {groups[i] for i in np.flatnonzero(train)}.isdisjoint({groups[i] for i in np.flatnonzero(~train)})
    assert 0 < train.sum() < n and split_rule(m) == HASH_SPLIT_RULE


def test_a_group_counts_under_its_most_frequent_class_ties_to_the_smaller():
    # patient p has slides of both classes (a GTEx donor gives ectocervix and endocervix): it counts once,
    # under its majority class (1 here: two of three slides), so it cannot be stratified into both classes
    groups = ["p", "p", "p", "q", "q", "r", "s", "t", "u"]
    labels = [0, 1, 1, 0, 1, 0, 0, 1, 1]
    m = labelled([f"{i}.svs" for i in range(9)], labels, groups=groups)
    train = group_hash_split("ds", m, np.ones(9, dtype=bool))
    by_group = {g: set(train[[i for i, x in enumerate(groups) if x == g]]) for g in set(groups)}
    assert all(len(sides) == 1 for sides in by_group.values())  # whole patients
    # classes: p -> 1 (majority), q -> 0 (tie, the smaller), r, s -> 0, t, u -> 1: two of three per class
    # train in their first half (one each), so exactly two groups train
    assert sum(next(iter(s)) for s in by_group.values()) == 2


def test_evaluated_items_one_rule_for_every_task():
    splits = ["train", "train", "val", "test", "test", None]
    m = labelled([f"{i}.png" for i in range(6)], [0, 1, 2, 0, -1, 1], splits=splits)
    assert evaluated_items(dataset("test"), m).tolist() == [False, False, False, True, False, False]
    # without an eval_split: every labelled item outside "train" (zero-shot evaluated every split before, few-shot
    # the non-training ones; now both evaluate the same items)
    assert evaluated_items(dataset(None), m).tolist() == [False, False, True, True, False, True]
    everything_trains = labelled(["a", "b", "c"], [0, 1, -1], splits=["train"] * 3)
    assert evaluated_items(dataset(None), everything_trains).tolist() == [True, True, False]


def test_official_split_leaves_out_training_items_of_evaluated_groups():
    n = 90
    groups = [f"patient{i // 3}" for i in range(60)] + [f"own{i}" for i in range(60, n)]
    splits = ["test" if (i % 3 == 0 and i < 60) else "train" for i in range(n)]  # every patient has a test item
    m = labelled([f"{i}.png" for i in range(n)], np.repeat([0, 1, 2], 30), splits=splits, groups=groups)
    train, evaluated, dropped = official_split(dataset("test"), m)
    assert set(np.flatnonzero(train)) == set(range(60, n)) and dropped == 40
    assert set(np.flatnonzero(evaluated)) == set(range(0, 60, 3))
    assert official_split(dataset("test"), labelled(["a", "b"], [0, 1], splits=["test", "test"])) is None


def test_item_groups():
    m = manifest(["a.png", "b.png", "c.png", "d.png"], ["p1", None, "p1", "p2"])
    assert list(item_groups(m, np.array([True, True, False, True]))) == ["p1", "item:b.png", "p2"]
    assert list(item_groups(m, [3, 0])) == ["p2", "p1"]
    assert list(item_groups(m, ["c.png", "b.png"])) == ["p1", "item:b.png"]
    assert list(item_groups(m)) == ["p1", "item:b.png", "p1", "p2"]
    assert item_groups(m, [1]) is None  # none of these rows has a group
    assert item_groups(manifest(["x", "y"], [None, None]), [0, 1]) is None
    no_meta = SimpleNamespace(paths=["x", "y"], meta=[])
    assert item_groups(no_meta, np.array([True, True])) is None
