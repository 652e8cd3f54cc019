"""Tissue tiling of whole-slide images (and large plain images) with openslide.

A slide is tiled at a target resolution (``mpp``, or ``magnification`` taken as 10/mpp), keeping
tiles whose tissue fraction, from an Otsu threshold on the saturation of a thumbnail, reaches
``min_tissue``. Tile coordinates are level-0 pixels; reading uses the best pyramid level.

The slide's own resolution is read, in order, from ``openslide.mpp-x``, the TIFF resolution tags
(``tiff.XResolution`` with ``tiff.ResolutionUnit`` centimeter or inch, when plausible), and the
objective power (10 / power µm per pixel, the usual 20x ≈ 0.5 µm convention). A file with none
of them (a plain JPEG, say) is tiled at ``Tiling.fallback_mpp`` when the caller gives one: the scan
resolution its dataset documents (``Dataset.mpp``), never a guess; without it that is reported plainly.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pathboard.core.errors import PathboardError
from pathboard.core.paths import cache_root, write_cached

THUMBNAIL = 1024  # longest side of the thumbnail the tissue mask is computed on


class NoResolutionError(PathboardError):
    """A slide that says nothing of its resolution (and no fallback was given)."""


@dataclass(frozen=True)
class Tiling:
    size: int = 224  # tile side at the target resolution, in pixels (224-512)
    mpp: float | None = 0.5
    magnification: float | None = None
    overlap: float = 0.0  # 0.75 for zero-shot segmentation
    min_tissue: float = 0.25
    #: µm per level-0 pixel for files without resolution metadata (the dataset's documented ``mpp``);
    #: a file's own metadata always wins
    fallback_mpp: float | None = None
    #: small images (e.g. PanNuke's 256 px tiles): windows of this many native pixels cover the whole image
    #: (no resolution lookup, no tissue mask), each resized to ``size``; None: tile at ``mpp``
    window: int | None = None
    #: where ``fallback_mpp`` comes from, when not the dataset ("assumed with --assume-mpp")
    fallback_source: str | None = None

    def __post_init__(self):
        if not 224 <= self.size <= 512:
            raise PathboardError(f"tile size {self.size} is outside 224-512 px")
        if not 0 <= self.overlap < 1:
            raise PathboardError(f"tile overlap {self.overlap} must be in [0, 1)")
        if self.window is not None and self.window < 4:
            raise PathboardError(f"window {self.window} px is too small (at least 4)")

    @property
    def target_mpp(self) -> float:
        return 10.0 / self.magnification if self.magnification else float(self.mpp)

    def key(self) -> dict:
        key = asdict(self)
        # unset: keys of tilings made before these fields existed stay valid
        for name in ("fallback_mpp", "window", "fallback_source"):
            if key[name] is None:
                del key[name]
        return key


@dataclass
class TileGrid:
    coords: np.ndarray  # [T, 2] level-0 (x, y) of each tile's top-left corner
    level: int
    read_size: int  # tile side read at ``level``
    size0: int  # tile side in level-0 pixels
    slide_mpp: float
    mpp_source: str
    tissue_fraction: float  # of the whole slide


def open_slide(path: Path):
    import openslide

    try:
        return openslide.open_slide(str(path))
    except Exception as exc:  # openslide's errors name the file poorly
        raise PathboardError(f"cannot open slide {path.name}: {type(exc).__name__}: {exc}") from None


def slide_mpp(slide) -> tuple[float | None, str]:
    """The slide's µm per pixel at level 0, and where it came from."""
    props = slide.properties
    if props.get("openslide.mpp-x"):
        return float(props["openslide.mpp-x"]), "openslide.mpp-x"
    unit, res = props.get("tiff.ResolutionUnit"), props.get("tiff.XResolution")
    if res and unit in {"centimeter", "inch"}:
        mpp = (1e4 if unit == "centimeter" else 25400.0) / float(res)
        if 0.05 <= mpp <= 20:  # 72/96 dpi defaults written by generic tools are not a microscope's
            return mpp, f"tiff.XResolution ({unit})"
    if props.get("openslide.objective-power"):
        return 10.0 / float(props["openslide.objective-power"]), "openslide.objective-power"
    return None, "none"


def thumbnail(file: Path, side: int = THUMBNAIL, slide=None):
    """The slide's RGB thumbnail (its longest side at most ``side``; a PIL image: do not modify it) and its
    level-0 dimensions. Read once per version of the file: kept in memory for the next pictures and tissue
    masks, and as its raw pixels under the cache folder (``thumbnails/``) for other models, prompt modes and
    runs. Reading it from a slide costs ~0.1-0.3 s, and every model and prompt mode needs it for each slide."""
    memo = (*_version(file), side)
    if memo not in _RECENT:
        _RECENT[memo] = _thumbnail(memo, slide)
        while len(_RECENT) > 16:  # ~3 MB each: the slides of a dataset, across models and prompt modes
            del _RECENT[next(iter(_RECENT))]
    return _RECENT[memo]


_RECENT: dict = {}  # (path, mtime, size, side) -> (thumbnail, dimensions), the newest last


def _version(file: Path) -> tuple[str, int, int]:
    """(real path, mtime in ns, size): what keys a slide's cached thumbnail and tile grids."""
    path = Path(file).resolve()
    info = path.stat()
    return str(path), info.st_mtime_ns, info.st_size


def _thumbnail(memo: tuple, slide=None):
    from PIL import Image

    key = hashlib.sha256(("thumbnail v1 " + " ".join(map(str, memo))).encode()).hexdigest()[:32]
    folder = cache_root() / "thumbnails"
    # one listing of the folder; raw pixels (.npy) first, then a PNG an earlier release wrote
    found = sorted((p for p in folder.glob(f"{key}-*") if p.suffix in (".npy", ".png")),
                   key=lambda p: p.suffix != ".npy") if folder.is_dir() else []
    if found:
        path = found[0]
        try:
            width, height = (int(v) for v in path.stem.split("-", 1)[1].split("x"))
            if path.suffix == ".npy":
                pixels = np.load(path, allow_pickle=False)
                if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
                    raise ValueError(f"{path.name}: not an RGB image")
                return Image.fromarray(pixels, "RGB"), (width, height)
            with Image.open(path) as img:
                return img.convert("RGB"), (width, height)
        except (OSError, ValueError, EOFError):  # a damaged entry: read the slide again
            pass
    if slide is None:
        with open_slide(Path(memo[0])) as opened:
            return _thumbnail_of(opened, memo[3], folder, key)
    return _thumbnail_of(slide, memo[3], folder, key)


def _thumbnail_of(slide, side: int, folder: Path, key: str):
    """Read the thumbnail from the slide and cache its raw pixels: every heatmap reads its slide's from the disk
    cache, and an array loads several times faster than a PNG decodes (docs/scaling.md)."""
    thumb, dimensions = slide.get_thumbnail((side, side)).convert("RGB"), tuple(slide.dimensions)
    write_cached(folder / f"{key}-{dimensions[0]}x{dimensions[1]}.npy", lambda fh: np.save(fh, np.asarray(thumb)))
    return thumb, dimensions


def tissue_mask(slide, file: Path | None = None) -> tuple[np.ndarray, float]:
    """Boolean tissue mask of a thumbnail (:func:`thumbnail` when the slide's ``file`` is given), and level-0
    pixels per mask pixel."""
    from skimage.filters import threshold_otsu

    thumb = (thumbnail(file, THUMBNAIL, slide)[0] if file is not None else
             slide.get_thumbnail((THUMBNAIL, THUMBNAIL))).convert("HSV")
    saturation = np.asarray(thumb)[..., 1].astype(np.float32) / 255
    threshold = threshold_otsu(saturation) if saturation.max() > saturation.min() else 1.0
    mask = saturation > max(threshold, 0.05)  # a blank slide has no tissue, whatever Otsu says
    return mask, slide.dimensions[0] / mask.shape[1]


def tile_stride(size0: int, overlap: float) -> int:
    """Level-0 pixels between neighbouring tiles: every tile starts at a multiple of it."""
    return max(1, round(size0 * (1 - overlap)))


def tile_grid(slide, tiling: Tiling, name: str = "slide", file: Path | None = None) -> TileGrid:
    """The tissue tiles of ``slide`` at ``tiling``. With the slide's ``file``, computed once per version of
    the file and tiling and kept under the cache folder (``tilings/``): every model tiles a slide alike."""
    if file is None:
        return _tile_grid(slide, tiling, name)
    version = _version(file)
    key = hashlib.sha256(json.dumps(["tile grid v1", *version, tiling.key(), THUMBNAIL],
                                    sort_keys=True).encode()).hexdigest()[:32]
    cached = cache_root() / "tilings" / f"{key}.npz"
    try:
        with np.load(cached) as saved:
            fields = json.loads(str(saved["fields"]))
            return TileGrid(np.asarray(saved["coords"], dtype=np.int64).reshape(-1, 2), **fields)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # not there yet, or damaged: tile again
        pass
    grid = _tile_grid(slide, tiling, name, Path(version[0]))
    fields = json.dumps({k: v for k, v in asdict(grid).items() if k != "coords"})
    write_cached(cached, lambda fh: np.savez(fh, coords=grid.coords, fields=fields))
    return grid


def _tile_grid(slide, tiling: Tiling, name: str = "slide", file: Path | None = None) -> TileGrid:
    mpp, source = slide_mpp(slide)
    if mpp is None and tiling.fallback_mpp:
        mpp, source = float(tiling.fallback_mpp), \
            f"{tiling.fallback_source or 'dataset mpp'} (no resolution metadata in the file)"
    if mpp is None:
        raise NoResolutionError(f"{name} has no resolution metadata (no openslide.mpp-x, TIFF resolution or "
                             f"objective power) and its dataset declares no mpp, so it cannot be tiled at "
                             f"{tiling.target_mpp} µm/px")
    factor = tiling.target_mpp / mpp  # level-0 pixels per target pixel
    size0 = max(1, round(tiling.size * factor))
    level = slide.get_best_level_for_downsample(max(factor, 1.0))
    read_size = max(1, round(size0 / slide.level_downsamples[level]))
    stride = tile_stride(size0, tiling.overlap)
    width, height = slide.dimensions
    mask, per_px = tissue_mask(slide, file)
    ys = np.arange(0, height - size0 + 1, stride)
    xs = np.arange(0, width - size0 + 1, stride)
    # each tile's tissue fraction from a summed-area table of the mask: no Python loop over tiles
    # (a 75%-overlap grid of a large slide has millions of positions)
    rows, cols = _mask_spans(ys, size0, per_px, mask.shape[0]), _mask_spans(xs, size0, per_px, mask.shape[1])
    table = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    (r0, r1), (c0, c1) = rows, cols
    tissue = (table[np.ix_(r1, c1)] - table[np.ix_(r0, c1)] - table[np.ix_(r1, c0)] + table[np.ix_(r0, c0)])
    area = np.outer(r1 - r0, c1 - c0)
    keep = (area > 0) & (tissue / np.maximum(area, 1) >= tiling.min_tissue)
    iy, ix = np.nonzero(keep)  # row-major: tiles ordered by y, then x
    coords = np.stack([xs[ix], ys[iy]], axis=1).astype(np.int64)
    return TileGrid(coords.reshape(-1, 2), level, read_size, size0, mpp, source, float(mask.mean()))


def _mask_spans(starts: np.ndarray, size0: int, per_px: float, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """[first, end) mask rows (or columns) under tiles starting at ``starts`` (level-0 px), at least one."""
    first = (starts / per_px).astype(np.int64)
    end = np.maximum(first + 1, ((starts + size0) / per_px).astype(np.int64))
    return np.clip(first, 0, limit), np.clip(end, 0, limit)
