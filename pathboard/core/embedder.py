"""One model's embeddings of anything a task asks for, each computed once and cached by content."""
from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from pathboard.core.cache import EmbeddingCache, cache_key
from pathboard.core.embed import embed_images
from pathboard.core.errors import PathboardError
from pathboard.core.tiling import SlideTiles, Tiling, open_slide, tile_grid


@dataclass
class Embedded:
    """A dataset's image embeddings in manifest order (memory-mapped); ``valid`` is False for rows
    whose file could not be read (those rows are NaN)."""

    embeddings: np.ndarray
    valid: np.ndarray
    failed: dict[str, str]
    key: str


@dataclass
class SlideEmbedding:
    """The tissue tiles of one slide: [T, D] embeddings, [T, 2] level-0 coordinates, tiling facts."""

    embeddings: np.ndarray
    coords: np.ndarray
    info: dict


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

    def slide(self, dataset, manifest, path: str, tiling: Tiling) -> SlideEmbedding:
        """Tile one slide's tissue and embed the tiles, cached with their coordinates.

        Raises PathboardError (one line) for a slide that cannot be opened, has no resolution
        metadata, or has no tissue; callers report it and go on with the next slide.
        """
        file = manifest.root / path
        key = self._key(kind="slide", dataset=dataset.id, path=path, bytes=os.stat(file).st_size,
                        tiling=tiling.key())
        hit = self.cache.get(key)
        if hit is None:
            slide = open_slide(file)
            grid = tile_grid(slide, tiling, name=path)
            if not len(grid.coords):
                raise PathboardError(f"{path}: no tissue found (tissue covers {grid.tissue_fraction:.1%} of the "
                                     f"thumbnail, below {tiling.min_tissue:.0%} in every tile)")
            info = {"level": grid.level, "size0": grid.size0, "slide_mpp": grid.slide_mpp,
                    "mpp_source": grid.mpp_source, "tissue_fraction": grid.tissue_fraction,
                    "dimensions": list(slide.dimensions)}
            meta = {"model": self.spec.id, "dataset": dataset.id, "slide": path, "info": info,
                    "coords": grid.coords.tolist()}
            model = self.load_model()
            tiles = torch.utils.data.DataLoader(SlideTiles(file, grid, tiling.size, model.preprocess),
                                                batch_size=self.batch_size, num_workers=self.workers)
            with self.cache.writer(key, len(grid.coords), meta) as write:
                start = 0
                for batch in tqdm(tiles, desc=f"{self.spec.id} x {path}", unit="batch", disable=None, leave=False):
                    write(start, model.encode_images(batch).numpy())
                    start += len(batch)
                    self.image_forwards += 1
            hit = self.cache.get(key)
        embeddings, meta = hit
        return SlideEmbedding(np.asarray(embeddings), np.asarray(meta["coords"], dtype=np.int64).reshape(-1, 2),
                              meta["info"])
