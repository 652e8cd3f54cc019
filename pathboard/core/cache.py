"""Content-addressed embedding cache: one directory per key, published with an atomic rename.

``<cache root>/embeddings/<key[:2]>/<key>/{embeddings.npy,meta.json}``. A key is the sha256 of
everything that determines the vectors, so any task and prompt mode reusing them gets identical
numbers, and a half-written entry is never visible (it lives in ``tmp/`` until renamed).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

#: bump when the stored layout or the embedding code changes meaning. 2: keys name the model's preprocessing
#: and tokenizer (model_identity) and non-finite rows count as failed items
FORMAT = 2


def cache_key(**parts) -> str:
    return hashlib.sha256(json.dumps({"format": FORMAT, **parts}, sort_keys=True).encode()).hexdigest()


class EmbeddingCache:
    def __init__(self, root: Path):
        self.root = Path(root) / "embeddings"

    def _dir(self, key: str) -> Path:
        return self.root / key[:2] / key

    def get(self, key: str) -> tuple[np.ndarray, dict] | None:
        """The stored array (memory-mapped: nothing is read until used) and its metadata."""
        d = self._dir(key)
        try:
            meta = json.loads((d / "meta.json").read_text())
            return np.load(d / "embeddings.npy", mmap_mode="r"), meta
        except (OSError, ValueError):
            return None

    @contextmanager
    def writer(self, key: str, rows: int, meta: dict):
        """Yield ``write(start, array)``; rows never written stay NaN. Published only on success."""
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=key[:12] + ".", dir=self.root / "tmp"))
        store: list[np.ndarray] = []

        def write(start: int, array: np.ndarray) -> None:
            if not store:
                store.append(np.lib.format.open_memmap(tmp / "embeddings.npy", mode="w+", dtype=np.float32,
                                                       shape=(rows, array.shape[1])))
                store[0][:] = np.nan
            store[0][start : start + len(array)] = array

        try:
            yield write
            if not store:  # nothing could be embedded; keep an honest empty entry
                np.save(tmp / "embeddings.npy", np.full((rows, 0), np.nan, dtype=np.float32))
            else:
                store[0].flush()
                del store[0]
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
            final = self._dir(key)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(tmp, final)
            except OSError:  # another process published the same key first: keep theirs
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def put(self, key: str, array: np.ndarray, meta: dict) -> None:
        with self.writer(key, len(array), meta) as write:
            write(0, array)
