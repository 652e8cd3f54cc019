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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from pathboard.core.cache import EmbeddingCache, cache_key
from pathboard.core.errors import PathboardError
from pathboard.core.images import open_item
from pathboard.core.task import tiled_items
from pathboard.core.tiling import NoResolutionError, TileGrid, Tiling, open_slide, tile_grid, tile_stride

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
    """One shard's rows in memory (a few thousand embeddings); rows never written stay NaN."""

    def __init__(self, rows: int):
        self.array = np.full((rows, 0), np.nan, dtype=np.float32)

    def write(self, start: int, array: np.ndarray) -> None:
        if not self.array.shape[1]:
            self.array = np.full((len(self.array), array.shape[1]), np.nan, dtype=np.float32)
        self.array[start:start + len(array)] = array


class ImageFiles(torch.utils.data.Dataset):
    """Decodes and preprocesses one image per item in a worker; a file that fails comes back as its error."""

    def __init__(self, root: Path, paths: list[str], preprocess: Callable, open_image: Callable | None = None):
        self.root, self.paths, self.preprocess = root, paths, preprocess
        self.open_image = open_image or open_item

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            return i, self.preprocess(self.open_image(self.root, self.paths[i])), None
        except Exception as exc:
            return i, None, f"{type(exc).__name__}: {exc}".splitlines()[0]


def _collate(batch):
    ok = [(i, x) for i, x, _ in batch if x is not None]
    failed = [(i, err) for i, _, err in batch if err is not None]
    indices = [i for i, _ in ok]
    images = torch.stack([x for _, x in ok]) if ok else None
    return indices, images, failed


def _out_of_memory(exc: BaseException) -> bool:
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
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                step = self.limit = max(1, len(chunk) // 2)
                print(f"warning: out of memory at {len(chunk)} images per forward pass; going on with {step} "
                      f"(pass --batch-size {step} to start there)", file=sys.stderr)
                continue
            start += len(chunk)
        return out[0] if len(out) == 1 else np.concatenate(out)


def embed_images(model, root: Path, paths: list[str], write: Callable, *, batch_size: int, workers: int,
                 desc: str, open_image: Callable | None = None) -> tuple[dict[str, str], int]:
    """Embed ``paths`` in order, calling ``write(start_row, array)`` per batch.

    Returns ({relative path: error} for unreadable files, number of forward passes).
    """
    loader = DataLoader(ImageFiles(root, paths, model.preprocess, open_image), batch_size=batch_size, shuffle=False,
                        num_workers=workers, collate_fn=_collate,
                        pin_memory=getattr(getattr(model, "runtime", None), "device", "cpu").startswith("cuda"))
    failed: dict[str, str] = {}
    forwards = 0
    encode = Backoff(model)
    with tqdm(total=len(paths), desc=desc, unit="img", disable=None, leave=False) as bar:
        for indices, images, errors in loader:
            for i, err in errors:
                failed[paths[i]] = err
            if images is not None:
                feats = encode(images)
                forwards += 1
                # indices are consecutive except where files failed; write runs of consecutive rows
                start = 0
                for j in range(1, len(indices) + 1):
                    if j == len(indices) or indices[j] != indices[j - 1] + 1:
                        write(indices[start], feats[start:j])
                        start = j
            bar.update(len(indices) + len(errors))
    return failed, forwards


class SlideTiles(torch.utils.data.Dataset):
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


class WindowTiles(torch.utils.data.Dataset):
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
        #: what this run embedded (cache hits excluded) and the wall seconds it took: the cost figures
        self.images_embedded, self.tiles_embedded, self.embed_seconds = 0, 0, 0.0
        identity = getattr(spec, "identity", None)
        self.identity = identity() if callable(identity) else {"spec": type(spec).__qualname__}

    def _key(self, **parts) -> str:
        return cache_key(model=self.spec.id, weights=self.fingerprint, precision=self.runtime.precision,
                         model_identity=self.identity, **parts)

    def images(self, dataset, manifest, perturbation: str | None = None, seed: int = 0) -> Embedded:
        """The dataset's image embeddings in manifest order, embedded once (cached); with ``perturbation``
        (a name of :data:`pathboard.core.perturb.PERTURBATIONS`), of the images under that seeded
        perturbation, applied in the DataLoader workers and cached under its own key."""
        parts = {"kind": "images", "manifest": manifest.hash}
        open_image = dataset.open_image
        if perturbation is not None:
            from pathboard.core.perturb import PERTURBATIONS, PerturbedOpen

            parts["perturbation"] = {**PERTURBATIONS[perturbation].key(), "seed": seed}
            open_image = PerturbedOpen(dataset.open_image, perturbation, seed)
        key = self._key(**parts)
        hit = self.cache.get(key)
        if hit is None:  # the first batch's forward pass is timed too: throughput includes warm-up
            meta = {"model": self.spec.id, "weights": self.fingerprint, "dataset": dataset.id,
                    "manifest": manifest.hash, "precision": self.runtime.precision, "rows": len(manifest),
                    "perturbation": parts.get("perturbation")}
            desc = f"{self.spec.id} x {dataset.id}" + (f" ({perturbation})" if perturbation else "")
            embedded, failed, forwards, seconds = self._embed_in_shards(key, manifest, open_image, desc)
            meta["failed"] = failed
            start = time.perf_counter()
            with self.cache.writer(key, len(manifest), meta) as write:  # the shards, streamed into one entry
                for first, array in self._shards(key):
                    if array.shape[1]:
                        write(first, array)
            shutil.rmtree(self._partial(key), ignore_errors=True)
            self.embed_seconds += seconds + time.perf_counter() - start
            self.images_embedded += embedded
            self.image_forwards += forwards
            hit = self.cache.read_back(key)
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
        """[T, D] L2-normalised text embeddings, cached per exact list of strings."""
        key = self._key(kind="texts", texts=hashlib.sha256(json.dumps(texts).encode()).hexdigest())
        hit = self.cache.get(key)
        if hit is None:
            self.cache.put(key, self.load_model().encode_texts(texts).numpy(),
                           {"model": self.spec.id, "texts": len(texts)})
            hit = self.cache.read_back(key)
        return np.asarray(hit[0])

    def _partial(self, key: str) -> Path:
        return self.cache.root / "partial" / key

    def _shards(self, key: str):
        """(first row, [rows, D] array) of every published shard of ``key``, in row order (memory-mapped)."""
        for folder in sorted(self._partial(key).glob("shard-*")):
            if folder.is_dir() and not folder.name.endswith(".tmp"):
                yield int(folder.name.split("-")[1]), np.load(folder / "embeddings.npy", mmap_mode="r")

    def _embed_in_shards(self, key: str, manifest, open_image, desc: str) -> tuple[int, dict[str, str], int, float]:
        """Embed the manifest's images in shards of ``SHARD_ROWS`` rows, each published atomically (its
        embeddings and failed items) under ``<cache>/embeddings/partial/<key>/``, so a killed run resumes
        from the last complete shard. Returns (images embedded now, failed items of every shard, forwards,
        seconds spent embedding: model loading left out, as the cost figures want)."""
        rows = shard_rows()
        partial = self._partial(key)
        partial.mkdir(parents=True, exist_ok=True)
        embedded, failed, forwards, seconds = 0, {}, 0, 0.0
        model = None
        for first in range(0, len(manifest), rows):
            folder = partial / f"shard-{first:09d}"
            if not (folder / "failed.json").is_file():
                model = model or self.load_model()
                started = time.perf_counter()
                paths = manifest.paths[first:first + rows]
                shard = _Shard(len(paths))
                part_failed, part_forwards = embed_images(model, manifest.root, paths, shard.write,
                                                          batch_size=self.batch_size, workers=self.workers,
                                                          desc=f"{desc} [{first}:{first + len(paths)}]",
                                                          open_image=open_image)
                tmp = partial / f"{folder.name}.{os.getpid()}.tmp"
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir()
                np.save(tmp / "embeddings.npy", shard.array)
                (tmp / "failed.json").write_text(json.dumps(part_failed))
                try:
                    os.rename(tmp, folder)
                except OSError:  # another process published this shard first: theirs is the same
                    shutil.rmtree(tmp, ignore_errors=True)
                embedded += len(paths) - len(part_failed)
                forwards += part_forwards
                seconds += time.perf_counter() - started
            failed.update(json.loads((folder / "failed.json").read_text()))
        return embedded, failed, forwards, seconds

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

    def slide(self, dataset, manifest, path: str, tiling: Tiling) -> SlideEmbedding:
        """Tile one slide's tissue and embed the tiles, cached with their coordinates.

        Raises PathboardError (one line) for a slide that cannot be opened, has no resolution
        metadata, or has no tissue; callers report it and go on with the next slide.
        """
        file = manifest.root / path.split("#", 1)[0]
        key = self._key(kind="slide", dataset=dataset.id, path=path, bytes=os.stat(file).st_size,
                        tiling=tiling.key())
        hit = self.cache.get(key)
        if hit is None and tiling.window:
            self._embed_windows(dataset, manifest, path, tiling, key)
            hit = self.cache.read_back(key)
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
        return SlideEmbedding(np.asarray(embeddings), coords, meta["info"])

    def _embed_windows(self, dataset, manifest, path: str, tiling: Tiling, key: str) -> None:
        image = dataset.open_image(manifest.root, path)
        width, height = image.size
        stride = tile_stride(tiling.window, tiling.overlap)
        coords = window_grid(width, height, tiling.window, stride)
        info = {"level": 0, "size0": tiling.window, "slide_mpp": getattr(dataset, "mpp", None),
                "mpp_source": "windows of a small image", "tissue_fraction": 1.0, "dimensions": [width, height]}
        meta = {"model": self.spec.id, "dataset": dataset.id, "slide": path, "info": info, "coords": coords.tolist()}
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
                failed[path] = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                if isinstance(exc, NoResolutionError):
                    failed[path] += f"; if you know its resolution, pass --assume-mpp {dataset.id}=MPP (µm per pixel)"
                print(f"warning: {dataset.id}: skipped {path}: {failed[path]}", file=sys.stderr)
        return TileSet(done, failed)


class TileSet:
    """The tiles of a dataset's evaluated items at one tiling, in manifest order."""

    def __init__(self, done: dict[str, tuple[int, SlideEmbedding]], failed: dict[str, str]):
        self._done, self.failed = done, failed

    def items(self) -> list[tuple[str, int]]:
        """(path, label) of every item that was tiled (label -1: unlabelled), in manifest order."""
        return [(path, label) for path, (label, _) in self._done.items()]

    def labelled(self) -> list[tuple[str, int]]:
        """(path, label) of every labelled item that was tiled."""
        return [(path, label) for path, label in self.items() if label >= 0]

    def __contains__(self, path: str) -> bool:
        return path in self._done

    def __getitem__(self, path: str) -> SlideEmbedding:
        return self._done[path][1]

    def __len__(self) -> int:
        return len(self._done)
