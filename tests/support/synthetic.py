"""Synthetic data for the statistics and few-shot tests: clustered predictions, manifests with groups, and
cells of separable embeddings; no model, no file."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from pathboard.core.interfaces.dataset import ImageFolderDataset, Manifest
from pathboard.core.interfaces.embeddings import Embedded
from pathboard.core.interfaces.task import CellContext


def clustered(n_groups=50, per_group=40, seed=0, k=3):
    """Items whose correctness is shared within a group (each group has its own accuracy)."""
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"patient-{i:03d}" for i in range(n_groups)], per_group)
    accuracy = np.repeat(rng.uniform(0.2, 1.0, n_groups), per_group)
    y_true = rng.integers(0, k, len(groups))
    correct = rng.random(len(groups)) < accuracy
    y_pred = np.where(correct, y_true, (y_true + 1 + rng.integers(0, k - 1, len(groups))) % k)
    return y_true, y_pred, groups


def loop_resamples(groups, n_boot, seed):
    """The reference: resample r draws G groups with replacement, rng.integers(0, G, G), and takes
    every item of each drawn group. Groups numbered in the sorted order of their labels."""
    labels = sorted(set(groups))
    members = {g: [i for i, x in enumerate(groups) if x == g] for g in labels}
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_boot):
        drawn = rng.integers(0, len(labels), size=len(labels))
        out.append(np.array([i for d in drawn for i in members[labels[d]]], dtype=np.int64))
    return out


def manifest(paths, groups):
    """A manifest of unlabelled items in no split, with these groups (None: no group)."""
    return SimpleNamespace(paths=paths, labels=np.zeros(len(paths), dtype=np.int64), splits=[None] * len(paths),
                           meta=[{} if g is None else {"group": g} for g in groups])


def synthetic_context(n_per_class=(30, 30, 30), d=16, seed=0, spread=(1.0, 1.0, 1.0)):
    """Embeddings around one centre per class (noise ``spread`` per class), an official train/test
    split, and no model at all."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(n_per_class), d)) * 3
    labels = np.repeat(np.arange(len(n_per_class)), n_per_class)
    x = (centres[labels] + rng.normal(size=(len(labels), d)) * np.asarray(spread)[labels, None]).astype(np.float32)
    splits = ["train" if i % 3 else "test" for i in range(len(labels))]
    dataset = ImageFolderDataset(id="synthetic", folder="x", classes=["a", "b", "c"][: len(n_per_class)],
                                 splits=("train", "test"), eval_split="test")
    manifest = Manifest(root=None, paths=[f"{i}.png" for i in range(len(labels))], labels=labels, splits=splits,
                        hash="h")
    images = Embedded(x, np.ones(len(labels), dtype=bool), {}, "key")
    return CellContext("m", dataset, manifest, None, None, None, images), x / np.linalg.norm(x, axis=1, keepdims=True)
