"""One model's embeddings of anything a task asks for, each computed once and cached by content."""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass

import numpy as np

from pathboard.core.cache import EmbeddingCache, cache_key
from pathboard.core.embed import embed_images
from pathboard.core.errors import PathboardError


@dataclass
class Embedded:
    """A dataset's image embeddings in manifest order (memory-mapped); ``valid`` is False for rows
    whose file could not be read (those rows are NaN)."""

    embeddings: np.ndarray
    valid: np.ndarray
    failed: dict[str, str]
    key: str


class Embedder:
    def __init__(self, spec, load_model, fingerprint: str, runtime, cache: EmbeddingCache, batch_size: int,
                 workers: int):
        self.spec, self.load_model, self.fingerprint, self.runtime = spec, load_model, fingerprint, runtime
        self.cache, self.batch_size, self.workers = cache, batch_size, workers
        self.image_forwards = 0

    def _key(self, **parts) -> str:
        return cache_key(model=self.spec.id, weights=self.fingerprint, precision=self.runtime.precision, **parts)

    def images(self, dataset, manifest) -> Embedded:
        key = self._key(kind="images", manifest=manifest.hash)
        hit = self.cache.get(key)
        if hit is None:
            meta = {"model": self.spec.id, "weights": self.fingerprint, "dataset": dataset.id,
                    "manifest": manifest.hash, "precision": self.runtime.precision, "rows": len(manifest)}
            with self.cache.writer(key, len(manifest), meta) as write:
                failed, forwards = embed_images(self.load_model(), manifest.root, manifest.paths, write,
                                                batch_size=self.batch_size, workers=self.workers,
                                                desc=f"{self.spec.id} x {dataset.id}", open_image=dataset.open_image)
                meta["failed"] = failed
            self.image_forwards += forwards
            hit = self.cache.get(key)
        embeddings, meta = hit
        failed = meta.get("failed", {})
        if failed:
            print(f"warning: {dataset.id}: skipped {len(failed)} unreadable file(s), e.g. "
                  f"{next(iter(failed))}: {next(iter(failed.values()))}", file=sys.stderr)
        valid = np.zeros(len(manifest), dtype=bool)
        if embeddings.shape[1]:
            valid = ~np.isnan(np.asarray(embeddings[:, 0]))
        if not valid.any():
            raise PathboardError(f"no readable images in {manifest.root}")
        return Embedded(embeddings, valid, failed, key)

    def texts(self, texts: list[str]) -> np.ndarray:
        """[T, D] L2-normalised text embeddings, cached per exact list of strings."""
        key = self._key(kind="texts", texts=hashlib.sha256(json.dumps(texts).encode()).hexdigest())
        hit = self.cache.get(key)
        if hit is None:
            self.cache.put(key, self.load_model().encode_texts(texts).numpy(),
                           {"model": self.spec.id, "texts": len(texts)})
            hit = self.cache.get(key)
        return np.asarray(hit[0])
