"""Zero-shot segmentation's grid and metrics: tiles mapped to cells, overlapping scores averaged, Dice,
precision and recall on hand-made masks."""
import numpy as np
from sklearn.metrics import f1_score, precision_score, recall_score

from pathboard.core.media.masks import IGNORE
from pathboard.plugins.tasks.segmentation import (
    average_scores,
    image_scores,
    predict_mask,
    segmentation_metrics,
    tile_cells,
)


def test_tiles_map_to_grid_cells():
    cells, span = tile_cells(np.array([[0, 0], [112, 56], [56, 224]]), size0=224, stride=56)
    assert span == 4
    assert cells.tolist() == [[0, 0], [1, 2], [4, 1]]  # (row, col) from level-0 (x, y)


def test_overlapping_scores_are_averaged_per_cell():
    # a 3 x 4 grid; tiles 2 cells wide: A at (0, 0), B at (0, 1), C at (1, 3) (clipped at the right edge)
    cells = np.array([[0, 0], [0, 1], [1, 3]])
    scores = np.array([[1.0, 0.0], [0.0, 1.0], [0.2, 0.6]])
    mean, count = average_scores(cells, 2, scores, (3, 4))
    assert count.tolist() == [[1, 2, 1, 0], [1, 2, 1, 1], [0, 0, 0, 1]]
    np.testing.assert_allclose(mean[0, 0], [1.0, 0.0])  # A only
    np.testing.assert_allclose(mean[1, 1], [0.5, 0.5])  # A and B
    np.testing.assert_allclose(mean[1, 2], [0.0, 1.0])  # B only
    np.testing.assert_allclose(mean[2, 3], [0.2, 0.6])  # C only
    assert np.isnan(mean[2, 0]).all()
    pred = predict_mask(mean, count)
    assert pred.tolist() == [[0, 0, 1, IGNORE], [0, 0, 1, 1], [IGNORE, IGNORE, IGNORE, 1]]  # ties: first class


def test_one_wrong_tile_is_outvoted_under_75_percent_overlap():
    # 75% overlap: an interior cell lies under 16 tiles (4 x 4 cells each), so one misclassified tile
    # cannot flip any cell, although it alone would paint 16 cells
    cells = np.array([(r, c) for r in range(5) for c in range(5)])
    scores = np.tile([1.0, 0.0], (25, 1))
    scores[12] = [0.0, 1.0]  # the tile at cell (2, 2)
    mean, count = average_scores(cells, 4, scores, (8, 8))
    assert count[3, 3] == 16 and count[0, 0] == 1 and count[7, 7] == 1 and count[5, 5] == 9
    np.testing.assert_allclose(mean[3, 3], [15 / 16, 1 / 16])
    np.testing.assert_allclose(mean[5, 5], [8 / 9, 1 / 9])
    assert (predict_mask(mean, count) == 0).all()
    scores[12] = [1.0, 0.0]
    scores[[r * 5 + c for r in range(5) for c in range(2)]] = [0.2, 0.9]  # tiles in the two left columns
    pred = predict_mask(*average_scores(cells, 4, scores, (8, 8)))
    assert pred[:, :3].tolist() == [[1, 1, 1]] * 8  # under left tiles only, or 8 left vs 4 right
    assert (pred[:, 4:] == 0).all()  # 4 left vs 8 right at column 4, right tiles only beyond


def test_dice_precision_recall_on_hand_made_masks():
    truth = np.array([[0, 0, 1, 1], [0, 0, 1, IGNORE]])
    pred = np.array([[0, 1, 1, 1], [IGNORE, 0, 1, 1]])
    s = image_scores(truth, pred, 3)
    # scored cells (neither ignored): truth 0 0 1 1 0 1, prediction 0 1 1 1 0 1
    np.testing.assert_allclose(s["dice"][:2], [2 * 2 / (3 + 2), 2 * 3 / (3 + 4)])
    np.testing.assert_allclose(s["precision"][:2], [1.0, 3 / 4])
    np.testing.assert_allclose(s["recall"][:2], [2 / 3, 1.0])
    assert np.isnan(s["dice"][2]) and np.isnan(s["precision"][2])  # class 2 is in neither mask
    t, p = [0, 0, 1, 1, 0, 1], [0, 1, 1, 1, 0, 1]
    assert np.isclose(np.nanmean(s["dice"]), f1_score(t, p, average="macro"))
    assert np.isclose(np.nanmean(s["precision"]), precision_score(t, p, average="macro"))
    assert np.isclose(np.nanmean(s["recall"]), recall_score(t, p, average="macro"))

    # a lesion never predicted: its Dice, precision and recall are 0, not skipped
    missed = image_scores(np.array([[0, 1], [0, 1]]), np.array([[0, 0], [0, 0]]), 3)
    np.testing.assert_allclose(missed["dice"], [2 * 2 / (2 + 4), 0.0, np.nan])
    np.testing.assert_allclose(missed["precision"], [0.5, 0.0, np.nan])
    np.testing.assert_allclose(missed["recall"], [1.0, 0.0, np.nan])
    assert image_scores(np.full((2, 2), IGNORE), np.zeros((2, 2), int), 2) is None

    perfect = image_scores(np.array([[0, 0]]), np.array([[0, 0]]), 3)  # a lesion-free image, all right
    metrics = {m.name: m for m in segmentation_metrics([s, missed, perfect], ["benign", "malignant", "other"])}
    expected = np.mean([np.nanmean(s["dice"]), np.nanmean(missed["dice"]), 1.0])
    assert np.isclose(metrics["dice"].value, expected) and metrics["dice"].n == 3
    assert metrics["dice"].ci_low <= expected <= metrics["dice"].ci_high
    assert 0 <= metrics["dice"].ci_low and metrics["dice"].ci_high <= 1
    assert np.isclose(metrics["dice/malignant"].value, np.mean([6 / 7, 0.0])) and metrics["dice/malignant"].n == 2
    assert "dice/other" not in metrics
    again = {m.name: m for m in segmentation_metrics([s, missed, perfect], ["benign", "malignant", "other"])}
    assert again == metrics  # seeded bootstrap
