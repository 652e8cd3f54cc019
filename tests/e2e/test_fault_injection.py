"""Fault injection on real runs: kill -9 at random points, a reader holding the file, a full disk for the
cache. Each test prints its figure (``pytest -n 0 -s tests/e2e/test_fault_injection.py`` shows them; the README's
reliability section quotes them)."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from support.helpers import pathboard

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

#: kills of one test run; four cover each combination: cold (kill 0), warm with a reader (1), warm (2), cold with a
#: reader holding the file (3)
KILLS = int(os.environ.get("PATHBOARD_FAULT_KILLS", "4"))


RUN = ["run", "--models", "quiltnet-b32,plip", "--datasets", "crc-val-he-7k", "--tasks", "zeroshot,prompt-sensitivity",
       "--prompt-modes", "single", "--workers", "0"]


def leaderboard(db) -> dict:
    rows = duckdb.connect(str(db), read_only=True).execute(
        "SELECT model, dataset, task, variant, prompt_mode, metric, value FROM leaderboard").fetchall()
    return {tuple(r[:6]): r[6] for r in rows}


def duplicated(db) -> int:
    """Cells stored twice within one run (a journal replayed twice would do that)."""
    (n,), = duckdb.connect(str(db), read_only=True).execute(
        "SELECT count(*) - count(DISTINCT (run_id, model, dataset, task, variant, prompt_mode)) FROM cells").fetchall()
    return n


def bad_image_corpus(folder: Path, source: Path) -> tuple[dict[str, str], list[str]]:
    """A folder dataset beside real CRC patches: (file -> what must be said of it, files that must be read)."""
    import numpy as np
    from PIL import Image

    rgb = Image.open(source).convert("RGB")
    good, bad = [], {}
    for cls in ("TUM", "STR"):
        (folder / cls).mkdir(parents=True, exist_ok=True)
    (folder / "EMPTY").mkdir()
    odd = {
        "sixteen.png": Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.uint16) * 200),
        "float.tif": Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.float32) / 7.0),
        "palette.png": rgb.convert("P"), "bilevel.png": rgb.convert("1"), "cmyk.jpg": rgb.convert("CMYK"),
        "rgba.png": rgb.convert("RGBA"),
    }
    for name, img in odd.items():
        img.save(folder / "TUM" / name)
        good.append(f"TUM/{name}")
    exif = rgb.getexif()
    exif[0x0112] = 6
    rgb.save(folder / "STR" / "rotated.jpg", exif=exif)
    good.append("STR/rotated.jpg")
    rgb.save(folder / "STR" / "plain.png")
    good.append("STR/plain.png")
    (folder / "STR" / "empty.png").write_bytes(b"")
    bad["STR/empty.png"] = "cannot read image"
    (folder / "STR" / "text.png").write_text("not an image")
    bad["STR/text.png"] = "cannot read image"
    data = (folder / "STR" / "plain.png").read_bytes()
    (folder / "STR" / "truncated.png").write_bytes(data[: len(data) // 3])
    bad["STR/truncated.png"] = "cannot read image"
    Image.new("1", (3000, 3000)).save(folder / "STR" / "huge.png")  # 9 Mpx in a few KiB
    bad["STR/huge.png"] = "image too large"
    (folder / "STR" / "vanished.png").symlink_to(folder / "nowhere.png")
    bad["STR/vanished.png"] = "file not found (vanished or a broken link)"
    return bad, good


def images_entry(cache: Path, dataset: str):
    import numpy as np

    for meta in (cache / "embeddings").glob("*/*/meta.json"):
        info = json.loads(meta.read_text())
        if info.get("dataset") == dataset and "rows" in info and not info.get("perturbation"):
            return np.load(meta.parent / "embeddings.npy")
    raise AssertionError(f"no images entry of {dataset} in {cache}")


def test_kill_9_at_random_points_then_resume_loses_and_duplicates_nothing(tmp_path, tiny_hub, shared_data):
    reference_db = tmp_path / "reference.duckdb"
    clean = pathboard(*RUN, "--data-root", shared_data, "--db", reference_db,
                      env={"PATHBOARD_CACHE": str(tmp_path / "reference-cache")})
    assert clean.returncode == 0, clean.stderr[-3000:]
    reference = leaderboard(reference_db)

    db, cache = tmp_path / "pb.duckdb", tmp_path / "cache"
    env = {**os.environ, "PATHBOARD_CACHE": str(cache), "PATHBOARD_LOCK_WAIT": "30"}
    rng = random.Random(0)
    cold = None
    lost = dupes = 0
    for kill in range(KILLS):
        if kill % 4 == 3:  # the first kill and every fourth start from a cold cache: kills land in embedding too
            subprocess.run(["rm", "-rf", str(cache / "embeddings")], check=True)
        reader = None
        if kill % 2 == 1:  # and every other one with a reader holding the file: kills land in the journal path
            reader = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(db)!r}, "
                                       "read_only=True); time.sleep(4)"]) if db.exists() else None
        start = time.monotonic()
        log = tmp_path / f"kill-{kill}.log"
        with open(log, "w") as err:
            proc = subprocess.Popen([str(Path(sys.executable).parent / "pathboard"), *map(str, RUN), "--data-root",
                                     str(shared_data), "--db", str(db)], stderr=err, env=env)
        if kill == 0:  # the first kill lands inside the run, however slowly a loaded machine starts it: once the
            deadline = time.monotonic() + 120  # run is recorded and loads its first model (a cold cache)
            while "loading " not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.2, 1.0))
        else:
            time.sleep(rng.uniform(0.5, cold or 8.0))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if reader is not None:
            reader.wait()
        resumed = subprocess.run([str(Path(sys.executable).parent / "pathboard"), *map(str, RUN), "--data-root",
                                  str(shared_data), "--db", str(db)], capture_output=True, text=True, env=env)
        cold = cold or max(1.0, time.monotonic() - start)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        board = leaderboard(db)
        lost += len(set(reference) - set(board))
        dupes += duplicated(db)
        assert board == reference  # identical numbers after every resume
    listed = pathboard("runs", "--db", db, "--limit", "100")
    assert listed.returncode == 0 and " running " not in listed.stdout  # killed runs are marked interrupted
    interrupted = listed.stdout.count("interrupted")
    leftovers = list((cache / "embeddings" / "tmp").glob("*")) if (cache / "embeddings" / "tmp").exists() else []
    print(f"\n{KILLS} kills, {lost} lost, {dupes} duplicated; {interrupted} run(s) marked interrupted; "
          f"{len(leftovers)} temporary cache entries left")
    assert lost == dupes == 0 and interrupted >= 1


def test_a_full_disk_for_the_cache_is_one_line_and_leaves_nothing_half_written(tmp_path, tiny_hub, shared_data):
    mount = tmp_path / "tiny-disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({made.stderr.decode().strip() or 'not permitted'})")
    try:
        filler = mount / "filler"
        try:  # fill the disk but for a few KiB: the text embeddings fit, the image embeddings do not
            with open(filler, "wb") as f:
                f.write(b"\0" * (64 * 1024 - 6 * 1024))
        except OSError:
            pass
        out = pathboard("run", "--models", "quiltnet-b32", "--datasets", "crc-val-he-7k", "--tasks", "zeroshot",
                        "--prompt-modes", "single", "--workers", "0", "--data-root", shared_data,
                        "--db", tmp_path / "pb.duckdb", env={"PATHBOARD_CACHE": str(mount)})
        assert out.returncode == 2 and "Traceback" not in out.stderr
        assert "No space left on device" in out.stderr
        half = [p for p in (mount / "embeddings").rglob("embeddings.npy") if "tmp" in p.relative_to(mount).parts]
        assert not half  # a failed write publishes nothing and cleans its temporary entry
        said = next(line for line in out.stderr.splitlines() if "No space left" in line)
        print(f"\nfull disk: the run said {said[:90]!r}..., {len(half)} half-written entries")
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_corpus_of_bad_images_is_named_and_the_rest_is_scored(tmp_path, tiny_hub, shared_data):
    folder = tmp_path / "corpus"
    bad, good = bad_image_corpus(folder, next((shared_data / "CRC-VAL-HE-7K" / "TUM").iterdir()))
    db = tmp_path / "pb.duckdb"
    out = pathboard("run", "--models", "quiltnet-b32", "--datasets", f"folder:{folder}", "--tasks", "zeroshot",
                    "--prompt-modes", "single", "--workers", "1", "--db", db,
                    env={"PATHBOARD_CACHE": str(tmp_path / "cache"), "PATHBOARD_MAX_PIXELS": "4000000"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    assert "empty class folder(s): EMPTY" in out.stderr
    skipped = duckdb.connect(str(db), read_only=True).execute("SELECT skipped_files FROM runs").fetchone()[0]
    counted = json.loads(skipped)[f"folder:{folder}"]
    for path, said in bad.items():
        assert said in counted[path], (path, counted.get(path))
    (n,), = duckdb.connect(str(db), read_only=True).execute(
        "SELECT DISTINCT n FROM leaderboard WHERE metric = 'accuracy'").fetchall()
    assert n == len(good)
    print(f"\n{len(bad) + len(good)} odd images: {len(bad)} refused and named in the run record, {len(good)} read "
          f"(16-bit, float, palette, 1-bit, CMYK, RGBA, EXIF-rotated, plain) and scored")


def test_a_killed_embedding_resumes_from_its_last_complete_shard(tmp_path, tiny_hub, shared_data):
    import numpy as np

    args = ["run", "--models", "quiltnet-b32", "--datasets", "lc25000-lung", "--tasks", "zeroshot", "--prompt-modes",
            "single", "--workers", "0", "--batch-size", "50", "--data-root", str(shared_data)]
    shard_env = {"PATHBOARD_SHARD_ROWS": "100"}  # 600 images: 6 shards of 2 batches
    reference = pathboard(*args, "--db", tmp_path / "ref.duckdb",
                          env={**shard_env, "PATHBOARD_CACHE": str(tmp_path / "ref-cache")})
    assert reference.returncode == 0, reference.stderr[-3000:]
    cache, db = tmp_path / "cache", tmp_path / "pb.duckdb"
    env = {**os.environ, **shard_env, "PATHBOARD_CACHE": str(cache)}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "pathboard"), *args, "--db", str(db)],
                            stderr=subprocess.DEVNULL, env=env)
    partial = cache / "embeddings" / "partial"

    def published() -> int:  # a shard being written is a "shard-...<pid>.tmp" folder until its one rename
        return sum(not f.parent.name.endswith(".tmp") for f in partial.glob("*/shard-*/failed.json"))

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and published() < 2:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    complete = published()
    assert 2 <= complete < 6
    resumed = subprocess.run([str(Path(sys.executable).parent / "pathboard"), *args, "--db", str(db)],
                             capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (forwards,), = duckdb.connect(str(db), read_only=True).execute(
        "SELECT image_forwards FROM runs ORDER BY started_at DESC LIMIT 1").fetchall()
    assert forwards == 2 * (6 - complete)  # only the shards not complete at the kill are embedded again
    assert np.array_equal(images_entry(cache, "lc25000-lung"), images_entry(tmp_path / "ref-cache", "lc25000-lung"))
    assert not list(partial.glob("*/shard-*"))  # the shards are gone once the entry is published
    print(f"\nkilled after {complete} of 6 shards: resumed with {6 - complete} shard(s) embedded, "
          f"bit-identical embeddings")
