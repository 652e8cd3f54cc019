"""Content-addressed embedding cache: one directory per key, published with an atomic rename.

``<cache root>/embeddings/<key[:2]>/<key>/{embeddings.npy,meta.json}``. A key is the sha256 of
everything that determines the vectors, so any task and prompt mode reusing them gets identical
numbers, and a half-written entry is never visible (it lives in ``tmp/`` until renamed).

Every entry published records its ``integrity`` (byte size, shape, dtype and sha256 of
``embeddings.npy``) in ``meta.json``. :meth:`EmbeddingCache.get` checks the cheap part (size and
``.npy`` header) on every read; an entry that fails is removed with one warning line and reads as
missing, so the caller recomputes it. :meth:`EmbeddingCache.verify` also checks the sha256.
Temporary directories are named ``<key[:12]>.<writer pid>.<random>``, so the ones left by killed
writers can be told apart and removed (:meth:`EmbeddingCache.clean_tmp`).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pathboard.core.errors import PathboardError, first_line
from pathboard.core.paths import process_alive

#: bump when the stored layout or the embedding code changes meaning. 2: keys name the model's preprocessing
#: and tokenizer (model_identity) and non-finite rows count as failed items
FORMAT = 2

_BLOCK = 1 << 20  # the sha256 of embeddings.npy is computed in 1 MiB blocks
#: entry directories whose use was already marked (os.utime of meta.json) in this process
_TOUCHED: set[str] = set()


def cache_key(**parts) -> str:
    return hashlib.sha256(json.dumps({"format": FORMAT, **parts}, sort_keys=True).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (never the whole file in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _kind(meta: dict) -> str:
    """What an entry holds, from its meta (the writers do not name it, so it is read off their fields)."""
    if isinstance(meta.get("kind"), str):
        return meta["kind"]
    for field, kind in (("facts", "facts"), ("slide", "slide"), ("manifest", "images"), ("texts", "texts")):
        if field in meta:
            return kind
    return "unknown"


def _label(meta: dict | None) -> str:
    """``model/dataset`` (or what of it is known) for messages."""
    meta = meta if isinstance(meta, dict) else {}
    known = [str(meta[f]) for f in ("model", "dataset") if meta.get(f)]
    return "/".join(known) or "unknown"


def _tree_bytes(path: Path) -> int:
    total = 0
    try:
        for p in path.rglob("*"):
            try:
                if p.is_file():
                    total += p.stat().st_size
            except OSError:
                pass
    except OSError:
        pass
    return total


def _remove(path: Path) -> None:
    """Remove a directory; another process removing it at the same time is fine."""
    shutil.rmtree(path, ignore_errors=True)


def _newest_mtime(path: Path) -> float:
    """The newest mtime of a directory and the files directly in it (a writer updates its files in place)."""
    newest = path.stat().st_mtime
    try:
        for p in path.iterdir():
            try:
                newest = max(newest, p.stat().st_mtime)
            except OSError:
                pass
    except OSError:
        pass
    return newest


@dataclass(frozen=True)
class Entry:
    """One published cache entry, as :meth:`EmbeddingCache.entries` sees it."""

    key: str
    path: Path
    bytes: int  # everything in the entry's directory
    model: str | None
    dataset: str | None
    kind: str  # images, texts, slide, facts or unknown
    format: int | None  # meta "format"; None for entries written before it was recorded
    last_used: float  # epoch seconds: last read (get marks it) or written
    ok_header: bool  # passes the cheap check of get (meta, size, .npy header)
    integrity: bool  # meta records the integrity of embeddings.npy


class EmbeddingCache:
    def __init__(self, root: Path):
        self.root = Path(root) / "embeddings"
        if (self.root / "tmp").is_dir():
            try:
                self.clean_tmp()
            except Exception:  # housekeeping never fails the caller
                pass

    def _dir(self, key: str) -> Path:
        return self.root / key[:2] / key

    # -- checking -------------------------------------------------------------------------------------------

    def _check(self, d: Path, full: bool = False) -> tuple[dict | None, str | None, np.ndarray | None]:
        """(meta, reason it is corrupt or None, the memory-mapped array when it is fine) of entry ``d``.

        Cheap: meta parses, embeddings.npy has the recorded byte size and its header the recorded shape
        and dtype; ``full`` also compares the sha256. Entries without ``integrity`` (written by older
        code) only have to load.
        """
        try:
            text = (d / "meta.json").read_text()
        except FileNotFoundError:
            return None, "meta.json is missing", None
        except OSError as exc:
            return None, f"meta.json unreadable: {type(exc).__name__}", None
        try:
            meta = json.loads(text)
        except ValueError:
            return None, "meta.json does not parse", None
        if not isinstance(meta, dict):
            return None, "meta.json is not an object", meta
        npy = d / "embeddings.npy"
        integrity = meta.get("integrity")
        if integrity is not None:
            if not isinstance(integrity, dict) or not {"bytes", "shape", "dtype"} <= set(integrity):
                return meta, "meta.json has a malformed integrity record", None
            try:
                size = npy.stat().st_size
            except FileNotFoundError:
                return meta, "embeddings.npy is missing", None
            except OSError as exc:
                return meta, f"embeddings.npy unreadable: {type(exc).__name__}", None
            if size != integrity["bytes"]:
                return meta, f"embeddings.npy is {size} bytes, expected {integrity['bytes']}", None
        try:
            array = np.load(npy, mmap_mode="r")
        except FileNotFoundError:
            return meta, "embeddings.npy is missing", None
        except Exception as exc:  # a bad header, a truncated file, not an .npy at all
            why = first_line(exc)
            return meta, f"embeddings.npy does not load: {why}", None
        if not isinstance(array, np.ndarray):
            return meta, "embeddings.npy holds no array", None
        if integrity is not None:
            if list(array.shape) != list(integrity["shape"]) or str(array.dtype) != integrity["dtype"]:
                return meta, (f"embeddings.npy holds {array.dtype} {list(array.shape)}, expected "
                              f"{integrity['dtype']} {list(integrity['shape'])}"), None
            if full and integrity.get("sha256") is not None:
                try:
                    digest = file_sha256(npy)
                except OSError as exc:
                    return meta, f"embeddings.npy unreadable: {type(exc).__name__}", None
                if digest != integrity["sha256"]:
                    return meta, "embeddings.npy does not match its sha256", None
        return meta, None, array

    def get(self, key: str) -> tuple[np.ndarray, dict] | None:
        """The stored array (memory-mapped: nothing is read until used) and its metadata; None when missing.

        An entry that fails the cheap integrity check is removed, named in one warning line on stderr and
        reads as missing, so the caller recomputes it.
        """
        d = self._dir(key)
        if not d.is_dir():
            return None
        meta, reason, array = self._check(d)
        if reason is not None:
            if not d.is_dir():  # removed by another process while we read it: simply missing
                return None
            _remove(d)
            print(f"warning: embedding cache entry {key[:12]} ({_label(meta)}) was corrupt ({reason}); "
                  f"it is recomputed", file=sys.stderr)
            return None
        if str(d) not in _TOUCHED:  # last_used means last read; once per process per entry
            _TOUCHED.add(str(d))
            try:
                os.utime(d / "meta.json")
            except OSError:  # a read-only cache is still a cache
                pass
        return array, meta

    def read_back(self, key: str) -> tuple[np.ndarray, dict]:
        """:meth:`get` of an entry just written; a PathboardError (one line) where it cannot be read back."""
        hit = self.get(key)
        if hit is None:
            raise PathboardError(f"embedding cache entry {key[:12]} could not be read back right after it was "
                                 f"written under {self.root}; check that disk (free space, errors)")
        return hit

    # -- writing --------------------------------------------------------------------------------------------

    @contextmanager
    def writer(self, key: str, rows: int, meta: dict):
        """Yield ``write(start, array)``; rows never written stay NaN. Published only on success."""
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{key[:12]}.{os.getpid()}.", dir=self.root / "tmp"))
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
                shape = [rows, 0]
                np.save(tmp / "embeddings.npy", np.full(shape, np.nan, dtype=np.float32))
            else:
                shape = list(store[0].shape)
                store[0].flush()
                del store[0]
            npy = tmp / "embeddings.npy"
            integrity = {"bytes": npy.stat().st_size, "shape": shape, "dtype": "float32",
                         "sha256": file_sha256(npy)}
            (tmp / "meta.json").write_text(json.dumps({**meta, "format": FORMAT, "integrity": integrity},
                                                      indent=1))
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

    # -- maintenance (plain data; the CLI prints) -----------------------------------------------------------

    def _entry_dirs(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for shard in sorted(self.root.iterdir()):
            if shard.name in ("tmp", "partial") or not shard.is_dir():  # not entries: temp dirs, resumable shards
                continue
            for d in sorted(shard.iterdir()):
                if d.is_dir():
                    yield d

    def _stale_tmp(self, max_age_s: float) -> Iterator[Path]:
        """Temp dirs of writers that are gone (dead PID on this host) or older than ``max_age_s``."""
        tmp = self.root / "tmp"
        if not tmp.is_dir():
            return
        now = time.time()
        for d in sorted(tmp.iterdir()):
            try:
                parts = d.name.split(".")
                pid = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None
                if (pid is not None and not process_alive(pid)) or now - _newest_mtime(d) > max_age_s:
                    yield d
            except OSError:  # gone meanwhile
                continue

    def clean_tmp(self, max_age_s: float = 86400) -> int:
        """Remove the temp dirs of killed writers (PID not alive here) and those older than ``max_age_s``
        (old-style names without a PID: by age only); the number removed."""
        removed = 0
        for d in list(self._stale_tmp(max_age_s)):
            _remove(d)
            removed += 1
        return removed

    def entries(self) -> Iterator[Entry]:
        """Every published entry, with the cheap check of :meth:`get` (nothing is removed)."""
        for d in self._entry_dirs():
            meta, reason, _ = self._check(d)
            info = meta if isinstance(meta, dict) else {}
            try:
                last_used = (d / "meta.json").stat().st_mtime
            except OSError:
                try:
                    last_used = d.stat().st_mtime
                except OSError:  # removed meanwhile
                    continue
            fmt = info.get("format")
            yield Entry(key=d.name, path=d, bytes=_tree_bytes(d), model=info.get("model"),
                        dataset=info.get("dataset"), kind=_kind(info),
                        format=fmt if isinstance(fmt, int) else None, last_used=last_used,
                        ok_header=reason is None, integrity="integrity" in info)

    def summary(self) -> list[dict]:
        """Rows ``{model, dataset, kind, entries, bytes, last_used, total: False}`` per (model, dataset, kind),
        sorted, then one totals row ``{model: None, dataset: None, kind: None, ..., total: True}``."""
        groups: dict[tuple, dict] = {}
        for e in self.entries():
            row = groups.setdefault((e.model, e.dataset, e.kind), {
                "model": e.model, "dataset": e.dataset, "kind": e.kind, "entries": 0, "bytes": 0,
                "last_used": 0.0, "total": False})
            row["entries"] += 1
            row["bytes"] += e.bytes
            row["last_used"] = max(row["last_used"], e.last_used)
        rows = sorted(groups.values(), key=lambda r: (r["model"] or "", r["dataset"] or "", r["kind"]))
        rows.append({"model": None, "dataset": None, "kind": None, "entries": sum(r["entries"] for r in rows),
                     "bytes": sum(r["bytes"] for r in rows),
                     "last_used": max((r["last_used"] for r in rows), default=0.0), "total": True})
        return rows

    def verify(self, full: bool = True) -> tuple[int, list[tuple[str, str]]]:
        """Check every entry (``full``: also its sha256) and remove the corrupt ones:
        (number checked, [(key, reason)] of those removed)."""
        checked, removed = 0, []
        for d in list(self._entry_dirs()):
            if not d.is_dir():
                continue
            checked += 1
            _, reason, _ = self._check(d, full=full)
            if reason is not None and d.is_dir():
                _remove(d)
                removed.append((d.name, reason))
        return checked, removed

    def prune(self, older_than_days: float | None = None, formats: bool = True,
              dry_run: bool = False) -> list[tuple[str, str, int]]:
        """Remove entries written by older code (``formats``: meta without ``integrity`` whose ``format`` is
        missing or not FORMAT, or a recorded ``format`` below FORMAT), entries not used for more than
        ``older_than_days`` (when given), stale temp dirs and the resumable shards of runs that never finished
        (untouched for a day, or for ``older_than_days`` if longer) and the thumbnails such runs kept for
        near-duplicate groups; [(key, tmp/<name>, partial/<key> or datasets/<name>; why; bytes)].
        ``dry_run`` only lists them."""
        cutoff = None if older_than_days is None else time.time() - older_than_days * 86400
        out: list[tuple[str, str, int]] = []
        for e in list(self.entries()):
            why = None
            if formats and e.format != FORMAT and (
                    not e.integrity or (e.format is not None and e.format < FORMAT)):
                why = f"older format ({e.format if e.format is not None else 'unrecorded'}, now {FORMAT})"
            elif cutoff is not None and e.last_used <= cutoff:
                why = f"unused for {(time.time() - e.last_used) / 86400:.1f} days"
            if why is not None:
                out.append((e.key, why, e.bytes))
                if not dry_run:
                    _remove(e.path)
        for d in list(self._stale_tmp(86400)):
            out.append((f"tmp/{d.name}", "stale temp dir", _tree_bytes(d)))
            if not dry_run:
                _remove(d)
        partial_cutoff = time.time() - 86400 if cutoff is None else min(cutoff, time.time() - 86400)
        from pathboard.core.science.grouping import thumbnail_folders

        # what interrupted runs left, untouched for a day: shards never assembled, and the thumbnails an embedding
        # kept until its dataset's near-duplicate groups were found
        left = [(f"partial/{d.name}", d, "unfinished shards of an interrupted run")
                for d in (sorted((self.root / "partial").glob("*")) if (self.root / "partial").is_dir() else [])]
        left += [(f"datasets/{d.name}", d, "thumbnails of an interrupted run (for near-duplicate groups)")
                 for d in thumbnail_folders(self.root.parent)]
        for name, d, why in left:
            try:
                newest = max([d.stat().st_mtime, *(f.stat().st_mtime for f in d.rglob("*"))])
            except OSError:  # finished and removed meanwhile
                continue
            if newest <= partial_cutoff:
                out.append((name, why, _tree_bytes(d)))
                if not dry_run:
                    _remove(d)
        return out
