"""Hamming distances between binary hashes, compiled: the inner loop of near-duplicate grouping.

:func:`nearest_variant` gives, for each listed pair (i, j), the fewest bits in which image i's hash differs from
any one of image j's variant hashes (j seen through each searched transform), stopping a variant early once it
is past the threshold. numpy would build every XOR and popcount as an array first: for 15,000 images with ~100
candidates each and 920 variants that is 2.8 x 10^9 elements per pass, about 20 s against ~1 s here. The
popcount is LLVM's ``ctpop`` (one instruction where the CPU has it). Compiled once (~1 s) and cached under the
pathboard cache folder (``<cache>/numba``, unless ``NUMBA_CACHE_DIR`` says otherwise), so a read-only install
still caches it; where no folder can hold it, it is compiled in every process instead.
"""
from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.core import config
from numba.extending import intrinsic

from pathboard.core.paths import cache_root

if not config.CACHE_DIR:  # numba's own setting (NUMBA_CACHE_DIR) wins
    config.CACHE_DIR = str(cache_root() / "numba")

#: the distance written for a pair that no variant brings within the threshold
FAR = 255


@intrinsic
def _popcount(typingctx, x):
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.call(builder.module.declare_intrinsic("llvm.ctpop", [args[0].type]), args)

    return types.uint64(types.uint64), codegen


def _nearest_variant(ident, variants, indptr, indices, threshold, rows, out):  # pragma: no cover - compiled
    channels, n_variants = variants.shape[1], variants.shape[2]
    for j in range(rows[0], rows[1]):
        for q in range(indptr[j], indptr[j + 1]):
            i = indices[q]
            best = FAR
            for v in range(n_variants):
                d = 0
                for c in range(channels):
                    d += np.int64(_popcount(ident[i, c] ^ variants[j, c, v]))
                    if d > threshold:
                        break
                if d < best:
                    best = d
            out[q] = best if best <= threshold else FAR


try:
    _nearest_variant = njit(nogil=True, cache=True)(_nearest_variant)
except RuntimeError:  # "cannot cache function ...: no locator available": no writable folder for the cache
    _nearest_variant = njit(nogil=True)(_nearest_variant)


def nearest_variant(ident: np.ndarray, variants: np.ndarray, indptr: np.ndarray, indices: np.ndarray,
                    threshold: int, rows: tuple[int, int] | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """``ident`` (N, C) and ``variants`` (N, C, V) uint64 hashes; the pairs as CSR over j: image j's partners i
    are ``indices[indptr[j]:indptr[j + 1]]``. Returns (or fills, for the rows ``rows`` of j) ``out[q]``: the
    smallest Hamming distance, over the C channels together, between ``ident[i]`` and one of ``variants[j, :, v]``,
    or :data:`FAR` where none is within ``threshold``. Releases the GIL, so threads can share the rows."""
    if out is None:
        out = np.full(len(indices), FAR, dtype=np.uint8)
    lo, hi = rows if rows is not None else (0, len(indptr) - 1)
    _nearest_variant(np.ascontiguousarray(ident, dtype=np.uint64), np.ascontiguousarray(variants, dtype=np.uint64),
                     np.asarray(indptr, dtype=np.int64), np.asarray(indices, dtype=np.int64), int(threshold),
                     np.array([lo, hi], dtype=np.int64), out)
    return out
