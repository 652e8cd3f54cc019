"""Ground truth on a segmentation grid: label images and polygons reduced to one class per cell.

A grid of shape ``(rows, cols)`` with square cells of ``cell`` level-0 pixels covers the image from
its top-left corner: cell ``(r, c)`` holds the pixels ``[c*cell, (c+1)*cell) x [r*cell, (r+1)*cell)``.
Values are class indices; ``IGNORE`` (-1) marks cells that are not scored (outside the image, or inside
an exclusion outline).
"""
from __future__ import annotations

import numpy as np

from pathboard.core.errors import PathboardError

IGNORE = -1
#: annotation labels whose outlines are left out of scoring (CAMELYON16's "_2" groups)
EXCLUSION = "exclusion"


def mask_to_grid(labels: np.ndarray, grid_shape: tuple[int, int], cell: int) -> np.ndarray:
    """Per cell, the most frequent value of a pixel-aligned label image (ties: the smaller value).

    Pixels beyond the label image count as ``IGNORE``, so a cell mostly outside it is ignored.
    """
    rows, cols = grid_shape
    labels = np.asarray(labels)
    full = np.full((rows * cell, cols * cell), IGNORE, dtype=np.int8)
    h, w = min(labels.shape[0], rows * cell), min(labels.shape[1], cols * cell)
    full[:h, :w] = labels[:h, :w]
    blocks = full.reshape(rows, cell, cols, cell)
    values = np.unique(full)
    counts = np.stack([(blocks == v).sum(axis=(1, 3)) for v in values])
    return values[counts.argmax(axis=0)].astype(np.int64)


def rasterize_polygons(polygons, grid_shape: tuple[int, int], cell: float) -> np.ndarray:
    """Boolean grid: True for cells whose centre lies inside any polygon (level-0 (x, y) vertices)."""
    from skimage.draw import polygon as fill

    out = np.zeros(grid_shape, dtype=bool)
    for poly in polygons:
        pts = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        if len(pts) < 3:
            continue
        # cell (r, c) has its centre at level-0 ((c + 0.5) * cell, (r + 0.5) * cell); skimage fills the
        # integer points inside the polygon, so shift the vertices by half a cell
        rr, cc = fill(pts[:, 1] / cell - 0.5, pts[:, 0] / cell - 0.5, shape=grid_shape)
        out[rr, cc] = True
    return out


def truth_from_annotations(annotations, classes: list[str], grid_shape: tuple[int, int], cell: float,
                           default: str) -> np.ndarray:
    """A class index per cell from labelled polygons: ``default`` everywhere, then the outlines of the
    other classes in class order, then ``exclusion`` outlines as ``IGNORE`` (they win over everything)."""
    if default not in classes:
        raise PathboardError(f"default class {default!r} is not one of {', '.join(classes)}")
    unknown = sorted({a.label for a in annotations} - set(classes) - {EXCLUSION})
    if unknown:
        raise PathboardError(f"annotation label(s) {', '.join(unknown)} are not classes ({', '.join(classes)}) "
                             f"or {EXCLUSION!r}")
    truth = np.full(grid_shape, classes.index(default), dtype=np.int64)
    for i, name in enumerate(classes):
        if name != default:
            truth[rasterize_polygons([a.polygon for a in annotations if a.label == name], grid_shape, cell)] = i
    truth[rasterize_polygons([a.polygon for a in annotations if a.label == EXCLUSION], grid_shape, cell)] = IGNORE
    return truth
