"""Zero-shot segmentation's grid and metrics (CONCH, Lu et al., Nature Medicine 2024).

An image or slide is tiled with :data:`OVERLAP` (75%) overlap; each tissue tile is classified zero-shot (its
cosine similarity to each class embedding). The grid the scores are averaged on has one cell per tile stride
(a quarter tile), so every cell lies under up to 16 tiles; a cell's class scores are the mean similarity of
the tiles covering it and its predicted class is the argmax. Nothing is fitted or thresholded on the test
images. Cells that no tile covers have no prediction and are not scored.

Metrics: per image, Dice (F1), precision and recall of every class present in the truth or the prediction
(0 where undefined: a class never predicted has precision 0), macro-averaged; then the mean over images,
with a seeded bootstrap 95% CI over images. ``dice/<class>`` (and ``precision/<class>``, ``recall/<class>``)
average one class's score over the images where it is present in the truth or the prediction.
"""
from __future__ import annotations

import warnings

import numpy as np

from pathboard.core.media.masks import IGNORE
from pathboard.core.science.metrics import N_BOOT, SEED, Metric, bootstrap_indices, estimate

OVERLAP = 0.75


def tile_cells(coords: np.ndarray, size0: int, stride: int) -> tuple[np.ndarray, int]:
    """[T, 2] (row, col) of each tile's top-left grid cell, and the side of a tile in cells."""
    cells = np.asarray(coords, dtype=np.int64)[:, ::-1] // stride
    return cells, max(1, round(size0 / stride))


def average_scores(cells: np.ndarray, span: int, scores: np.ndarray, grid_shape: tuple[int, int]):
    """Mean [rows, cols, C] score of the tiles covering each cell (NaN where none does), and the
    [rows, cols] number of covering tiles. Tile t covers cells ``cells[t] + [0, span)^2``."""
    rows, cols = grid_shape
    total = np.zeros((rows, cols, scores.shape[1]), dtype=np.float64)
    count = np.zeros((rows, cols), dtype=np.int64)
    for dy in range(span):
        for dx in range(span):
            r, c = cells[:, 0] + dy, cells[:, 1] + dx
            inside = (r < rows) & (c < cols)
            np.add.at(total, (r[inside], c[inside]), scores[inside])
            np.add.at(count, (r[inside], c[inside]), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count[..., None]
    return mean, count


def predict_mask(mean: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Argmax class per cell, ``IGNORE`` where no tile covers it."""
    pred = np.full(count.shape, IGNORE, dtype=np.int64)
    covered = count > 0
    pred[covered] = mean[covered].argmax(axis=-1)
    return pred


def image_scores(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> dict[str, np.ndarray] | None:
    """Per-class Dice, precision and recall over the cells scored in both masks ([C] each, NaN for
    classes absent from truth and prediction); None when no cell is scored."""
    scored = (truth >= 0) & (pred >= 0)
    if not scored.any():
        return None
    t, p = truth[scored], pred[scored]
    classes = np.arange(n_classes)
    tp = np.array([np.sum((t == c) & (p == c)) for c in classes], dtype=np.float64)
    n_true = np.bincount(t, minlength=n_classes)[:n_classes].astype(np.float64)
    n_pred = np.bincount(p, minlength=n_classes)[:n_classes].astype(np.float64)
    present = (n_true + n_pred) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {"dice": 2 * tp / (n_true + n_pred),
               "precision": np.where(n_pred > 0, tp / n_pred, 0.0),
               "recall": np.where(n_true > 0, tp / n_true, 0.0)}
    return {name: np.where(present, v, np.nan) for name, v in out.items()}


def segmentation_metrics(per_image: list[dict[str, np.ndarray]], class_names: list[str], n_boot: int = N_BOOT,
                         seed: int = SEED) -> list[Metric]:
    """Macro-averaged per image, then averaged over images, with bootstrap CIs over images."""
    n = len(per_image)
    columns = {}  # metric -> [n] per-image value (NaN: undefined for that image)
    for name in ("dice", "precision", "recall"):
        columns[name] = np.array([np.nanmean(s[name]) for s in per_image])
    for name in ("dice", "precision", "recall"):
        for c, cls in enumerate(class_names):
            values = np.array([s[name][c] for s in per_image])
            if np.isfinite(values).any():
                columns[f"{name}/{cls}"] = values
    boot = {name: [] for name in columns}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample without a class: NaN, dropped below
        for idx in bootstrap_indices(n, n_boot, seed):
            for name, values in columns.items():
                boot[name].append(np.nanmean(values[idx], axis=1))
    return [estimate(name, float(np.nanmean(values)), np.concatenate(boot[name]), int(np.isfinite(values).sum()),
                     n) for name, values in columns.items()]
