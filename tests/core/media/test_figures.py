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
