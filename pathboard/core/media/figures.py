"""Pictures a task writes beside its numbers: a slide's heatmap over its thumbnail (zero-shot WSI) and the
thumbnail | prediction | truth panels of a segmentation. Plain PIL and numpy; thumbnails come from
:func:`~pathboard.core.media.tiling.thumbnail` (read once per slide, cached)."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from pathboard.core.media.tiling import thumbnail

#: class colours of the segmentation panels (RGB); further classes cycle
PALETTE = [(64, 160, 90), (214, 48, 49), (52, 101, 194), (240, 170, 30), (140, 70, 170), (30, 170, 190)]
PANEL = 512  # longest side of each segmentation panel


#: the heatmap's colours: a tile's similarity, scaled to the slide's range, from yellow (lowest) to red (highest)
def heat_colour(value: np.ndarray) -> np.ndarray:
    """[..., 3] RGB in 0..1 of scaled similarities ``value`` in 0..1: yellow (1, 1, 0) to red (1, 0, 0)."""
    value = np.asarray(value, dtype=np.float32)
    return np.stack([np.ones_like(value), 1.0 - value, np.zeros_like(value)], axis=-1)


BAR = 46  # height in pixels of the heatmap's colour bar: an 18-px strip, its caption under it
ALPHA = 140  # the tiles' opacity over the thumbnail (55%)


def heatmap(slide_file, coords: np.ndarray, size0: int, values: np.ndarray, out) -> None:
    """The tiles' similarity to the predicted class, yellow (lowest) to red (highest), over the thumbnail, with
    a colour bar under it that names the similarities at both ends (a JPEG at ``out``)."""
    thumb, dimensions = thumbnail(slide_file, 1024)
    scale = thumb.size[0] / dimensions[0]
    low, high = float(values.min()), float(values.max())
    v = (values - low) / ((high - low) or 1.0)
    # the tiles' colours in one uint8 RGBA layer (55% opaque), composited by PIL: a float blend of the whole
    # thumbnail cost 30-50 ms a slide, more than the rest of the picture
    layer = np.zeros((thumb.size[1], thumb.size[0], 4), dtype=np.uint8)
    coords = np.asarray(coords).reshape(-1, 2)
    paint_squares(layer, (coords[:, 0] * scale).astype(np.int64), (coords[:, 1] * scale).astype(np.int64),
                  max(1, round(size0 * scale)), np.round(heat_colour(v) * 255).astype(np.uint8))
    blended = Image.alpha_composite(thumb.convert("RGBA"), Image.fromarray(layer, "RGBA")).convert("RGB")
    picture = Image.new("RGB", (thumb.size[0], thumb.size[1] + BAR), "white")
    picture.paste(blended, (0, 0))
    _colour_bar(picture, thumb.size[1], low, high)
    out.parent.mkdir(parents=True, exist_ok=True)
    # a photograph under a translucent layer: JPEG, 16x faster to write than PNG and 5x smaller
    picture.save(out, "JPEG", quality=90)


def paint_squares(layer: np.ndarray, x0: np.ndarray, y0: np.ndarray, side: int, colours: np.ndarray) -> None:
    """Paint each tile's ``side`` x ``side`` square (top-left ``x0``, ``y0`` >= 0, in the layer's pixels) in its
    RGB ``colours`` at :data:`ALPHA` on the bare (all zero) RGBA ``layer``, rows of tiles top to bottom and each
    row left to right, so where squares overlap (rounding to the thumbnail's pixels, or an overlapping tiling) the
    lower and the right one shows. A row of tiles is one line of pixels (each column's tile: the rightmost one
    starting at or before it) copied down its band; only where the band overlaps rows already painted are the
    columns it leaves bare kept, so a layer that held something else would lose it there."""
    if not len(x0):
        return
    height, width = layer.shape[:2]
    order = np.lexsort((x0, y0))  # stable: of two tiles at one corner, the later one shows
    x0, y0, colours = x0[order], y0[order], colours[order]
    columns = np.arange(width)
    rows = np.flatnonzero(np.r_[True, y0[1:] != y0[:-1]])
    painted = 0  # the layer's rows above this are painted; those below are bare
    for start, stop in zip(rows, np.r_[rows[1:], len(y0)]):
        top, bottom = max(int(y0[start]), 0), min(int(y0[start]) + side, height)
        if top >= bottom:
            continue
        starts = x0[start:stop]
        last = np.searchsorted(starts, columns, side="right") - 1  # the rightmost tile starting at or before
        covered = (last >= 0) & (columns < starts[np.maximum(last, 0)] + side)
        line = np.zeros((width, 4), dtype=np.uint8)
        line[covered, :3] = colours[start:stop][last[covered]]
        line[covered, 3] = ALPHA
        kept = min(max(painted, top), bottom)
        if kept > top:  # over an earlier row's squares: only this row's own columns
            layer[top:kept, covered] = line[covered]
        layer[kept:bottom] = line
        painted = max(painted, bottom)


def _colour_bar(picture: Image.Image, top: int, low: float, high: float) -> None:
    """The heatmap's scale under the picture, from ``top``: a gradient strip (the middle half of the width)
    with the lowest and highest cosine similarity written at its ends."""
    width = picture.size[0]
    left, right = width // 4, width - width // 4
    ramp = heat_colour(np.linspace(0.0, 1.0, right - left))
    strip = np.broadcast_to(ramp[None], (18, right - left, 3))
    picture.paste(Image.fromarray((strip * 255).astype(np.uint8)), (left, top + 6))
    draw = ImageDraw.Draw(picture)
    draw.text((left - 6, top + 15), f"{low:.3f} low", fill="black", anchor="rm")
    draw.text((right + 6, top + 15), f"high {high:.3f}", fill="black", anchor="lm")
    draw.text((width // 2, top + 29), "cosine similarity to the predicted class", fill="#444", anchor="mt")


def colorize(mask: np.ndarray, dim: np.ndarray | None = None) -> np.ndarray:
    """RGB image of a class mask: class colours, light grey for ``IGNORE``; ``dim`` cells washed out."""
    rgb = np.full((*mask.shape, 3), 225, dtype=np.float32)
    for c in range(int(mask.max(initial=-1)) + 1):
        rgb[mask == c] = PALETTE[c % len(PALETTE)]
    if dim is not None:
        rgb[dim] = 0.35 * rgb[dim] + 0.65 * 255
    return rgb.astype(np.uint8)


def save_panels(image, grid_shape, cell: int, pred: np.ndarray, truth: np.ndarray, out) -> None:
    """Thumbnail | prediction | truth (cells outside the scored tissue washed out), one PNG. ``image`` is
    a slide file or an already decoded PIL image (small images segmented in windows)."""
    rows, cols = grid_shape
    scale = PANEL / max(rows, cols)
    size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
    if isinstance(image, Image.Image):
        thumb, f = image.convert("RGB"), 1.0
    else:
        thumb, dimensions = thumbnail(image, PANEL * 2)
        f = thumb.size[0] / dimensions[0]
    thumb = thumb.crop((0, 0, round(cols * cell * f), round(rows * cell * f))).resize(size, Image.BILINEAR)
    panels = [thumb,
              Image.fromarray(colorize(pred)).resize(size, Image.NEAREST),
              Image.fromarray(colorize(truth, dim=pred < 0)).resize(size, Image.NEAREST)]
    gap = 8
    canvas = Image.new("RGB", (3 * size[0] + 2 * gap, size[1]), (255, 255, 255))
    for i, panel in enumerate(panels):
        canvas.paste(panel, (i * (size[0] + gap), 0))
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
