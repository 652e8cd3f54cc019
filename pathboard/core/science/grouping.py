"""Near-duplicate groups of images, for datasets built by augmenting a few originals (LC25000).

An image is reduced to ``SIZE`` x ``SIZE`` pixels in two channels (grey level and red minus blue, which
separates haematoxylin from eosin), and its central window (half the side) is hashed: one bit per
coefficient of the 8 x 8 lowest DCT frequencies but the DC, set where the coefficient is above their
median (63 bits a channel). Rotating an image by a multiple of 90 degrees or flipping it permutes and
negates these coefficients exactly, so the hashes of its 8 dihedral transforms are computed from one DCT
(:func:`canonical_hash`, their minimum, is the same for an image and any rotation or flip of it).

Copies made by rotating by a small angle also differ from their source by a zoom (the rotated image is
cropped to its largest upright square and resized back, as the Augmentor package LC25000 was made with
does: up to 25 degrees, so two copies of one original differ by up to 50 degrees and a zoom of up to 4/3).
So :func:`near_duplicate_groups` compares an image with others seen through a grid of rotations
(``ANGLE_STEP`` degrees up to ``MAX_ANGLE``, composed with the 8 dihedral transforms) and zooms (``ZOOM_STEP``
in log scale, only the zooms such a pair of crops can show at that angle): the DCT of the warped window is
computed directly from the reduced image with warped basis functions. Two images whose best match differs in
at most ``THRESHOLD`` of the 126 bits are near duplicates; groups are the connected components.

Comparing every pair costs ~1,840 popcounts a pair: minutes for 5,000 images, hours for 10^5. So each image
is compared only with its ``NEIGHBOURS`` candidates (:func:`candidate_pairs`): its nearest images by a
descriptor that rotations and flips leave unchanged and small zooms barely move (each channel's quantiles
inside three central discs, and its radial power spectrum). Every candidate is verified by the exact test
above, so no link is false. On the real LC25000 lung sample (600 images at once) 273 of the 274 links of
comparing every pair are found (the one missed is 22 bits apart, at the threshold); on sets of 1,000 to
5,000 augmented copies of it (``benchmarks/grouping.py``) 98-100% of the links are, every pair of copies of
one original stays in one group, and fewer chance links join different originals. The exhaustive
:func:`near_pairs` remains, for sets of at most ``EXHAUSTIVE`` images (a class of the real sample) and for
checking. A group of more than ``MAX_GROUP`` images (LC25000 has about 20 copies of each original, so chance
matches must have chained groups together) is split again with a stricter threshold. Results are cached under
the pathboard cache folder (``--cache-dir``), keyed by the files' paths, sizes and mtimes.

Images are not decoded for this alone: a dataset that declares ``near_duplicates`` has its groups found by
:func:`group_manifest` after the run's first embedding of it, whose DataLoader workers keep the :func:`thumbnail`
of every image they decode (:func:`save_thumbnails`); only images without one (an embedding cached before, a
perturbed one) are read here, reduced the same way, so the groups do not depend on which path an image took.

Where the time goes: reading (only what the embedding did not decode), hashing (one matrix product per zoom over
the pixels its windows cover, then the medians), the descriptors' nearest neighbours (a matrix product) and the
verification (compiled popcounts, :mod:`pathboard.core.science.hamming`), each on as many threads as the process
has CPUs.

Measured on the real LC25000 lung sample (600 images of 224 px, 200 a class; ``tests/core/science/test_grouping.py``):
rotated, flipped and small-angle rotated and zoomed copies of its images land in their source's group,
and no group mixes classes (no pair of images of different classes is within 24 bits). numpy, scipy, PIL and
numba.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from pathboard.core.media.images import open_rgb
from pathboard.core.paths import cache_root, usable_cpus, write_cached
from pathboard.core.timing import stage

SIZE = 32  # images are reduced to SIZE x SIZE
WINDOW = SIZE // 2  # the central window that is hashed
FREQS = 8  # FREQS x FREQS lowest DCT frequencies, DC excluded: 63 bits a channel
CHANNELS = 2  # grey level, red minus blue
ANGLE_STEP, MAX_ANGLE = 4.0, 45.0  # degrees; beyond 45 the dihedral rotations take over
ZOOM_STEP, MAX_ZOOM = 0.08, float(np.log(4 / 3))  # natural log of the zoom
MAX_CROP_ANGLE = 25.0  # the largest rotation of one copy (LC25000: Augmentor, up to 25 degrees)
THRESHOLD = 22  # of CHANNELS * 63 bits
#: LC25000 holds about 20 copies of each original: a larger group is split again with a stricter threshold
MAX_GROUP, MIN_THRESHOLD = 64, 10
#: candidates per image that the exact test verifies, and the largest set compared exhaustively instead
NEIGHBOURS, EXHAUSTIVE = 64, 256
VERSION = 4  # bump when anything above, or how images are reduced (:func:`thumbnail`), changes: it keys the cache
CHUNK = 256  # images hashed per matrix product
GREY = np.array([0.299, 0.587, 0.114], dtype=np.float64)


@lru_cache(maxsize=64)
def _reduction(n: int, size: int = SIZE) -> np.ndarray:
    """(size, n) area-averaging matrix: output pixel i averages input [i n/size, (i+1) n/size)."""
    edges = np.arange(size + 1) * (n / size)
    left, right = edges[:-1, None], edges[1:, None]
    j = np.arange(n)[None, :]
    overlap = np.clip(np.minimum(right, j + 1) - np.maximum(left, j), 0, None)
    return overlap / (n / size)


def reduce_image(img: Image.Image) -> np.ndarray:
    """(CHANNELS, SIZE, SIZE) float64: grey level and red minus blue, area-averaged (the same operation on
    both axes, symmetric under reversal, so it commutes with rotations by 90 degrees and flips)."""
    rgb = np.asarray(img.convert("RGB"), dtype=np.float64)
    h, w = rgb.shape[:2]
    out = _reduction(h) @ np.stack([rgb @ GREY, rgb[..., 0] - rgb[..., 2]]) @ _reduction(w).T
    return out - out.mean(axis=(1, 2), keepdims=True)


def thumbnail(img: Image.Image) -> np.ndarray:
    """:func:`reduce_image` of a decoded image, as float32, first halved (by whole pixel blocks, PIL's
    ``reduce``) while its shorter side stays at least 2 x SIZE, at most 8 times: the one way every image is
    reduced, whether the embedding's DataLoader workers decoded it (:mod:`pathboard.core.embedding.embedder`)
    or :func:`load` reads it, so the groups do not depend on which did."""
    scale = 1
    while scale < 8 and min(img.size) // (2 * scale) >= SIZE:
        scale *= 2
    return reduce_image(img.reduce(scale) if scale > 1 else img).astype(np.float32)


def load(path: Path) -> np.ndarray:
    """:func:`thumbnail` of an image file read by :func:`pathboard.core.media.images.open_rgb`. Raises its
    one-line PathboardError for a file it refuses."""
    return thumbnail(open_rgb(path))


def _dct(n: int = WINDOW) -> np.ndarray:
    k = np.arange(n)
    m = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n)) * np.sqrt(2 / n)
    m[0] /= np.sqrt(2)
    return m[:FREQS]


def _weights(matrix: np.ndarray) -> np.ndarray:
    """(SIZE*SIZE, FREQS*FREQS): the DCT basis of the central window seen through ``matrix`` (2 x 2,
    window coordinates -> image coordinates, both centred), evaluated at the image's pixel centres with
    a soft window edge. The identity gives exactly the DCT of the central crop."""
    c = np.arange(SIZE) - (SIZE - 1) / 2
    x, y = np.meshgrid(c, c)
    inv = np.linalg.inv(matrix)
    ox, oy = inv[0, 0] * x + inv[0, 1] * y, inv[1, 0] * x + inv[1, 1] * y
    half = WINDOW / 2
    inside = np.clip(half - np.abs(ox) + 0.5, 0, 1) * np.clip(half - np.abs(oy) + 0.5, 0, 1)
    u = np.arange(FREQS)[:, None, None]
    scale = np.where(u == 0, np.sqrt(1 / WINDOW), np.sqrt(2 / WINDOW))
    bx = scale * np.cos(np.pi * u * (ox + half) / WINDOW)  # (FREQS, SIZE, SIZE), column frequency
    by = scale * np.cos(np.pi * u * (oy + half) / WINDOW)  # row frequency
    w = by[:, None] * bx[None, :] * inside  # (row freq, col freq, SIZE, SIZE)
    return w.reshape(FREQS * FREQS, SIZE * SIZE).T


def _zoom_possible(angle: float, zoom: float) -> bool:
    """Whether two crops rotated by at most MAX_CROP_ANGLE that differ by ``angle`` can differ by ``zoom``
    (log) within half a grid step: a crop rotated by t is zoomed by cos|t| + sin|t|."""
    t = np.linspace(-MAX_CROP_ANGLE, MAX_CROP_ANGLE, 201)
    f = np.log(np.cos(np.deg2rad(np.abs(t))) + np.sin(np.deg2rad(np.abs(t))))
    best = np.inf
    for other in (t + angle, t - angle):
        ok = np.abs(other) <= MAX_CROP_ANGLE
        if ok.any():
            g = np.log(np.cos(np.deg2rad(np.abs(other[ok]))) + np.sin(np.deg2rad(np.abs(other[ok]))))
            best = min(best, np.min(np.abs(np.abs(g - f[ok]) - abs(zoom))))
    return best <= ZOOM_STEP / 2 + 1e-9


@lru_cache(maxsize=1)
def _grid() -> tuple[list[tuple[np.ndarray, np.ndarray]], int]:
    """The warped bases of every (angle, zoom) searched, K of them, by zoom then angle; in one block per zoom:
    (the pixels they weigh, the block's bases stacked: (pixels, points*64) float32). A warped window covers a
    third of the pixels on average, so the product per zoom over its pixels only costs 0.43 of a dense one."""
    angles = ANGLE_STEP * np.arange(-int(MAX_ANGLE // ANGLE_STEP), int(MAX_ANGLE // ANGLE_STEP) + 1)
    m = int(np.ceil(MAX_ZOOM / ZOOM_STEP - 1e-9))
    blocks = []
    for zoom in ZOOM_STEP * np.arange(-m, m + 1):
        bases = []
        for a in angles:
            if _zoom_possible(a, zoom):
                t = np.deg2rad(a)
                bases.append(_weights(np.exp(zoom) * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])))
        if bases:
            stacked = np.concatenate(bases, axis=1)
            pixels = np.flatnonzero(np.abs(stacked).sum(axis=1) > 0)
            blocks.append((pixels, stacked[pixels].astype(np.float32)))
    return blocks, sum(w.shape[1] for _, w in blocks) // (FREQS * FREQS)


def _dihedral(coefs: np.ndarray) -> np.ndarray:
    """(..., F, F) DCT coefficients (row, column frequency) -> (..., 8, F, F): those of the window's 8
    rotations by multiples of 90 degrees and flips (a flip negates the odd frequencies along its axis,
    a transpose swaps the axes), the identity first."""
    sign = ((-1.0) ** np.arange(FREQS)).astype(coefs.dtype)
    out = []
    for transpose in (False, True):
        c = np.swapaxes(coefs, -1, -2) if transpose else coefs
        for rows in (1.0, sign[:, None]):
            for cols in (1.0, sign[None, :]):
                out.append(c * rows * cols)
    return np.stack(out, axis=-3)


def _above_median(flat: np.ndarray) -> np.ndarray:
    """(..., F*F) coefficients, row-major, changed in place -> (..., F*F) bool: whether each coefficient but the
    DC is above their median. The DC is set to -inf, below every median: the median of the other 63 is then the
    33rd of the 64."""
    flat[..., 0] = -np.inf
    return flat > np.partition(flat, 32, axis=-1)[..., 32:33]


def _pack(bits: np.ndarray) -> np.ndarray:
    """(..., F*F) bool -> (...,) uint64, in row-major order, the first (the DC's, always 0) highest."""
    return np.packbits(bits, axis=-1).view(">u8")[..., 0].astype(np.uint64)  # FREQS = 8: 64 bits


def _bits(coefs: np.ndarray) -> np.ndarray:
    """(..., F, F) -> (...,) uint64: one bit per coefficient but the DC, set above their median."""
    return _pack(_above_median(coefs.reshape(*coefs.shape[:-2], FREQS * FREQS).copy()))


_U, _V = np.divmod(np.arange(FREQS * FREQS), FREQS)  # row and column frequency of each flat position
#: a window's 4 flips negate the coefficients of odd frequency along their axes: none, the columns, the rows, both
_SIGNS = np.stack([np.ones(FREQS * FREQS), (-1.0) ** _V, (-1.0) ** _U, (-1.0) ** (_U + _V)])


def _transpose_bits(x: np.ndarray) -> np.ndarray:
    """uint64 hashes -> those of the transposed windows: the 8 x 8 bit matrix (a byte a row) transposed in
    three exchanges of bit blocks (Hacker's Delight, 7-3)."""
    for shift, keep, move in ((7, 0xAA55AA55AA55AA55, 0x00AA00AA00AA00AA), (14, 0xCCCC3333CCCC3333, 0x0000CCCC0000CCCC),
                              (28, 0xF0F0F0F00F0F0F0F, 0x00000000F0F0F0F0)):
        s, m = np.uint64(shift), np.uint64(move)
        x = (x & np.uint64(keep)) | ((x & m) << s) | ((x >> s) & m)
    return x


def _dihedral_bits(coefs: np.ndarray) -> np.ndarray:
    """(..., F, F) -> (..., 8) uint64: ``_bits(_dihedral(coefs))``, with half the medians: a transpose only
    moves coefficients (so keeps their median), so the 4 transposed variants' bits are the others' bits, moved
    (a transpose turns a flip of the rows into one of the columns)."""
    flips = coefs.reshape(*coefs.shape[:-2], 1, FREQS * FREQS) * _SIGNS.astype(coefs.dtype)  # (..., 4, 64)
    packed = _pack(_above_median(flips))  # (..., 4)
    return np.concatenate([packed, _transpose_bits(packed[..., [0, 2, 1, 3]])], axis=-1)


def _window_coefs(reduced: np.ndarray) -> np.ndarray:
    """(..., SIZE, SIZE) -> (..., F, F): the DCT of the central window."""
    lo = (SIZE - WINDOW) // 2
    d = _dct()
    return d @ reduced[..., lo:lo + WINDOW, lo:lo + WINDOW] @ d.T


def canonical_hash(img: Image.Image) -> int:
    """A hash of an image that its rotations by multiples of 90 degrees and its flips share: the smallest,
    over the 8 dihedral transforms of the window, of the two channels' 63-bit hashes joined (grey high)."""
    reduced = reduce_image(img)
    transforms = [np.rot90(reduced, k, axes=(1, 2)) for k in range(4)]
    transforms += [t[:, :, ::-1] for t in transforms]
    hashes = _bits(_window_coefs(np.stack(transforms)))  # (8, CHANNELS)
    return min((int(h[0]) << 64) | int(h[1]) for h in hashes)


def hashes(reduced: np.ndarray, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """(N, CHANNELS, SIZE, SIZE) reduced images -> (N, CHANNELS) hashes of each as it is, and
    (N, CHANNELS, V) hashes of each seen through every transform searched (V = 8 x grid, the grid's points
    in order, each with its 8 dihedral transforms). ``progress`` (a tqdm bar) advances by N. The warped DCTs
    of ``CHUNK`` images are one matrix product per zoom."""
    from threadpoolctl import threadpool_limits

    blocks, k = _grid()
    n = len(reduced)
    variants = np.empty((n, CHANNELS, k * 8), dtype=np.uint64)

    def chunk(start: int) -> int:
        stop = min(n, start + CHUNK)
        flat = reduced[start:stop].reshape(-1, SIZE * SIZE).astype(np.float32)
        done = 0
        for pixels, weights in blocks:
            points = weights.shape[1] // (FREQS * FREQS)
            coefs = (flat[:, pixels] @ weights).reshape(stop - start, CHANNELS, points, FREQS, FREQS)
            variants[start:stop, :, done * 8:(done + points) * 8] = _dihedral_bits(coefs).reshape(
                stop - start, CHANNELS, points * 8)
            done += points
        return stop - start

    # a chunk per thread, each product on one BLAS thread: the bits between the products run in parallel too
    with threadpool_limits(1), ThreadPoolExecutor(usable_cpus()) as pool:
        for done in pool.map(chunk, range(0, n, CHUNK)):
            if progress is not None:
                progress.update(done)
    ident = _bits(_window_coefs(reduced))
    return ident, variants


def _verify(ident: np.ndarray, variants: np.ndarray, indptr: np.ndarray, indices: np.ndarray, threshold: int,
            first: int = 0, progress=None) -> np.ndarray:
    """(M, 3) int64 rows (i, first + j, bits) for each listed pair (CSR over j: image j's partners i are
    ``indices[indptr[j]:indptr[j + 1]]``; ``variants`` holds images first, first + 1, ...) whose hashes are
    within ``threshold`` bits: i as it is against j seen through some searched transform. A few threads share
    the rows of j; ``progress`` advances by each block of j done."""
    from pathboard.core.science.hamming import FAR, nearest_variant

    n = len(indptr) - 1
    dist = np.full(len(indices), FAR, dtype=np.uint8)
    blocks = [(lo, min(n, lo + 256)) for lo in range(0, n, 256)]

    def block(rows: tuple[int, int]) -> int:
        nearest_variant(ident, variants, indptr, indices, threshold, rows, dist)
        return rows[1] - rows[0]

    with ThreadPoolExecutor(usable_cpus()) as pool:
        for done in pool.map(block, blocks):
            if progress is not None:
                progress.update(done)
    j = np.repeat(np.arange(first, first + n, dtype=np.int64), np.diff(indptr))
    keep = dist <= threshold
    return np.stack([np.asarray(indices, dtype=np.int64)[keep], j[keep], dist[keep].astype(np.int64)], axis=1)


def near_pairs(ident: np.ndarray, variants: np.ndarray, threshold: int = THRESHOLD) -> np.ndarray:
    """(M, 3) rows (i, j, bits), i != j, where image i as it is and image j seen through some searched transform
    differ in ``bits`` <= ``threshold`` bits (both channels together): every pair compared."""
    n = len(ident)
    step = max(1, 4_000_000 // max(1, n))
    found = []
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        others = np.tile(np.arange(n, dtype=np.int64), hi - lo).reshape(hi - lo, n)
        indices = others[others != np.arange(lo, hi)[:, None]]
        indptr = np.arange(hi - lo + 1, dtype=np.int64) * (n - 1)
        found.append(_verify(ident, variants[lo:hi], indptr, indices, threshold, first=lo))
    return np.concatenate(found) if found else np.zeros((0, 3), dtype=np.int64)


def descriptor(reduced: np.ndarray) -> np.ndarray:
    """(N, 82) float32, standardised per column: per channel, 10 quantiles of the reduced image inside central
    discs of radius 6, 10 and 14 pixels, and its radial power spectrum (11 rings, log): unchanged by rotations
    and flips, moved little by the zooms of LC25000's crops. In float32, ``CHUNK`` x 4 images at a time."""
    from scipy import fft

    c = np.arange(SIZE) - (SIZE - 1) / 2
    r = np.hypot(*np.meshgrid(c, c))
    q = np.linspace(0.05, 0.95, 10)
    discs = [int((r <= radius).sum()) for radius in (6, 10, 14)]
    by_radius = np.argsort(r.ravel(), kind="stable")[:discs[-1]]  # each disc is a prefix of the largest
    # the mean power in each ring of the full spectrum, from the half a real input's FFT needs (the other half
    # mirrors it: every column but the first and the middle stands for two)
    fx, fy = np.fft.rfftfreq(SIZE) * SIZE, np.fft.fftfreq(SIZE) * SIZE
    rings = np.minimum(np.hypot(*np.meshgrid(fx, fy)), 15).astype(int)
    weight = np.broadcast_to(np.where((fx == 0) | (fx == SIZE // 2), 1.0, 2.0), rings.shape)
    means = np.stack([(rings == b) * weight / weight[rings == b].sum() for b in range(1, 12)], -1)
    means = means.reshape(-1, 11).astype(np.float32)
    mask = (r <= 12).astype(np.float32)
    n = len(reduced)
    d = np.empty((n, CHANNELS * (10 * len(discs) + 11)), dtype=np.float64)
    for start in range(0, n, 4 * CHUNK):
        block = reduced[start:start + 4 * CHUNK].astype(np.float32)
        b = len(block)
        pixels = block.reshape(b, CHANNELS, SIZE * SIZE)[:, :, by_radius]
        parts = []
        for size in discs:  # np.quantile's linear interpolation, on one sort per disc
            values = np.sort(pixels[:, :, :size], axis=2)
            at = q * (size - 1)
            lo = np.floor(at).astype(int)
            hi, frac = np.minimum(lo + 1, size - 1), (at - lo).astype(np.float32)
            parts.append((values[..., lo] * (1 - frac) + values[..., hi] * frac).reshape(b, -1))
        spectrum = np.abs(fft.rfft2(block * mask))  # (b, C, SIZE, SIZE // 2 + 1)
        parts.append(np.log1p(spectrum.reshape(b, CHANNELS, -1) @ means).reshape(b, -1))
        d[start:start + b] = np.hstack(parts)
    return ((d - d.mean(axis=0)) / (d.std(axis=0) + 1e-9)).astype(np.float32)


def candidate_pairs(reduced: np.ndarray, k: int = NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """The pairs to verify, as CSR over j (image j's partners i are ``indices[indptr[j]:indptr[j + 1]]``, in
    order): each image's ``k`` nearest by :func:`descriptor`, and the images that have j among theirs (so both
    directions of a pair are tested)."""
    from threadpoolctl import threadpool_limits

    n = len(reduced)
    k = min(k, n - 1)
    d = descriptor(reduced)
    squares = (d * d).sum(axis=1)
    nearest = np.empty((n, k + 1), dtype=np.int64)
    rows = max(1, min(512, (64 << 20) // (16 * n)))  # ~64 MB of distances and their order a thread

    def block(lo: int) -> None:  # the k + 1 nearest of a block of images (their own among them, unless tied)
        dist = squares[lo:lo + rows, None] - 2 * (d[lo:lo + rows] @ d.T) + squares[None, :]
        nearest[lo:lo + rows] = np.argpartition(dist, k, axis=1)[:, :k + 1]

    with threadpool_limits(1), ThreadPoolExecutor(usable_cpus()) as pool:  # a block per thread, one BLAS thread each
        list(pool.map(block, range(0, n, rows)))
    i = np.repeat(np.arange(n, dtype=np.int64), nearest.shape[1])
    j = nearest.ravel().astype(np.int64)
    i, j = i[i != j], j[i != j]
    codes = np.sort(np.concatenate([j * n + i, i * n + j]))  # (j, i) and (i, j), sorted by j then i
    codes = codes[np.r_[True, codes[1:] != codes[:-1]]]
    return np.searchsorted(codes // n, np.arange(n + 1)), codes % n


def candidate_near_pairs(ident: np.ndarray, variants: np.ndarray, partners: tuple[np.ndarray, np.ndarray],
                         threshold: int = THRESHOLD, progress=None) -> np.ndarray:
    """:func:`near_pairs` over the candidates only: (i, j, bits) rows for each i among image j's ``partners``
    (:func:`candidate_pairs`) whose hash as it is lies within ``threshold`` bits of image j seen through some
    searched transform."""
    indptr, indices = partners
    return _verify(ident, variants, indptr, indices, threshold, progress=progress)


def _components(n: int, pairs: Iterable) -> np.ndarray:
    """Per item, the smallest index of its connected component; ``pairs`` (i, j) link items."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    links = np.asarray(pairs if isinstance(pairs, np.ndarray) else list(pairs), dtype=np.int64)
    if links.size == 0:
        links = links.reshape(0, 2)
    if links.ndim != 2 or links.shape[1] != 2:
        raise ValueError(f"_components: pairs of shape {links.shape}, expected (M, 2)")
    graph = coo_matrix((np.ones(len(links), dtype=np.int8), (links[:, 0], links[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    smallest = np.full(labels.max() + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(smallest, labels, np.arange(n))
    return smallest[labels]


def group_images(reduced: np.ndarray, threshold: int = THRESHOLD, max_group: int = MAX_GROUP,
                 what: str = "") -> list[int]:
    """Per image, the index of the first image of its near-duplicate group: exhaustively for at most
    ``EXHAUSTIVE`` images, else among each image's candidates. A group larger than ``max_group`` (chance
    matches chaining groups together) is split again with a stricter threshold, 2 bits at a time. A
    progress bar (where stderr is a terminal) counts the images hashed, then those compared."""
    from tqdm.auto import tqdm

    n = len(reduced)
    with tqdm(total=2 * n, desc=f"{what or 'images'}: near-duplicate groups", unit="img", disable=None,
              leave=False) as bar:
        ident, variants = hashes(reduced, bar)
        if n <= EXHAUSTIVE:
            pairs = near_pairs(ident, variants, threshold)
            bar.update(n)
        else:
            pairs = candidate_near_pairs(ident, variants, candidate_pairs(reduced), threshold, bar)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 3)
    first = _components(n, pairs[:, :2])
    limit = threshold
    while limit > MIN_THRESHOLD:
        big = np.bincount(first, minlength=n) > max_group  # per root
        if not big.any():
            break
        limit -= 2
        pairs = pairs[(pairs[:, 2] <= limit) | ~big[first[pairs[:, 0]]]]  # only ever fewer links
        first = _components(n, pairs[:, :2])
    return first.tolist()


def _cache_key(base: Path, paths: Sequence[str], threshold: int) -> str:
    h = hashlib.sha256(f"near-duplicates v{VERSION} {SIZE} {FREQS} {ANGLE_STEP} {MAX_ANGLE} {ZOOM_STEP} "
                       f"{MAX_CROP_ANGLE} {threshold} {MAX_GROUP} {MIN_THRESHOLD} {NEIGHBOURS} {EXHAUSTIVE}\n"
                       f"{base.resolve()}\n".encode())
    for p in paths:
        try:
            st = os.stat(base / p)
            h.update(f"{p}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        except OSError:  # a missing file (the manifest reports it) is its own group
            h.update(f"{p}\tmissing\n".encode())
    return h.hexdigest()[:32]


def near_duplicate_groups(base: Path, paths: Sequence[str], threshold: int = THRESHOLD, what: str = "",
                          reduced: Mapping[str, np.ndarray] | None = None,
                          open_image: Callable | None = None) -> dict[str, str]:
    """Image path (relative to ``base``) -> its near-duplicate group, named by the first path of the group in
    sorted order. Computed once per set of files and cached under the pathboard cache folder. ``reduced``:
    the :func:`thumbnail` of images already decoded (by the embedding), which are then not read again; the
    others are opened by ``open_image(base, path)`` (a dataset's own, as the embedding opens them; default
    :func:`load`)."""
    paths = sorted(paths)
    if not paths:
        return {}
    cached = _cached_path(base, paths, threshold)
    groups = _read_cached(cached, paths)
    return groups if groups is not None else _find(base, paths, cached, threshold, what, reduced, open_image)


def _find(base: Path, paths: list[str], cached: Path, threshold: int, what: str,
          reduced: Mapping[str, np.ndarray] | None, open_image: Callable | None) -> dict[str, str]:
    """:func:`near_duplicate_groups` of sorted ``paths`` not found in the cache (at ``cached``): found, and cached."""
    reduced = reduced or {}
    unread = sum(p not in reduced for p in paths)
    if unread > 2000:
        print(f"{what or base}: reading {unread:,} images for near-duplicate groups (once; cached under "
              f"{cached.parent})", file=sys.stderr)
    from tqdm.auto import tqdm

    def read(path: str) -> np.ndarray | None:
        if path in reduced:
            return reduced[path]
        try:
            return thumbnail(open_image(base, path)) if open_image else load(base / path)
        except Exception:  # a file that cannot be read is its own group (the manifest or the embedding reports it)
            return None

    with stage("grouping"):
        readable, rows = [], []
        with ThreadPoolExecutor(usable_cpus()) as pool:  # decoding releases the GIL
            for p, r in zip(paths, tqdm(pool.map(read, paths), total=len(paths), unit="img",
                                        disable=None if unread else True, leave=False,
                                        desc=f"{what or base}: reading for near-duplicate groups")):
                if r is not None:
                    rows.append(r)
                    readable.append(p)
        first = group_images(np.stack(rows), threshold, what=what or str(base)) if rows else []
    groups = {p: p for p in paths}
    groups.update({p: readable[r] for p, r in zip(readable, first)})
    write_cached(cached, lambda fh: fh.write(json.dumps(groups).encode()))
    return groups


def _cached_path(base: Path, paths: Sequence[str], threshold: int = THRESHOLD) -> Path:
    return cache_root() / "datasets" / f"near-duplicates-{_cache_key(base, paths, threshold)}.json"


def _read_cached(cached: Path, paths: Sequence[str]) -> dict[str, str] | None:
    try:
        groups = json.loads(cached.read_text())
    except (OSError, ValueError):
        return None
    return groups if isinstance(groups, dict) and set(groups) == set(paths) else None


# -- a dataset's groups, from the images its first embedding decodes ---------------------------------------------

def _classes(manifest) -> list[list[str]]:
    """The manifest's paths, one list per label: copies never cross classes, so groups are found within each."""
    by_label: dict[int, list[str]] = {}
    for path, label in zip(manifest.paths, np.asarray(manifest.labels).tolist()):
        by_label.setdefault(int(label), []).append(path)
    return list(by_label.values())


def groups_cached(manifest) -> bool:
    """Whether every class of the manifest has its near-duplicate groups cached (nothing left to decode)."""
    return all(_cached_path(manifest.root, sorted(paths)).is_file() for paths in _classes(manifest))


def thumbnail_folder(manifest) -> Path:
    """Where the embedding leaves the :func:`thumbnail` of each image it decodes, one file per shard of rows,
    until the groups are found: keyed by the manifest's hash (its paths, file sizes and modification times)."""
    return cache_root() / "datasets" / f"thumbnails-v{VERSION}-{manifest.hash[:32]}"


def thumbnail_folders(root: Path | None = None) -> list[Path]:
    """Every folder of thumbnails in the cache at ``root`` (default: this process's): each is removed once its groups
    are found, so one that stays is an interrupted run's (or its dataset's files changed before the groups were
    found)."""
    folder = (root or cache_root()) / "datasets"
    return sorted(d for d in folder.glob("thumbnails-*") if d.is_dir()) if folder.is_dir() else []


def save_thumbnails(manifest, first: int, rows: np.ndarray) -> None:
    """Keep the thumbnails of the manifest's rows ``first`` onwards ([n, CHANNELS, SIZE, SIZE], NaN where an
    image was not decoded), in one rename."""
    write_cached(thumbnail_folder(manifest) / f"rows-{first:09d}.npy", lambda fh: np.save(fh, rows))


def saved_thumbnails(manifest) -> dict[str, np.ndarray]:
    """Path -> thumbnail, of every row the embedding left a thumbnail of (a damaged file is ignored); memory-mapped,
    so only the one array the grouping stacks them into holds them in memory."""
    out: dict[str, np.ndarray] = {}
    folder = thumbnail_folder(manifest)
    for file in sorted(folder.glob("rows-*.npy")) if folder.is_dir() else []:
        try:
            first, rows = int(file.stem.split("-")[1]), np.load(file, mmap_mode="r")
        except (OSError, ValueError):
            continue
        if rows.ndim != 4 or rows.shape[1:] != (CHANNELS, SIZE, SIZE):
            continue
        for path, row in zip(manifest.paths[first:first + len(rows)], rows):
            if np.isfinite(row).all():
                out[path] = row
    return out


def group_manifest(manifest, what: str = "", open_image: Callable | None = None) -> None:
    """Set each item's Record meta ``"group"`` to its near-duplicate group within its class: from the cache, else
    from the thumbnails the embedding left (only images it did not decode are opened, by ``open_image``), which
    are then removed. One process at a time finds a manifest's groups (a file lock in the cache): another one,
    a Ray unit of another model say, waits and then reads them from the cache."""
    if len(manifest.meta) == len(manifest.paths) and all("group" in m for m in manifest.meta):
        return  # done already in this process
    groups: dict[str, str] = {}
    with _locked(thumbnail_folder(manifest).with_suffix(".lock")):
        thumbnails: dict[str, np.ndarray] | None = None
        for paths in map(sorted, _classes(manifest)):
            cached = _cached_path(manifest.root, paths)
            found = _read_cached(cached, paths)
            if found is None:
                thumbnails = saved_thumbnails(manifest) if thumbnails is None else thumbnails
                found = _find(manifest.root, paths, cached, THRESHOLD, what, thumbnails, open_image)
            groups.update(found)
        shutil.rmtree(thumbnail_folder(manifest), ignore_errors=True)
    if len(manifest.meta) != len(manifest.paths):
        manifest.meta[:] = [{} for _ in manifest.paths]  # the Manifest is frozen: its list is filled in place
    for meta, path in zip(manifest.meta, manifest.paths):
        meta["group"] = groups[path]


@contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path`` (flock) while the block runs; none where the cache cannot hold one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a+b")
    except OSError:
        yield
        return
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
        except OSError:
            pass
        yield
