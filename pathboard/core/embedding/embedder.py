"""Embedding: stream a dataset's images, or a slide's tissue tiles, through one model in batches,
straight into the content-addressed cache; each thing is computed once.

:class:`Embedder` owns every cached embedding a cell may read (a dataset's images, texts, the
tiles of slides at a tiling); the runner asks it for exactly what the plan named.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from pathboard.core.embedding.cache import EmbeddingCache, cache_key
from pathboard.core.errors import PathboardError, first_line
from pathboard.core.interfaces.embeddings import Embedded, SlideEmbedding, TileSet
from pathboard.core.interfaces.task import tiled_items
from pathboard.core.media.images import open_item
from pathboard.core.media.tiling import NoResolutionError, TileGrid, Tiling, open_slide, tile_grid, tile_stride
from pathboard.core.science import grouping
from pathboard.core.timing import stage

if TYPE_CHECKING:
    from torch.utils.data import DataLoader

#: rows per shard of a dataset's image embeddings: a killed run redoes at most one shard
SHARD_ROWS = 4096


def shard_rows() -> int:
    """Rows per shard (``PATHBOARD_SHARD_ROWS`` overrides ``SHARD_ROWS``)."""
    try:
        return max(1, int(os.environ.get("PATHBOARD_SHARD_ROWS", SHARD_ROWS)))
    except ValueError:
        raise PathboardError(f"PATHBOARD_SHARD_ROWS={os.environ['PATHBOARD_SHARD_ROWS']!r}: give a whole number "
                             "of rows") from None


class _Shard:
    """One shard's rows in memory (a few thousand embeddings, and the thumbnails of the images decoded for them,
    when they are kept); rows never written stay NaN."""

    def __init__(self, rows: int):
        self.array = np.full((rows, 0), np.nan, dtype=np.float32)
        self.thumbnails: np.ndarray | None = None

    def write(self, start: int, array: np.ndarray) -> None:
        if not self.array.shape[1]:
            self.array = np.full((len(self.array), array.shape[1]), np.nan, dtype=np.float32)
        self.array[start:start + len(array)] = array

    def thumbnail(self, row: int, thumb: np.ndarray) -> None:
        if self.thumbnails is None:
            self.thumbnails = np.full((len(self.array), *thumb.shape), np.nan, dtype=np.float32)
        self.thumbnails[row] = thumb


# The datasets below are plain map-style datasets (``__len__``, ``__getitem__``), which is all a DataLoader needs:
# torch is imported only where a batch is made, so a run that finds everything cached never imports it (~1.2 s).


class ImageFiles:
    """Decodes and preprocesses one image per item in a worker; a file that fails comes back as its error.
    With ``thumbnail`` (a module function of the decoded image, e.g.
    :func:`pathboard.core.science.grouping.thumbnail`) each item also brings what it makes of the same decode."""

    def __init__(self, root: Path, paths: list[str], preprocess: Callable, open_image: Callable | None = None,
                 thumbnail: Callable | None = None):
        self.root, self.paths, self.preprocess = root, paths, preprocess
        self.open_image = open_image or open_item
        self.thumbnail = thumbnail

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            img = self.open_image(self.root, self.paths[i])
            x = self.preprocess(img)
        except Exception as exc:
            return i, None, f"{type(exc).__name__}: {exc}".splitlines()[0], None
        try:
            return i, x, None, self.thumbnail(img) if self.thumbnail else None
        except Exception:  # no thumbnail: the image is read again where one is needed
            return i, x, None, None


def _collate(batch):
    """(indices, stacked images or None, [(index, error)], [(index, thumbnail)])."""
    import torch

    ok = [(i, x) for i, x, _, _ in batch if x is not None]
    failed = [(i, err) for i, _, err, _ in batch if err is not None]
    thumbnails = [(i, t) for i, x, _, t in batch if x is not None and t is not None]
    indices = [i for i, _ in ok]
    images = torch.stack([x for _, x in ok]) if ok else None
    return indices, images, failed, thumbnails


def _out_of_memory(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", RuntimeError)
    return isinstance(exc, oom) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


class Backoff:
    """``model.encode_images`` that survives running out of accelerator memory: on an out-of-memory error
    the batch is split in half and retried, and every later batch of the run is cut to that size, instead of
    the run failing. One image that does not fit is a one-line error."""

    def __init__(self, model):
        self.model, self.limit = model, None

    def __call__(self, images) -> np.ndarray:
        step = self.limit or len(images)
        out, start = [], 0
        while start < len(images):
            chunk = images[start:start + step]
            try:
                out.append(self.model.encode_images(chunk).numpy())
            except Exception as exc:
                if not _out_of_memory(exc):
                    raise
                if len(chunk) == 1:
                    raise PathboardError("out of memory embedding a single image; use --precision bf16 or a "
                                         "smaller model input") from None
                import torch

                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                step = self.limit = max(1, len(chunk) // 2)
                print(f"warning: out of memory at {len(chunk)} images per forward pass; going on with {step} "
                      f"(pass --batch-size {step} to start there)", file=sys.stderr)
                continue
            start += len(chunk)
        return out[0] if len(out) == 1 else np.concatenate(out)


def _loader(dataset, batch_size: int, workers: int, device: str, collate_fn=None, cuts=()) -> DataLoader:
    """A DataLoader that keeps an accelerator fed: pinned memory (copied with ``non_blocking``) on CUDA, and
    workers that prefetch a few batches each while the model runs. Batches never straddle a position in
    ``cuts`` (shard boundaries: a shard is embedded in the same batches however the run is split up, so its
    embeddings are bit-identical after a resume or on another worker)."""
    from torch.utils.data import DataLoader

    extra = {"prefetch_factor": 4} if workers else {}
    edges = sorted({0, len(dataset), *(c for c in cuts if 0 < c < len(dataset))})
    batches = [list(range(i, min(i + batch_size, stop))) for start, stop in zip(edges, edges[1:])
               for i in range(start, stop, batch_size)]
    return DataLoader(dataset, batch_sampler=batches, num_workers=workers, collate_fn=collate_fn,
                      pin_memory=device.startswith("cuda"), **extra)


def image_batches(model, root: Path, paths: list[str], *, batch_size: int, workers: int, desc: str,
                  open_image: Callable | None = None, cuts=(), thumbnail: Callable | None = None):
    """Yield (indices into ``paths``, [n, D] embeddings, [(index, error)], [(index, thumbnail)]) per batch, in
    order: the indices of a batch and of its failed files together cover a consecutive run of ``paths``, never
    across ``cuts``. Thumbnails come only with ``thumbnail`` (see :class:`ImageFiles`)."""
    device = getattr(getattr(model, "runtime", None), "device", "cpu")
    loader = _loader(ImageFiles(root, paths, model.preprocess, open_image, thumbnail), batch_size, workers, device,
                     _collate, cuts)
    encode = Backoff(model)
    with tqdm(total=len(paths), desc=desc, unit="img", disable=None, leave=False) as bar:
        for indices, images, errors, thumbnails in loader:
            yield indices, (encode(images) if images is not None else None), errors, thumbnails
            bar.update(len(indices) + len(errors))


def embed_images(model, root: Path, paths: list[str], write: Callable, *, batch_size: int, workers: int,
                 desc: str, open_image: Callable | None = None) -> tuple[dict[str, str], int]:
    """Embed ``paths`` in order, calling ``write(start_row, array)`` per batch.

    Returns ({relative path: error} for unreadable files, number of forward passes).
    """
    failed: dict[str, str] = {}
    forwards = 0
    for indices, feats, errors, _ in image_batches(model, root, paths, batch_size=batch_size, workers=workers,
                                                   desc=desc, open_image=open_image):
        for i, err in errors:
            failed[paths[i]] = err
        if feats is not None:
            forwards += 1
            for start, stop in _runs(indices):
                write(indices[start], feats[start:stop])
    return failed, forwards


def _runs(indices: list[int]):
    """(start, stop) positions of the runs of consecutive values in ``indices`` (files that failed break them)."""
    start = 0
    for j in range(1, len(indices) + 1):
        if j == len(indices) or indices[j] != indices[j - 1] + 1:
            yield start, j
            start = j


class SlideTiles:
    """Reads and preprocesses tiles in DataLoader workers (each opens the slide once)."""

    def __init__(self, path: Path, grid: TileGrid, size: int, preprocess):
        self.path, self.grid, self.size, self.preprocess = path, grid, size, preprocess
        self._slide = None

    def __len__(self) -> int:
        return len(self.grid.coords)

    def __getitem__(self, i: int):
        if self._slide is None:
            self._slide = open_slide(self.path)
        x, y = self.grid.coords[i]
        side = self.grid.read_size
        tile = self._slide.read_region((int(x), int(y)), self.grid.level, (side, side)).convert("RGB")
        if side != self.size:
            tile = tile.resize((self.size, self.size), Image.BILINEAR)
        return self.preprocess(tile)


class WindowTiles:
    """Windows of one small in-memory image (``Tiling.window``), each resized to the model's input."""

    def __init__(self, image: Image.Image, coords: np.ndarray, window: int, size: int, preprocess):
        self.image, self.coords, self.window, self.size, self.preprocess = image, coords, window, size, preprocess

    def __len__(self) -> int:
        return len(self.coords)

    def __getitem__(self, i: int):
        x, y = (int(v) for v in self.coords[i])
        crop = self.image.crop((x, y, x + self.window, y + self.window))
        return self.preprocess(crop.resize((self.size, self.size), Image.BILINEAR))


def window_grid(width: int, height: int, window: int, stride: int) -> np.ndarray:
    """[T, 2] (x, y) of windows covering a width x height image, row-major; the last row and column are
    placed flush with the far edges, so every pixel is covered."""
    def starts(extent):
        last = max(0, extent - window)
        out = list(range(0, last + 1, stride))
        return np.array(out + ([last] if out[-1] != last else []), dtype=np.int64)

    ys, xs = starts(height), starts(width)
    return np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)


NONFINITE = "embedded to non-finite values (NaN/inf)"


def finite_rows(embeddings, chunk: int = 65_536) -> np.ndarray:
    """[N] True where a row holds only finite values (read in chunks: the array may be memory-mapped)."""
    if not embeddings.shape[1]:
        return np.zeros(len(embeddings), dtype=bool)
    return np.concatenate([np.isfinite(np.asarray(embeddings[i:i + chunk])).all(axis=1)
                           for i in range(0, len(embeddings), chunk)] or [np.zeros(0, dtype=bool)])


def _fact(read: Callable):
    """A model fact, or None where the model cannot say (a plugin without a logit scale)."""
    try:
        return read()
    except Exception:
        return None


class Embedder:
    def __init__(self, spec, load_model, fingerprint: str, runtime, cache: EmbeddingCache, batch_size: int,
                 workers: int):
        self.spec, self.load_model, self.fingerprint, self.runtime = spec, load_model, fingerprint, runtime
        self.cache, self.batch_size, self.workers = cache, batch_size, workers
        self.image_forwards = 0
        #: what this run embedded (cache hits excluded) and the wall seconds it took: the cost figures
        self.images_embedded, self.tiles_embedded, self.embed_seconds = 0, 0, 0.0
        #: every text this embedder encoded, by text: a prompt shared by several lists is encoded once
        self._text_rows: dict[str, np.ndarray] = {}
        self.texts_encoded = 0
        identity = getattr(spec, "identity", None)
        self.identity = identity() if callable(identity) else {"spec": type(spec).__qualname__}

    @property
    def device(self) -> str:
        """Where this process runs the model, and a task its own arithmetic (``CellContext.device``): the run's
        device, or the CPU of a Ray worker that scores without it."""
        return getattr(self.load_model, "runtime", self.runtime).device

    def _key(self, **parts) -> str:
        return cache_key(model=self.spec.id, weights=self.fingerprint, precision=self.runtime.precision,
                         model_identity=self.identity, **parts)

    def image_key(self, dataset, manifest, perturbation: str | None = None, seed: int = 0) -> tuple[str, Callable]:
        """The cache key of the dataset's image embeddings (under ``perturbation``, seeded) and how its
        images are opened."""
        parts = {"kind": "images", "manifest": manifest.hash}
        open_image = dataset.open_image
        if perturbation is not None:
            from pathboard.core.science.perturb import PerturbedOpen

            parts["perturbation"] = self.image_parts(perturbation, seed)
            open_image = PerturbedOpen(dataset.open_image, perturbation, seed)
        return self._key(**parts), open_image

    def pending_shards(self, dataset, manifest, perturbation: str | None = None, seed: int = 0) -> list[int]:
        """First rows of the shards of these image embeddings that are not published yet (none when the
        whole entry is cached): the embedding work units of a distributed run."""
        key, _ = self.image_key(dataset, manifest, perturbation, seed)
        if self.cache.get(key) is not None:
            return []
        return [first for first in range(0, len(manifest), shard_rows()) if not self._published(key, first)]

    def embed_shards(self, dataset, manifest, perturbation: str | None = None, seed: int = 0,
                     firsts: list[int] | None = None) -> None:
        """Embed and publish the shards starting at ``firsts`` (by default every pending one)."""
        key, open_image = self.image_key(dataset, manifest, perturbation, seed)
        desc = f"{self.spec.id} x {dataset.id}" + (f" ({perturbation})" if perturbation else "")
        # a dataset whose groups pathboard finds from its images gets them from this decode, not another
        thumbnails = perturbation is None and getattr(dataset, "near_duplicates", False) and \
            not grouping.groups_cached(manifest)
        embedded, forwards, seconds = self._embed_in_shards(key, manifest, open_image, desc, firsts, thumbnails)
        self.embed_seconds += seconds
        self.images_embedded += embedded
        self.image_forwards += forwards

    def images(self, dataset, manifest, perturbation: str | None = None, seed: int = 0) -> Embedded:
        """The dataset's image embeddings in manifest order, embedded once (cached); with ``perturbation``
        (a name of :data:`pathboard.core.science.perturb.PERTURBATIONS`), of the images under that seeded
        perturbation, applied in the DataLoader workers and cached under its own key."""
        key, _ = self.image_key(dataset, manifest, perturbation, seed)
        hit = self.cache.get(key)
        if hit is None:  # the first batch's forward pass is timed too: throughput includes warm-up
            self.embed_shards(dataset, manifest, perturbation, seed)
            hit = self.assemble(dataset, manifest, perturbation, seed)
        embeddings, meta = hit
        failed = dict(meta.get("failed", {}))
        if failed and perturbation is None:  # said once, for the clean images
            print(f"warning: {dataset.id}: skipped {len(failed)} unreadable file(s), e.g. "
                  f"{next(iter(failed))}: {next(iter(failed.values()))}", file=sys.stderr)
        valid = finite_rows(embeddings)
        bad = [manifest.paths[i] for i in np.flatnonzero(~valid) if manifest.paths[i] not in failed]
        # read fine but embedded to NaN/inf (e.g. an fp16 overflow): failed items, never scored
        failed.update({path: NONFINITE for path in bad})
        if bad and perturbation is None:
            print(f"warning: {dataset.id}: {len(bad)} image(s) embedded to non-finite values (NaN/inf), e.g. "
                  f"{bad[0]}; they are counted as failed and not scored (try --precision fp32 or bf16)",
                  file=sys.stderr)
        if not valid.any():
            raise PathboardError(f"no readable images in {manifest.root}")
        return Embedded(embeddings, valid, failed, key)

    def texts(self, texts: list[str]) -> np.ndarray:
        """[T, D] L2-normalised text embeddings, cached per exact list of strings. Each distinct text is
        encoded once per model in this process, whatever lists it appears in, and all that a list lacks go
        to the model in one call (which batches them ``text_batch`` at a time)."""
        key = self._key(kind="texts", texts=hashlib.sha256(json.dumps(texts).encode()).hexdigest())
        hit = self.cache.get(key)
        if hit is None:
            with stage("prompt encoding"):
                new = [t for t in dict.fromkeys(texts) if t not in self._text_rows]
                if new:
                    self._text_rows.update(zip(new, self.load_model().encode_texts(new).numpy()))
                    self.texts_encoded += len(new)
                self.cache.put(key, np.stack([self._text_rows[t] for t in texts]),
                               {"model": self.spec.id, "texts": len(texts)})
            hit = self.cache.read_back(key)
        return np.asarray(hit[0])

    def assemble(self, dataset, manifest, perturbation: str | None = None, seed: int = 0):
        """Stream the published shards of these image embeddings into their one cache entry (memory-mapped),
        and drop the shards. Every shard must be published. Returns the entry, as ``cache.get``."""
        key, _ = self.image_key(dataset, manifest, perturbation, seed)
        hit = self.cache.get(key)
        if hit is not None:  # another process assembled it first
            return hit
        missing = [first for first in range(0, len(manifest), shard_rows()) if not self._published(key, first)]
        if missing:
            raise PathboardError(f"{self.spec.id} x {dataset.id}: {len(missing)} shard(s) not embedded yet "
                                 f"(first rows {missing[:3]}); embed them before assembling")
        meta = {"model": self.spec.id, "weights": self.fingerprint, "dataset": dataset.id, "manifest": manifest.hash,
                "precision": self.runtime.precision, "rows": len(manifest),
                "perturbation": self.image_parts(perturbation, seed)}
        start = time.perf_counter()
        try:
            failed = {}
            for first in range(0, len(manifest), shard_rows()):
                failed.update(json.loads((self._shard_dir(key, first) / "failed.json").read_text()))
            meta["failed"] = failed
            with self.cache.writer(key, len(manifest), meta) as write:  # the shards, streamed into one entry
                for first, array in self._shards(key):
                    if array.shape[1]:
                        write(first, array)
        except FileNotFoundError:  # a concurrent assembler published the entry and dropped the shards
            hit = self.cache.get(key)
            if hit is None:
                raise
            return hit
        shutil.rmtree(self._partial(key), ignore_errors=True)
        self.embed_seconds += time.perf_counter() - start
        return self.cache.read_back(key)

    @staticmethod
    def image_parts(perturbation: str | None, seed: int) -> dict | None:
        if perturbation is None:
            return None
        from pathboard.core.science.perturb import PERTURBATIONS

        return {**PERTURBATIONS[perturbation].key(), "seed": seed}

    def _partial(self, key: str) -> Path:
        return self.cache.root / "partial" / key

    def _shard_dir(self, key: str, first: int) -> Path:
        return self._partial(key) / f"shard-{first:09d}"

    def _published(self, key: str, first: int) -> bool:
        return (self._shard_dir(key, first) / "failed.json").is_file()

    def _shards(self, key: str):
        """(first row, [rows, D] array) of every published shard of ``key``, in row order (memory-mapped)."""
        for folder in sorted(self._partial(key).glob("shard-*")):
            if folder.is_dir() and not folder.name.endswith(".tmp"):
                yield int(folder.name.split("-")[1]), np.load(folder / "embeddings.npy", mmap_mode="r")

    def _embed_in_shards(self, key: str, manifest, open_image, desc: str, firsts: list[int] | None = None,
                         thumbnails: bool = False) -> tuple[int, int, float]:
        """Embed the manifest's images in shards of ``SHARD_ROWS`` rows, each published atomically (its
        embeddings and failed items) under ``<cache>/embeddings/partial/<key>/``, so a killed run resumes
        from the last complete shard. One DataLoader streams every pending shard (its workers never wait at
        a shard boundary). With ``thumbnails``, each shard's :func:`pathboard.core.science.grouping.thumbnail`
        of the decoded images is kept too (:func:`~pathboard.core.science.grouping.save_thumbnails`), before the
        shard is published. Returns (images embedded now, forwards, seconds spent embedding: model loading left
        out, as the cost figures want)."""
        rows = shard_rows()
        pending = [first for first in (range(0, len(manifest), rows) if firsts is None else firsts)
                   if not self._published(key, first)]
        if not pending:
            return 0, 0, 0.0
        self._partial(key).mkdir(parents=True, exist_ok=True)
        model = self.load_model()
        started = time.perf_counter()
        spans = [(first, min(first + rows, len(manifest))) for first in pending]
        paths = [path for first, stop in spans for path in manifest.paths[first:stop]]
        offsets = np.cumsum([0] + [stop - first for first, stop in spans])  # position in ``paths`` of each shard
        embedded = forwards = 0
        open_shards: dict[int, _Shard] = {}  # at most the one being filled and the next
        failed: dict[str, str] = {}
        published = 0

        def shard_of(row: int) -> tuple[_Shard, int, int]:
            """The open shard of position ``row`` in ``paths``, the row's place in it, and the rows it has left."""
            s = int(np.searchsorted(offsets, row, side="right")) - 1
            shard = open_shards.setdefault(s, _Shard(int(offsets[s + 1] - offsets[s])))
            return shard, row - int(offsets[s]), int(offsets[s + 1]) - row
        for indices, feats, errors, made in image_batches(
                model, manifest.root, paths, batch_size=self.batch_size, workers=self.workers,
                desc=f"{desc} [{len(pending)} shard(s)]", open_image=open_image, cuts=offsets[1:-1].tolist(),
                thumbnail=grouping.thumbnail if thumbnails else None):
            forwards += feats is not None
            for i, err in errors:
                failed[paths[i]] = err
            for row, thumb in made:
                shard, place, _ = shard_of(row)
                shard.thumbnail(place, thumb)
            for start, stop in _runs(indices):  # a run of rows may straddle shards: each part into its own
                j = start
                while j < stop:
                    shard, place, left = shard_of(indices[j])
                    take = min(stop - j, left)
                    shard.write(place, feats[j:j + take])
                    j += take
            done = max(indices + [i for i, _ in errors]) + 1  # rows come in order: all before ``done`` are in
            while published < len(spans) and done >= offsets[published + 1]:
                first, stop = spans[published]
                mine = {path: failed.pop(path) for path in manifest.paths[first:stop] if path in failed}
                shard = open_shards.pop(published, None) or _Shard(stop - first)  # None: every file failed
                if shard.thumbnails is not None:
                    grouping.save_thumbnails(manifest, first, shard.thumbnails)
                self._publish(key, first, shard.array, mine)
                embedded += (stop - first) - len(mine)
                published += 1
        return embedded, forwards, time.perf_counter() - started

    def _publish(self, key: str, first: int, array: np.ndarray, failed: dict[str, str]) -> None:
        """Write one shard (its embeddings and failed items) and publish it with one rename."""
        folder = self._shard_dir(key, first)
        tmp = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        np.save(tmp / "embeddings.npy", array)
        (tmp / "failed.json").write_text(json.dumps(failed))
        try:
            os.rename(tmp, folder)
        except OSError:  # another process published this shard first: theirs is the same
            shutil.rmtree(tmp, ignore_errors=True)

    def has_facts(self) -> bool:
        return self.cache.get(self._key(kind="facts")) is not None

    def facts(self) -> dict:
        """The model's facts: ``logit_scale`` (its learned temperature) and ``params`` (parameter count,
        None when unknown), cached like embeddings so a fully cached run never loads the model."""
        key = self._key(kind="facts")
        hit = self.cache.get(key)
        if hit is None:
            model = self.load_model()
            facts = {"logit_scale": _fact(lambda: float(model.logit_scale)),
                     "params": _fact(lambda: getattr(model, "parameter_count", lambda: None)())}
            self.cache.put(key, np.zeros((1, 0), dtype=np.float32), {"model": self.spec.id, "facts": facts})
            return facts
        return dict(hit[1]["facts"])

    def slide_key(self, dataset, manifest, path: str, tiling: Tiling) -> str:
        """The cache key of one slide's tiles at ``tiling``."""
        file = manifest.root / path.split("#", 1)[0]
        return self._key(kind="slide", dataset=dataset.id, path=path, bytes=os.stat(file).st_size,
                         tiling=tiling.key())

    def pending_slides(self, dataset, manifest, tiling: Tiling, items: str = "evaluated") -> list[str]:
        """The slides of ``items`` whose tiles at ``tiling`` are not cached yet: the per-slide work units of a
        distributed run (a slide that cannot even be listed is left to :meth:`slides` to report)."""
        out = []
        for i in np.flatnonzero(tiled_items(dataset, manifest, items)):
            path = manifest.paths[i]
            try:
                if self.cache.get(self.slide_key(dataset, manifest, path, tiling)) is None:
                    out.append(path)
            except OSError:
                pass
        return out

    def slide(self, dataset, manifest, path: str, tiling: Tiling) -> SlideEmbedding:
        """Tile one slide's tissue and embed the tiles, cached with their coordinates.

        Raises PathboardError (one line) for a slide that cannot be opened, has no resolution
        metadata, or has no tissue; callers report it and go on with the next slide.
        """
        file = manifest.root / path.split("#", 1)[0]
        key = self.slide_key(dataset, manifest, path, tiling)
        hit = self.cache.get(key)
        if hit is None and tiling.window:
            self._embed_windows(dataset, manifest, path, tiling, key)
            hit = self.cache.read_back(key)
        if hit is None:
            with stage("tiling plans"):
                slide = open_slide(file)
                grid = tile_grid(slide, tiling, name=path, file=file)
            if not len(grid.coords):
                raise PathboardError(f"{path}: no tissue found (tissue covers {grid.tissue_fraction:.1%} of the "
                                     f"thumbnail, below {tiling.min_tissue:.0%} in every tile)")
            info = {"level": grid.level, "size0": grid.size0, "slide_mpp": grid.slide_mpp,
                    "mpp_source": grid.mpp_source, "tissue_fraction": grid.tissue_fraction,
                    "dimensions": list(slide.dimensions)}
            meta = {"model": self.spec.id, "dataset": dataset.id, "slide": path, "info": info,
                    "coords": grid.coords.tolist()}
            from torch.utils.data import DataLoader

            model = self.load_model()
            tiles = DataLoader(SlideTiles(file, grid, tiling.size, model.preprocess), batch_size=self.batch_size,
                               num_workers=self.workers)
            self._embed_batches(model, tiles, key, len(grid.coords), meta, f"{self.spec.id} x {path}")
            hit = self.cache.read_back(key)
        embeddings, meta = hit
        coords = np.asarray(meta["coords"], dtype=np.int64).reshape(-1, 2)
        keep = finite_rows(embeddings)
        if not keep.all():  # a NaN tile is never argmaxed: it is left out and counted
            if not keep.any():
                raise PathboardError(f"{path}: every tile embedded to non-finite values (NaN/inf); try --precision "
                                     f"fp32 or bf16")
            embeddings, coords = np.asarray(embeddings)[keep], coords[keep]
            meta["info"] = {**meta["info"], "nonfinite_tiles": int((~keep).sum())}
        return SlideEmbedding(np.asarray(embeddings), coords, meta["info"], key=key)

    def _embed_windows(self, dataset, manifest, path: str, tiling: Tiling, key: str) -> None:
        image = dataset.open_image(manifest.root, path)
        width, height = image.size
        stride = tile_stride(tiling.window, tiling.overlap)
        coords = window_grid(width, height, tiling.window, stride)
        info = {"level": 0, "size0": tiling.window, "slide_mpp": getattr(dataset, "mpp", None),
                "mpp_source": "windows of a small image", "tissue_fraction": 1.0, "dimensions": [width, height]}
        meta = {"model": self.spec.id, "dataset": dataset.id, "slide": path, "info": info, "coords": coords.tolist()}
        from torch.utils.data import DataLoader

        model = self.load_model()
        windows = DataLoader(WindowTiles(image, coords, tiling.window, tiling.size, model.preprocess),
                             batch_size=self.batch_size, num_workers=0)  # one small decoded image: no workers
        self._embed_batches(model, windows, key, len(coords), meta)

    def _embed_batches(self, model, batches, key: str, rows: int, meta: dict, desc: str | None = None) -> None:
        """Embed the tile ``batches`` in order into the cache entry ``key`` (``rows`` rows), with a
        progress bar when ``desc`` names one."""
        started = time.perf_counter()
        encode = Backoff(model)
        with self.cache.writer(key, rows, meta) as write:
            start = 0
            for batch in tqdm(batches, desc=desc, unit="batch", disable=None if desc else True, leave=False):
                write(start, encode(batch))
                start += len(batch)
                self.image_forwards += 1
        self.embed_seconds += time.perf_counter() - started
        self.tiles_embedded += rows

    def slides(self, dataset, manifest, tiling: Tiling, items: str = "evaluated") -> TileSet:
        """Tile and embed ``items`` (see ``Inputs.tile_items``; by default the evaluated ones: labelled, in
        the evaluation split) at ``tiling``.

        A slide that cannot be opened, has no resolution metadata or no tissue is skipped with one
        line and named in ``TileSet.failed``; the others are read back from the cache on demand.
        """
        rows = np.flatnonzero(tiled_items(dataset, manifest, items))
        done, failed = {}, {}
        for i in tqdm(rows, desc=f"{self.spec.id} x {dataset.id} slides", unit="slide", disable=None, leave=False):
            path = manifest.paths[i]
            try:
                done[path] = (int(manifest.labels[i]), self.slide(dataset, manifest, path, tiling))
                excluded = done[path][1].info.get("nonfinite_tiles", 0)
                if excluded:
                    print(f"warning: {dataset.id}: {path}: {excluded} tile(s) embedded to non-finite values "
                          f"were left out", file=sys.stderr)
            except (PathboardError, OSError) as exc:
                failed[path] = first_line(exc)
                if isinstance(exc, NoResolutionError):
                    failed[path] += f"; if you know its resolution, pass --assume-mpp {dataset.id}=MPP (µm per pixel)"
                print(f"warning: {dataset.id}: skipped {path}: {failed[path]}", file=sys.stderr)
        return TileSet(done, failed)
