"""The compiled nearest-variant distances equal numpy's popcounts, pair by pair, threshold included."""
from __future__ import annotations

import numpy as np

from pathboard.core.science.hamming import FAR, nearest_variant


def reference(ident, variants, indptr, indices, threshold):
    out = []
    for j in range(len(indptr) - 1):
        for i in indices[indptr[j]:indptr[j + 1]]:
            d = int(np.bitwise_count(ident[i][:, None] ^ variants[j]).sum(axis=0).min())
            out.append(d if d <= threshold else FAR)
    return np.array(out, dtype=np.uint8)


def test_nearest_variant_matches_numpy_and_fills_only_its_rows():
    rng = np.random.default_rng(0)
    n, channels, v = 40, 2, 24
    ident = rng.integers(0, 2**63, size=(n, channels), dtype=np.uint64)
    variants = rng.integers(0, 2**63, size=(n, channels, v), dtype=np.uint64)
    for j in range(0, n, 3):  # some near matches: a copy of i's hash with a few bits flipped, at a random variant
        i = (j * 7) % n
        flips = rng.choice(64, size=(channels, 1 + j % 40 // channels), replace=True)
        near = ident[i].copy()
        for c in range(channels):
            for b in flips[c]:
                near[c] ^= np.uint64(1) << np.uint64(b)
        variants[j, :, rng.integers(v)] = near
    partners = [np.unique(np.r_[(j * 7) % n, rng.choice(n, 5)]) for j in range(n)]
    indptr = np.r_[0, np.cumsum([len(p) for p in partners])]
    indices = np.concatenate(partners)
    for threshold in (0, 10, 22, 126):
        want = reference(ident, variants, indptr, indices, threshold)
        assert np.array_equal(nearest_variant(ident, variants, indptr, indices, threshold), want), threshold
    assert (want < FAR).all() and ((reference(ident, variants, indptr, indices, 22) < FAR).sum() >= 5)
    out = np.full(len(indices), 7, dtype=np.uint8)
    nearest_variant(ident, variants, indptr, indices, 22, rows=(5, 9), out=out)
    rows = slice(indptr[5], indptr[9])
    assert np.array_equal(out[rows], reference(ident, variants, indptr, indices, 22)[rows])
    assert (np.delete(out, np.arange(indptr[5], indptr[9])) == 7).all()
