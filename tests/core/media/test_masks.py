"""Segmentation truth on the grid: polygons rasterised by cell centre, annotations layered with
exclusions, label images reduced to the majority per cell."""
import numpy as np
import pytest

from pathboard.core.errors import PathboardError
from pathboard.core.interfaces.dataset import Annotation
from pathboard.core.media.masks import IGNORE, mask_to_grid, rasterize_polygons, truth_from_annotations


def test_polygons_are_rasterised_by_cell_centre():
    square = [(100, 100), (300, 100), (300, 300), (100, 300)]  # cell centres at 50, 150, 250, 350
    grid = rasterize_polygons([square], (4, 5), 100)
    assert np.argwhere(grid).tolist() == [[1, 1], [1, 2], [2, 1], [2, 2]]
    triangle = [(0, 0), (390, 0), (0, 390)]  # centre (c + .5, r + .5) * 100 inside when r + c <= 2
    grid = rasterize_polygons([triangle], (4, 4), 100)
    assert grid.tolist() == [[r + c <= 2 for c in range(4)] for r in range(4)]
    assert not rasterize_polygons([[(0, 0), (10, 10)]], (2, 2), 100).any()  # not a polygon
    assert not rasterize_polygons([[(1000, 1000), (1200, 1000), (1200, 1200)]], (2, 2), 100).any()  # outside


def test_truth_from_annotations_layers_classes_and_exclusions():
    tumor = Annotation("tumor", ((0, 0), (400, 0), (400, 400), (0, 400)))
    hole = Annotation("exclusion", ((200, 200), (400, 200), (400, 400), (200, 400)))
    truth = truth_from_annotations([hole, tumor], ["normal", "tumor"], (5, 5), 100, default="normal")
    expected = np.zeros((5, 5), int)
    expected[:4, :4] = 1
    expected[2:4, 2:4] = IGNORE  # exclusions win whatever their order in the file
    assert truth.tolist() == expected.tolist()
    with pytest.raises(PathboardError, match="Custom"):
        truth_from_annotations([Annotation("Custom", tumor.polygon)], ["normal", "tumor"], (5, 5), 100, "normal")


def test_label_images_reduce_to_the_majority_per_cell():
    labels = np.zeros((4, 6), dtype=np.int8)
    labels[:, 3:] = 1
    labels[0, 0] = 1  # a minority pixel does not flip its cell
    labels[2:, :2] = -1
    # cells of 2 x 2 pixels; the middle column of cells is half 0, half 1: a tie goes to the smaller value
    assert mask_to_grid(labels, (2, 3), 2).tolist() == [[0, 0, 1], [IGNORE, 0, 1]]
    # a grid reaching past the label image: the cells outside are ignored
    assert mask_to_grid(labels, (3, 3), 2)[2].tolist() == [IGNORE] * 3
