"""The embedding cache heals itself: corrupt entries are detected, removed and recomputed, temp dirs of
killed writers are cleaned, and the maintenance API (summary, verify, prune) returns plain data."""
import hashlib
import json
import os
import subprocess
import sys
import time

import duckdb
import numpy as np
import pytest
from support.helpers import pathboard

from pathboard.core.embedding.cache import FORMAT, EmbeddingCache, cache_key
from pathboard.core.embedding.embedder import Embedder
from pathboard.core.errors import PathboardError

ROWS, DIM = 8, 4


def _array(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((ROWS, DIM)).astype(np.float32)


def _put(cache: EmbeddingCache, name: str, meta: dict | None = None, seed: int = 0) -> str:
    key = cache_key(test=name)
    cache.put(key, _array(seed), meta if meta is not None else {"model": "m1", "dataset": "d1", "manifest": "x"})
    return key


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning: embedding cache entry")]


def _leaderboard(db):
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT model, dataset, task, prompt_mode, metric, value, ci_low, ci_high, n "
                           "FROM leaderboard ORDER BY ALL").fetchall()
        return [tuple(None if v != v else v for v in row) for row in rows]  # NaN (no CI) equals NaN
    finally:
        con.close()


def test_published_entry_records_its_integrity(tmp_path):
    cache = EmbeddingCache(tmp_path)
    key = _put(cache, "a")
    meta = json.loads((cache._dir(key) / "meta.json").read_text())
    npy = cache._dir(key) / "embeddings.npy"

    assert meta["format"] == FORMAT and meta["model"] == "m1"
    assert meta["integrity"] == {"bytes": npy.stat().st_size, "shape": [ROWS, DIM], "dtype": "float32",
                                 "sha256": hashlib.sha256(npy.read_bytes()).hexdigest()}
    array, got = cache.get(key)
    np.testing.assert_array_equal(np.asarray(array), _array())
    assert got["integrity"] == meta["integrity"]


def test_truncated_entry_is_removed_with_one_warning_and_can_be_put_again(tmp_path, capsys):
    cache = EmbeddingCache(tmp_path)
    key = _put(cache, "a")
    npy = cache._dir(key) / "embeddings.npy"
    npy.write_bytes(npy.read_bytes()[: npy.stat().st_size // 2])
    capsys.readouterr()
    assert cache.get(key) is None
    lines = _warnings(capsys.readouterr().err)
    assert len(lines) == 1
    assert lines[0].startswith(f"warning: embedding cache entry {key[:12]} (m1/d1) was corrupt (")
    assert lines[0].endswith("); it is recomputed")
    assert not cache._dir(key).exists()
    assert cache.get(key) is None and capsys.readouterr().err == ""  # now simply missing: silent
    cache.put(key, _array(), {"model": "m1"})
    np.testing.assert_array_equal(np.asarray(cache.get(key)[0]), _array())


def test_entry_replaced_by_another_valid_npy_of_other_shape_is_detected(tmp_path, capsys):
    cache = EmbeddingCache(tmp_path)
    key = _put(cache, "a")
    npy = cache._dir(key) / "embeddings.npy"
    size = npy.stat().st_size
    np.save(npy, _array().reshape(DIM, ROWS).copy())  # same bytes in all, another shape
    assert npy.stat().st_size == size
    assert cache.get(key) is None
    (line,) = _warnings(capsys.readouterr().err)
    assert "shape" in line or "[4, 8]" in line
    assert not cache._dir(key).exists()


def test_same_size_other_bytes_is_caught_by_full_verify(tmp_path, capsys):
    cache = EmbeddingCache(tmp_path)
    key, good = _put(cache, "a"), _put(cache, "b", seed=1)
    npy = cache._dir(key) / "embeddings.npy"
    data = bytearray(npy.read_bytes())
    data[-1] ^= 0xFF  # flip bits of the last value: header and size unchanged
    npy.write_bytes(bytes(data))
    assert cache.get(key) is not None  # the cheap check cannot see it
    assert cache.verify(full=False) == (2, [])
    checked, removed = cache.verify(full=True)
    assert checked == 2 and [k for k, _ in removed] == [key] and "sha256" in removed[0][1]
    assert not cache._dir(key).exists() and cache.get(good) is not None
    assert capsys.readouterr().out == ""  # maintenance returns data; it prints nothing


@pytest.mark.subprocess
def test_killed_writers_temp_dir_is_cleaned_and_a_live_young_one_kept(tmp_path):
    cache = EmbeddingCache(tmp_path)
    tmp = cache.root / "tmp"
    tmp.mkdir(parents=True)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = tmp / f"abcdef123456.{child.pid}.xyz_1234"
    dead.mkdir()
    (dead / "embeddings.npy").write_bytes(b"half written")
    alive = tmp / f"abcdef123456.{os.getpid()}.abcd_123"
    alive.mkdir()
    old_style_young = tmp / "abcdef123456.k2j4h5g6"
    old_style_young.mkdir()
    old_style_old = tmp / "abcdef123456.q9w8e7r6"
    old_style_old.mkdir()
    past = time.time() - 3 * 86400
    os.utime(old_style_old, (past, past))
    assert cache.clean_tmp() == 2
    assert sorted(p.name for p in tmp.iterdir()) == sorted([alive.name, old_style_young.name])
    # every writer names its PID
    with cache.writer(cache_key(test="w"), 2, {}) as write:
        (inside,) = [p for p in tmp.iterdir() if p.name.startswith(cache_key(test="w")[:12])]
        assert inside.name.split(".")[1] == str(os.getpid())
        write(0, np.ones((2, 3), dtype=np.float32))


@pytest.mark.subprocess
def test_opening_the_cache_cleans_stale_temp_dirs(tmp_path):
    tmp = tmp_path / "embeddings" / "tmp"
    tmp.mkdir(parents=True)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    (tmp / f"abcdef123456.{child.pid}.zzzz_999").mkdir()
    EmbeddingCache(tmp_path)
    assert list(tmp.iterdir()) == []


def test_summary_groups_bytes_by_model_dataset_kind(tmp_path):
    cache = EmbeddingCache(tmp_path)
    keys = [_put(cache, "a", {"model": "m1", "dataset": "d1", "manifest": "x"}),
            _put(cache, "b", {"model": "m1", "dataset": "d1", "manifest": "y"}),
            _put(cache, "c", {"model": "m1", "texts": 3}),
            _put(cache, "d", {"model": "m2", "dataset": "d1", "slide": "s.svs"})]
    sizes = {e.key: e.bytes for e in cache.entries()}
    assert set(sizes) == set(keys) and all(b > 0 for b in sizes.values())
    rows = cache.summary()
    *groups, total = rows
    assert [(r["model"], r["dataset"], r["kind"], r["entries"], r["bytes"]) for r in groups] == [
        ("m1", None, "texts", 1, sizes[keys[2]]),
        ("m1", "d1", "images", 2, sizes[keys[0]] + sizes[keys[1]]),
        ("m2", "d1", "slide", 1, sizes[keys[3]])]
    assert total["total"] and total["entries"] == 4 and total["bytes"] == sum(sizes.values())
    assert all(e.ok_header and e.format == FORMAT for e in cache.entries())


def test_prune_unused_older_format_and_dry_run(tmp_path):
    cache = EmbeddingCache(tmp_path)
    key = _put(cache, "a")
    legacy = cache_key(test="legacy")  # as the code before integrity wrote it: no "integrity", no "format"
    d = cache._dir(legacy)
    d.mkdir(parents=True)
    np.save(d / "embeddings.npy", _array())
    (d / "meta.json").write_text(json.dumps({"model": "m0", "dataset": "d1", "manifest": "x"}))
    assert cache.get(legacy) is not None  # still read

    planned = cache.prune(dry_run=True)
    assert [(k, why.startswith("older format")) for k, why, _ in planned] == [(legacy, True)]
    assert planned[0][2] > 0 and d.exists()
    assert cache.prune(older_than_days=0, dry_run=True) and d.exists() and cache._dir(key).exists()

    assert [k for k, _, _ in cache.prune()] == [legacy]
    assert not d.exists() and cache._dir(key).exists()
    assert cache.prune(older_than_days=30) == []  # used just now
    time.sleep(0.01)
    assert [k for k, why, _ in cache.prune(older_than_days=0)] == [key]
    assert not cache._dir(key).exists() and list(cache.entries()) == []


def test_get_marks_last_use(tmp_path):
    cache = EmbeddingCache(tmp_path)
    key = _put(cache, "lastuse")
    meta = cache._dir(key) / "meta.json"
    past = time.time() - 10 * 86400
    os.utime(meta, (past, past))
    (entry,) = cache.entries()
    assert entry.last_used == pytest.approx(past, abs=1)
    assert cache.prune(older_than_days=5, dry_run=True)
    cache.get(key)
    (entry,) = cache.entries()
    assert entry.last_used > time.time() - 60
    assert cache.prune(older_than_days=5) == []


def test_entry_that_cannot_be_read_back_after_writing_is_one_line_error(tmp_path):
    class LyingDisk(EmbeddingCache):
        def get(self, key):
            return None

    class Spec:
        id = "m"

    class Runtime:
        precision = "fp32"

    class Model:
        def encode_texts(self, texts):
            import torch

            return torch.ones(len(texts), 3)

    embedder = Embedder(Spec(), Model, "w", Runtime(), LyingDisk(tmp_path), 4, 0)
    with pytest.raises(PathboardError, match="could not be read back") as err:
        embedder.texts(["a", "b"])
    assert "\n" not in str(err.value)


@pytest.mark.slow
@pytest.mark.subprocess
def test_truncated_images_entry_is_recomputed_by_the_next_run(tmp_path, tiny_hub, shared_data):
    cache = tmp_path / "cache"
    db = tmp_path / "pb.duckdb"
    args = ("run", "--models", "quiltnet-b32", "--datasets", "crc-val-he-7k", "--tasks", "zeroshot",
            "--prompt-modes", "single", "--data-root", shared_data, "--db", db, "--workers", "0")
    env = {"PATHBOARD_CACHE": str(cache)}
    first = pathboard(*args, env=env)
    assert first.returncode == 0, first.stderr
    before = _leaderboard(db)
    assert before
    images = [p.parent for p in (cache / "embeddings").rglob("meta.json")
              if (m := json.loads(p.read_text())).get("dataset") == "crc-val-he-7k" and "manifest" in m]
    assert len(images) == 1
    npy = images[0] / "embeddings.npy"
    npy.write_bytes(npy.read_bytes()[:200])

    second = pathboard(*args, "--rescore", env=env)
    assert second.returncode == 0, second.stderr
    assert "Traceback" not in second.stderr
    lines = _warnings(second.stderr)
    assert len(lines) == 1 and images[0].name[:12] in lines[0] and "quiltnet-b32/crc-val-he-7k" in lines[0]
    assert _leaderboard(db) == before
    con = duckdb.connect(str(db), read_only=True)
    forwards = [r[0] for r in con.execute("SELECT image_forwards FROM runs ORDER BY started_at").fetchall()]
    con.close()
    assert forwards[-1] > 0  # the images were embedded again
    assert (images[0] / "embeddings.npy").stat().st_size > 200


def test_prune_removes_the_shards_of_runs_that_never_finished(tmp_path):
    from pathboard.core.embedding.cache import EmbeddingCache

    cache = EmbeddingCache(tmp_path)
    old, fresh = (cache.root / "partial" / name / "shard-000000000" for name in ("a" * 64, "b" * 64))
    for shard in (old, fresh):
        shard.mkdir(parents=True)
        (shard / "failed.json").write_text("{}")
    thumbs = {age: tmp_path / "datasets" / f"thumbnails-v4-{age}" for age in ("old", "new")}
    for folder in thumbs.values():  # a run killed between embedding and finding its near-duplicate groups
        folder.mkdir(parents=True)
        (folder / "rows-000000000.npy").write_bytes(b"x" * 10)
    stale = time.time() - 3 * 86400
    for path in (old, old / "failed.json", old.parent, thumbs["old"], thumbs["old"] / "rows-000000000.npy"):
        os.utime(path, (stale, stale))
    assert not list(cache.entries())  # shards are not cache entries
    removed = cache.prune()
    assert [(key, why) for key, why, _ in removed] == [
        (f"partial/{'a' * 64}", "unfinished shards of an interrupted run"),
        ("datasets/thumbnails-v4-old", "thumbnails of an interrupted run (for near-duplicate groups)")]
    assert not old.parent.exists() and fresh.exists()
    assert not thumbs["old"].exists() and thumbs["new"].exists()
