"""The embedder of a slide model: its patch encoder's tile features (shared), then one embedding per slide.

A :class:`SlideEmbedder` reads tiles through the :class:`~pathboard.core.embedding.embedder.Embedder` of the slide
model's patch encoder, so the tiles are cached under the patch encoder's own keys: every slide model over that
encoder, and the encoder's own slide tasks at the same tiling, read the same entries, and a second slide model
embeds no tile. With a :class:`~pathboard.core.media.features.FeatureFolder` (``--features``) the tiles are read
from TRIDENT-layout files instead, and nothing is embedded at all. Slide embeddings are cached per slide model
and exact tile set.
"""
from __future__ import annotations

import sys
from collections.abc import Mapping

import numpy as np

from pathboard.core.embedding.embedder import Embedder
from pathboard.core.errors import PathboardError, first_line
from pathboard.core.interfaces.embeddings import SlideEmbedding, TileSet
from pathboard.core.media.features import FeatureFolder
from pathboard.core.media.tiling import Tiling
from pathboard.core.science.metrics import normalised
from pathboard.core.timing import stage

#: what the patch encoder's embedding costs, counted as this slide model's too (its cost rows); forward passes are
#: not: they are counted once, on the patch encoder's embedder, which every run counts as well
COUNTERS = ("images_embedded", "tiles_embedded", "embed_seconds")


class SlideEmbedder(Embedder):
    def __init__(self, spec, load_model, fingerprint: str, runtime, cache, batch_size: int, workers: int, *,
                 patch: Embedder | None, features: Mapping[str, FeatureFolder] | None = None):
        super().__init__(spec, load_model, fingerprint, runtime, cache, batch_size, workers)
        #: the patch encoder's embedder (None when ``features`` give every dataset's tiles); dataset id ("*":
        #: every dataset) -> the features folder its tiles are read from
        self.patch, self.features = patch, dict(features or {})
        #: slides encoded by the slide model in this process (cache hits excluded)
        self.slides_encoded = 0

    def folder(self, dataset) -> FeatureFolder | None:
        return self.features.get(dataset.id) or self.features.get("*")

    def _patch(self, dataset) -> Embedder:
        if self.patch is None:
            raise PathboardError(f"{self.spec.id} x {dataset.id}: no --features for this dataset, and the patch "
                                 f"encoder {self.spec.patch_encoder} was not resolved")
        return self.patch

    def images(self, dataset, manifest, perturbation=None, seed: int = 0):
        raise PathboardError(f"{self.spec.id} is a slide encoder: it embeds no images of {dataset.id}")

    def pending_slides(self, dataset, manifest, tiling: Tiling, items: str = "evaluated") -> list[str]:
        return [] if self.folder(dataset) else self._patch(dataset).pending_slides(dataset, manifest, tiling, items)

    def slide(self, dataset, manifest, path: str, tiling: Tiling) -> SlideEmbedding:
        """One slide's tile features: read from ``--features``, or embedded by the patch encoder (cached under
        its keys); what the patch encoder embedded counts as this model's cost."""
        folder = self.folder(dataset)
        if folder is not None:
            features, coords, info, key = folder.read(path)
            return SlideEmbedding(features, coords, info, key=key)
        patch = self._patch(dataset)
        before = [getattr(patch, name) for name in COUNTERS]
        try:
            return patch.slide(dataset, manifest, path, tiling)
        finally:
            for name, was in zip(COUNTERS, before):
                setattr(self, name, getattr(self, name) + getattr(patch, name) - was)

    def slide_vectors(self, tiles: TileSet, dataset_id: str = "") -> tuple[dict, dict]:
        """(item path -> the slide model's representation of each tiled slide, L2-normalised; item path -> that
        slide in the text space), each cached per exact tile set. A slide the encoder cannot encode (or encodes to
        non-finite values) is taken out of ``tiles`` as failed, with one line; the others go on."""
        representation, text = {}, {}
        runtime = getattr(self.load_model, "runtime", self.runtime)  # where it runs (a Ray worker's may differ)
        for path, _ in list(tiles.items()):
            slide = tiles[path]
            keys = [self._key(kind=kind, tiles=slide.key, encoded_as=runtime.precision)
                    for kind in ("slide-embedding", "slide-text-embedding")]
            try:
                cached = [self.cache.get(key) for key in keys]
                hits: list = self._encode(slide, path, dataset_id, keys) if None in cached else cached
            except (PathboardError, ValueError, RuntimeError) as exc:
                tiles.drop(path, f"{self.spec.id} could not encode it: {first_line(exc)}")
                print(f"warning: {dataset_id}: skipped {path}: {tiles.failed[path]}", file=sys.stderr)
                continue
            representation[path] = normalised(np.asarray(hits[0][0][:1]))[0]
            text[path] = np.asarray(hits[1][0][0], dtype=np.float32)
        return representation, text

    def _encode(self, slide: SlideEmbedding, path: str, dataset_id: str, keys: list[str]) -> list:
        """Encode one slide, cache its representation and text-space embedding under ``keys``, read them back."""
        if not len(slide.embeddings):
            raise PathboardError("it has no tiles")
        with stage("slide encoding"):
            model = self.load_model()
            vector = np.asarray(model.encode_slide(np.asarray(slide.embeddings, dtype=np.float32),
                                                   np.asarray(slide.coords), int(slide.info["size0"])),
                                dtype=np.float32).reshape(1, -1)
            projected = np.asarray(model.to_text(vector[0]), dtype=np.float32).reshape(1, -1)
            if not (np.isfinite(vector).all() and np.isfinite(projected).all()):
                raise PathboardError("its slide embedding is not finite (NaN/inf); try --precision fp32")
            meta = {"model": self.spec.id, "dataset": dataset_id, "slide": path, "tiles": slide.key}
            for key, array in zip(keys, (vector, projected)):
                self.cache.put(key, array, meta)
            self.slides_encoded += 1
        return [self.cache.read_back(key) for key in keys]
