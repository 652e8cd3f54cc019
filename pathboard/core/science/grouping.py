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
at most ``THRESHOLD`` of the 126 bits are near duplicates; groups are the connected components (union-find).

Comparing every pair costs ~1,840 popcounts a pair: minutes for 5,000 images, hours for 10^5. So each image
is compared only with its ``NEIGHBOURS`` candidates (:func:`candidate_pairs`): its nearest images by a
descriptor that rotations and flips leave unchanged and small zooms barely move (each channel's quantiles
inside three central discs, and its radial power spectrum). Every candidate is verified by the exact test
above, so no link is false. On the real LC25000 lung sample (600 images at once) 146 of the 147 links of
comparing every pair are found (the one missed is 22 bits apart, at the threshold); on sets of 1,000 to
5,000 augmented copies of it (``benchmarks/grouping.py``) 98-100% of the links are, every pair of copies of
one original stays in one group, and fewer chance links join different originals. The exhaustive
:func:`near_pairs` remains, for sets of at most ``EXHAUSTIVE`` images (a class of the real sample) and for
checking. A group of more than ``MAX_GROUP`` images (LC25000 has about 20 copies
of each original, so chance matches must have chained groups together) is split again with a stricter
threshold. Results are cached under the pathboard cache folder, keyed by the files' paths, sizes and
mtimes.

Measured on the real LC25000 lung sample (600 images of 224 px, 200 a class; ``tests/core/science/test_grouping.py``):
rotated, flipped and small-angle rotated and zoomed copies of its images land in their source's group,
and no group mixes classes (no pair of images of different classes is within 24 bits). numpy, PIL and
scikit-learn's nearest neighbours.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from pathboard.core.errors import PathboardError
from pathboard.core.media.images import open_rgb
from pathboard.core.paths import cache_root, write_cached
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
VERSION = 2  # bump when anything above changes: it keys the cache
GREY = np.array([0.299, 0.587, 0.114], dtype=np.float64)


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
    ry, rx = _reduction(h), _reduction(w)
    chans = np.stack([rgb @ GREY, rgb[..., 0] - rgb[..., 2]])
    out = np.einsum("ij,cjk,lk->cil", ry, chans, rx, optimize=True)
    return out - out.mean(axis=(1, 2), keepdims=True)


def load(path: Path) -> np.ndarray:
    """:func:`reduce_image` of an image file read by :func:`pathboard.core.media.images.open_rgb` (a JPEG is decoded
    at the smallest scale that is at least SIZE). Raises its one-line PathboardError for a file it refuses."""
    return reduce_image(open_rgb(path, draft=(SIZE, SIZE)))


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
def _grid() -> tuple[np.ndarray, int]:
    """The stacked warped bases of every (angle, zoom) searched, the identity first: (SIZE*SIZE, K*64), K."""
    angles = ANGLE_STEP * np.arange(-int(MAX_ANGLE // ANGLE_STEP), int(MAX_ANGLE // ANGLE_STEP) + 1)
    m = int(np.ceil(MAX_ZOOM / ZOOM_STEP - 1e-9))
    zooms = ZOOM_STEP * np.arange(-m, m + 1)
    params = [(0.0, 0.0)] + [(a, z) for a in angles for z in zooms if (a, z) != (0.0, 0.0) and _zoom_possible(a, z)]
    blocks = []
    for a, z in params:
        t = np.deg2rad(a)
        blocks.append(_weights(np.exp(z) * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])))
    return np.concatenate(blocks, axis=1).astype(np.float32), len(params)


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


def _above_median(coefs: np.ndarray) -> np.ndarray:
    """(..., F, F) -> (..., F*F - 1) bool: each coefficient but the DC, whether it is above their median."""
    flat = coefs.reshape(*coefs.shape[:-2], FREQS * FREQS)[..., 1:]
    middle = (flat.shape[-1] - 1) // 2
    return flat > np.partition(flat, middle, axis=-1)[..., middle:middle + 1]


def _pack(bits: np.ndarray) -> np.ndarray:
    """(..., 63) bool -> (...,) uint64, the first bit highest (packbits pads the 64th with a zero)."""
    return np.packbits(bits, axis=-1).view(">u8")[..., 0].astype(np.uint64)


def _bits(coefs: np.ndarray) -> np.ndarray:
    """(..., F, F) -> (...,) uint64: one bit per coefficient but the DC, set above their median."""
    return _pack(_above_median(coefs))


#: a transposed window's bits, from those of the untransposed one with its row and column signs swapped:
#: the same coefficients (so the same median), each at its transposed place
_SWAPPED = [0, 2, 1, 3]
_TRANSPOSED = (np.arange(FREQS * FREQS).reshape(FREQS, FREQS).T.ravel()[1:] - 1)


def _dihedral_bits(coefs: np.ndarray) -> np.ndarray:
    """(..., F, F) -> (..., 8) uint64: ``_bits(_dihedral(coefs))``, with half the medians: a transpose only
    moves coefficients, so the 4 transposed variants' bits are the others' bits, moved."""
    sign = ((-1.0) ** np.arange(FREQS)).astype(coefs.dtype)
    flips = [coefs, coefs * sign[None, :], coefs * sign[:, None], coefs * sign[:, None] * sign[None, :]]
    bits = _above_median(np.stack(flips, axis=-3))  # (..., 4, 63)
    transposed = bits[..., _SWAPPED, :][..., _TRANSPOSED]
    return _pack(np.concatenate([bits, transposed], axis=-2))


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
    (N, CHANNELS, V) hashes of each seen through every transform searched (V = 8 x grid). ``progress`` (a
    tqdm bar) advances by N over the whole computation. Every image goes through one product per block of
    the grid: a different blocking of the images would round differently and could flip a bit."""
    weights, k = _grid()
    n = len(reduced)
    flat = reduced.reshape(n * CHANNELS, SIZE * SIZE).astype(np.float32)
    variants = np.empty((n, CHANNELS, k * 8), dtype=np.uint64)
    step = 64 * 16  # 16 grid points at a time
    done = 0
    for start in range(0, weights.shape[1], step):
        coefs = (flat @ weights[:, start:start + step]).reshape(n, CHANNELS, -1, FREQS, FREQS)
        bits = _dihedral_bits(coefs)  # (n, CHANNELS, g, 8)
        g = bits.shape[2]
        variants[:, :, start // 64 * 8:(start // 64 + g) * 8] = bits.reshape(n, CHANNELS, g * 8)
        if progress is not None:
            now = n * min(weights.shape[1], start + step) // weights.shape[1]
            progress.update(now - done)
            done = now
    ident = _bits(_window_coefs(reduced))
    return ident, variants


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
    return table[x.view(np.uint8)].reshape(*x.shape, 8).sum(axis=-1, dtype=np.uint8)


def near_pairs(ident: np.ndarray, variants: np.ndarray, threshold: int = THRESHOLD) -> list[tuple[int, int, int]]:
    """(i, j, bits), i != j, where image i as it is and image j seen through some searched transform differ
    in ``bits`` <= ``threshold`` bits (both channels together)."""
    n, _, v = variants.shape
    rows = max(1, int(4_000_000 // max(1, n * v * CHANNELS)))
    pairs = []
    for start in range(0, n, rows):
        a = ident[start:start + rows]  # (r, C)
        dist = _popcount(a[:, None, :, None] ^ variants[None]).sum(axis=2, dtype=np.uint16).min(axis=-1)
        for i, j in zip(*np.nonzero(dist <= threshold)):
            if start + i != j:
                pairs.append((int(start + i), int(j), int(dist[i, j])))
    return pairs


def descriptor(reduced: np.ndarray) -> np.ndarray:
    """(N, 82) float32, standardised per column: per channel, 10 quantiles of the reduced image inside central
    discs of radius 6, 10 and 14 pixels, and its radial power spectrum (11 rings, log): unchanged by rotations
    and flips, moved little by the zooms of LC25000's crops."""
    c = np.arange(SIZE) - (SIZE - 1) / 2
    x, y = np.meshgrid(c, c)
    r = np.hypot(x, y)
    n = len(reduced)
    q = np.linspace(0.05, 0.95, 10)
    parts = [np.quantile(reduced[:, :, r <= radius], q, axis=2).transpose(1, 2, 0).reshape(n, -1)
             for radius in (6, 10, 14)]
    spectrum = np.abs(np.fft.fft2(reduced * (r <= 12)))
    rings = np.minimum(np.hypot(*np.meshgrid(np.fft.fftfreq(SIZE) * SIZE, np.fft.fftfreq(SIZE) * SIZE)), 15).astype(int)
    parts.append(np.log1p(np.stack([spectrum[:, :, rings == b].mean(axis=2) for b in range(1, 12)], 2)).reshape(n, -1))
    d = np.hstack(parts)
    return ((d - d.mean(axis=0)) / (d.std(axis=0) + 1e-9)).astype(np.float32)


def candidate_pairs(reduced: np.ndarray, k: int = NEIGHBOURS) -> list[np.ndarray]:
    """Per image j, the images i whose pair with j is verified: each image's ``k`` nearest by
    :func:`descriptor`, and the images that have j among theirs (so both directions of a pair are tested)."""
    from sklearn.neighbors import NearestNeighbors

    n = len(reduced)
    k = min(k, n - 1)
    _, nearest = NearestNeighbors(n_neighbors=k + 1).fit(d := descriptor(reduced)).kneighbors(d)
    partners: list[set] = [set() for _ in range(n)]
    for i, row in enumerate(nearest):
        for j in row.tolist():
            if j != i:
                partners[j].add(i)
                partners[i].add(j)
    return [np.fromiter(sorted(p), dtype=np.int64, count=len(p)) for p in partners]


def candidate_near_pairs(ident: np.ndarray, variants: np.ndarray, partners: list[np.ndarray],
                         threshold: int = THRESHOLD, progress=None) -> list[tuple[int, int, int]]:
    """:func:`near_pairs` over the candidates only: (i, j, bits) for each i in ``partners[j]`` whose hash as it
    is lies within ``threshold`` bits of image j seen through some searched transform. Each block of images j
    is compared with its partners at once (their hashes padded), so j's transforms are read once."""
    n, _, v = variants.shape
    width = max((len(p) for p in partners), default=0)
    block = max(1, int(4_000_000 // max(1, width * v * CHANNELS)))
    pairs = []
    for start in range(0, n, block):
        stop = min(n, start + block)
        padded = np.full((stop - start, width), -1, dtype=np.int64)
        for row, p in enumerate(partners[start:stop]):
            padded[row, :len(p)] = p
        a = ident[np.maximum(padded, 0)]  # (b, width, C)
        dist = _popcount(a[:, :, :, None] ^ variants[start:stop, None]).sum(axis=2, dtype=np.uint16).min(axis=-1)
        for row, col in zip(*np.nonzero((dist <= threshold) & (padded >= 0))):
            pairs.append((int(padded[row, col]), start + int(row), int(dist[row, col])))
        if progress is not None:
            progress.update(stop - start)
    return pairs


def _components(n: int, pairs: Iterable[tuple[int, int]]) -> list[int]:
    """Per item, the smallest index of its connected component (union-find)."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    return [root(i) for i in range(n)]


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
    first = _components(len(reduced), [(i, j) for i, j, _ in pairs])
    limit = threshold
    while limit > MIN_THRESHOLD:
        sizes: dict[int, int] = {}
        for r in first:
            sizes[r] = sizes.get(r, 0) + 1
        big = {r for r, size in sizes.items() if size > max_group}
        if not big:
            break
        limit -= 2
        pairs = [(i, j, d) for i, j, d in pairs if d <= limit or first[i] not in big]  # only ever fewer links
        first = _components(len(reduced), [(i, j) for i, j, _ in pairs])
    return first


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


def near_duplicate_groups(base: Path, paths: Sequence[str], threshold: int = THRESHOLD,
                          what: str = "") -> dict[str, str]:
    """Image path (relative to ``base``) -> its near-duplicate group, named by the first path of the group in
    sorted order. Computed once per set of files and cached under the pathboard cache folder."""
    paths = sorted(paths)
    if not paths:
        return {}
    cached = cache_root() / "datasets" / f"near-duplicates-{_cache_key(base, paths, threshold)}.json"
    if cached.is_file():
        try:
            groups = json.loads(cached.read_text())
            if isinstance(groups, dict) and set(groups) == set(paths):
                return groups
        except (OSError, ValueError):
            pass
    if len(paths) > 2000:
        print(f"{what or base}: grouping {len(paths):,} images into near-duplicate groups (once; cached under "
              f"{cached.parent})", file=sys.stderr)
    from tqdm.auto import tqdm

    with stage("grouping"):
        readable, reduced = [], []
        # a file that cannot be read is its own group (the manifest or the embedding reports it)
        for p in tqdm(paths, desc=f"{what or base}: reading for near-duplicate groups", unit="img", disable=None,
                      leave=False):
            try:
                reduced.append(load(base / p))
                readable.append(p)
            except PathboardError:
                pass
        first = group_images(np.stack(reduced), threshold, what=what or str(base)) if reduced else []
    groups = {p: p for p in paths}
    groups.update({p: readable[r] for p, r in zip(readable, first)})
    write_cached(cached, lambda fh: fh.write(json.dumps(groups).encode()))
    return groups
