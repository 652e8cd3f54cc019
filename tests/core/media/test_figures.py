"""The pictures a task writes: the MI-Zero heatmap carries its own colour bar."""
from __future__ import annotations

import numpy as np
from PIL import Image

from pathboard.core.media import figures


def test_the_heatmap_has_a_colour_bar_from_yellow_low_to_red_high(shared_data, tmp_path):
    svs = shared_data / "slides" / "CMU-1-Small-Region.svs"
    coords = np.array([[x, y] for x in range(0, 2000, 224) for y in range(0, 2000, 224)])
    values = np.linspace(0.21, 0.34, len(coords))
    out = tmp_path / "slide.single.heatmap.jpg"
    figures.heatmap(svs, coords, 224, values, out)
    thumb, _ = figures.thumbnail(svs, 1024)
    with Image.open(out) as img:
        assert img.size == (thumb.size[0], thumb.size[1] + figures.BAR)  # the bar is under the thumbnail
        pixels = np.asarray(img.convert("RGB"), dtype=int)
    strip = pixels[thumb.size[1] + 15]  # the gradient's middle row
    width = thumb.size[0]
    low, high = strip[width // 4 + 3], strip[width - width // 4 - 4]
    assert low[0] > 220 and low[1] > 200 and low[2] < 60  # yellow at the low end
    assert high[0] > 200 and high[1] < 60 and high[2] < 60  # red at the high end
    assert (strip[: width // 4 - 8] < 100).all(axis=1).any()  # the lowest value is written left of the strip
    assert (strip[width - width // 4 + 8:] < 100).all(axis=1).any()  # the highest right of it
    tile = pixels[112, 112]  # the first tile holds the lowest similarity: yellow over the slide
    assert tile[0] > tile[2] + 40 and tile[1] > tile[2] + 40


def squares_one_by_one(shape, x0, y0, side, colours):
    """The reference: each square painted in turn, later ones over earlier ones."""
    layer = np.zeros(shape, dtype=np.uint8)
    for x, y, colour in zip(x0, y0, colours):
        layer[y:y + side, x:x + side, :3] = colour
        layer[y:y + side, x:x + side, 3] = figures.ALPHA
    return layer


def test_tiles_are_painted_as_one_square_after_another_in_rows():
    """Row by row, the heatmap's squares come out as painting them one at a time in row-major order does: gaps
    where tissue is missing, overlaps (a tiling's, or rounding to the thumbnail) to the lower and right tile,
    squares cut at the layer's edge."""
    rng = np.random.default_rng(0)
    for step, side in ((10, 10), (10, 11), (6, 11), (25, 9)):
        grid = np.array([(x, y) for y in range(0, 205, step) for x in range(0, 205, step)])  # row-major, as tiled
        grid = grid[rng.random(len(grid)) < 0.8]
        colours = rng.integers(0, 256, (len(grid), 3)).astype(np.uint8)
        layer = np.zeros((200, 190, 4), dtype=np.uint8)
        figures.paint_squares(layer, grid[:, 0], grid[:, 1], side, colours)
        expected = squares_one_by_one(layer.shape, grid[:, 0], grid[:, 1], side, colours)
        assert np.array_equal(layer, expected), (step, side)
        assert (layer[..., 3] == 0).any() and (layer[..., 3] == figures.ALPHA).any()  # gaps and tiles both drawn
    empty = np.zeros((20, 20, 4), dtype=np.uint8)
    figures.paint_squares(empty, np.array([], dtype=np.int64), np.array([], dtype=np.int64), 5,
                          np.zeros((0, 3), dtype=np.uint8))
    assert not empty.any()  # no tiles: nothing painted, no error
