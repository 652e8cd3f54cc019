"""Nothing lost, nothing silently wrong: results survive readers and concurrent runs, run records are
honest, slides without resolution metadata can be tiled, and every misuse is one line with the fix."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest
import tifffile
from support.helpers import REPO, SLOWER, pathboard

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

CRC = ["--datasets", "crc-val-he-7k", "--prompt-modes", "single", "--workers", "0"]


def q(db, sql, params=()):
    return duckdb.connect(str(db), read_only=True).execute(sql, list(params)).fetchall()


def stored_cells(stderr: str) -> int:
    line = next(line for line in stderr.splitlines() if line.startswith("run ") and " cell(s) stored" in line)
    return int(line.split(": ", 1)[1].split(" ", 1)[0])


def hold(db: Path, seconds: float) -> subprocess.Popen:
    """A notebook-like reader: a read-only connection held open for ``seconds``."""
    reader = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(db)!r}, "
                               f"read_only=True); print('held', flush=True); time.sleep({seconds})"],
                              stdout=subprocess.PIPE, text=True)
    assert reader.stdout.readline().strip() == "held"
    return reader


MISUSES = [
    (["run", "--weights", "quiltnet-b3=/tmp", "--models", "quiltnet-b32", "--datasets", "crc-val-he-7k"],
     "--weights quiltnet-b3=...: unknown model 'quiltnet-b3'; did you mean quiltnet-b32"),
    (["run", "--weights", "plip=/tmp", "--models", "quiltnet-b32", "--datasets", "crc-val-he-7k"],
     "model plip is not in this run"),
    (["run", "--prompts", "lc25000-lung={prompts}", "--models", "quiltnet-b32", "--datasets", "crc-val-he-7k"],
     "--prompts lc25000-lung=...: dataset lc25000-lung is not in this run"),
    (["run", "--assume-mpp", "tcga-cesc=0.5", "--models", "quiltnet-b32", "--datasets", "crc-val-he-7k"],
     "--assume-mpp tcga-cesc=0.5: dataset tcga-cesc is not in this run"),
    (["run", "--assume-mpp", "crc-val-he-7k=fast", "--models", "quiltnet-b32", "--datasets", "crc-val-he-7k"],
     "write DATASET=MPP with MPP in µm per pixel"),
    (["run", "--datasets", "folder:", "--models", "quiltnet-b32"], "folder:: give a path after 'folder:'"),
    (["run", "--models", "quiltnet-b32", "--datasets", "crc-val-he-7k", "--db", "{file}/sub/pb.duckdb"],
     "cannot create the folder of the results database"),
    (["leaderboard", "--port", "99999", "--db", "{file}"], "99999 is not in the range 1<=x<=65535"),
    # --db is checked by its content before any work, in every command that takes it
    (["runs", "--db", "{file}"], "a-file is not a DuckDB database (text); pathboard keeps results in DuckDB"),
    (["export", "--db", "{file}"], "a-file is not a DuckDB database (text)"),
    (["leaderboard", "--db", "{file}"], "a-file is not a DuckDB database (text)"),
    (["runs", "--db", "{file}.missing"], "no results database at"),
]


@pytest.mark.parametrize("name,content,said", [("results.json", b'{"rows": []}', "JSON"),
                                                ("results.csv", b"model,value\nplip,0.5\n", "text"),
                                                ("results.parquet", b"PAR1" + bytes(64), "a Parquet file"),
                                                ("empty.duckdb", b"", "0 bytes")])
def test_a_foreign_db_file_stops_the_run_before_any_work(tmp_path, shared_data, name, content, said):
    db = tmp_path / name
    db.write_bytes(content)
    start = time.monotonic()
    out = pathboard("run", "--models", "quiltnet-b32", "--datasets", "crc-val-he-7k", "--data-root", shared_data,
                    "--db", db, env={"PATHBOARD_CACHE": str(tmp_path / "cache")})
    seconds = time.monotonic() - start
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr  # one line
    assert f"{db} is not a DuckDB database ({said}" in out.stderr
    assert db.read_bytes() == content and not (tmp_path / "cache").exists()  # untouched, nothing computed
    assert seconds < 2 * SLOWER, seconds


def unscaled_slide(path: Path, seed: int) -> None:
    """A pyramidal TIFF with tissue and no resolution metadata at all (like an Aperio frozen section
    exported without MPP or AppMag)."""
    rng = np.random.default_rng(seed)
    img = np.full((1024, 1024, 3), 245, dtype=np.uint8)
    img[64:-64, 64:-64] = rng.integers(60, 200, size=(896, 896, 3), dtype=np.uint8) // [1, 2, 1]
    path.parent.mkdir(parents=True, exist_ok=True)
    with tifffile.TiffWriter(path) as tif:
        tif.write(img, tile=(256, 256), photometric="rgb")
        tif.write(img[::2, ::2], tile=(256, 256), photometric="rgb", subfiletype=1)


def test_a_reader_holding_the_file_for_30_s_loses_no_result(tmp_path, tiny_hub, shared_data):
    db, env = tmp_path / "pb.duckdb", {"PATHBOARD_CACHE": str(tmp_path / "cache"), "PATHBOARD_LOCK_WAIT": "120"}
    first = pathboard("run", "--models", "quiltnet-b32", "--tasks", "zeroshot", *CRC, "--data-root", shared_data,
                      "--db", db, env=env)
    assert first.returncode == 0, first.stderr
    started = time.monotonic()
    reader = hold(db, 30)
    run = pathboard("run", "--models", "quiltnet-b32,plip", "--tasks", "zeroshot,prompt-sensitivity", *CRC,
                    "--data-root", shared_data, "--db", db, env=env)
    reader.wait()
    assert time.monotonic() - started >= 30
    assert run.returncode == 0, run.stderr[-3000:]
    assert "is held by another process (a reader?); waiting up to 120 s" in run.stderr
    assert "after waiting" in run.stderr and "more wait in its journal" not in run.stderr
    (run_id,), = q(db, "SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1")
    rows = q(db, "SELECT model, task, variant, prompt_mode FROM cells WHERE run_id = ?", [run_id])
    assert len(rows) == len(set(rows)) > 100  # every variant of every cell, none twice
    cells = {(m, t, p) for m, t, _, p in rows}
    assert len(cells) == stored_cells(run.stderr)  # a cell is model x dataset x task x prompt mode
    assert q(db, "SELECT status FROM runs WHERE run_id = ?", [run_id]) == [("finished",)]
    assert not list((tmp_path / "pb.duckdb.journal").glob("*.jsonl"))
    print(f"reader held the file 30 s: {len(cells)} cells stored, 0 lost, 0 duplicated")


def test_two_runs_write_one_database_at_once(tmp_path, tiny_hub, shared_data):
    db = tmp_path / "pb.duckdb"
    procs = [subprocess.Popen([str(Path(sys.executable).parent / "pathboard"), "run", "--models", model, "--tasks",
                               "zeroshot,prompt-sensitivity", *CRC, "--data-root", str(shared_data), "--db", str(db)],
                              stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PATHBOARD_CACHE": str(tmp_path / f"cache-{model}")})
             for model in ("quiltnet-b32", "plip")]
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    runs = q(db, "SELECT run_id, status FROM runs")
    assert len(runs) == 2 and {s for _, s in runs} == {"finished"}
    total = sum(stored_cells(e) for e in errors)
    (n, distinct, cells), = q(db, "SELECT count(*), count(DISTINCT (run_id, model, task, variant, prompt_mode)), "
                                  "count(DISTINCT (run_id, model, task, prompt_mode)) FROM cells")
    assert n == distinct and cells == total


def test_a_killed_run_is_marked_interrupted_and_runs_lists_it(tmp_path, tiny_hub, shared_data):
    db, env = tmp_path / "pb.duckdb", {**os.environ, "PATHBOARD_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "pathboard"), "run", "--models", "quiltnet-b32,plip",
                             "--tasks", "zeroshot,prompt-sensitivity", *CRC, "--data-root", str(shared_data),
                             "--db", str(db)], stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # killed once its run record exists
        try:
            if q(db, "SELECT count(*) FROM runs")[0][0]:
                break
        except duckdb.Error:
            pass
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert q(db, "SELECT status, pid FROM runs") == [("running", proc.pid)]
    listed = pathboard("runs", "--db", db)
    assert listed.returncode == 0, listed.stderr
    assert "interrupted" in listed.stdout and "pathboard run --models quiltnet-b32,plip" in listed.stdout
    assert q(db, "SELECT status FROM runs") == [("interrupted",)]


@pytest.mark.parametrize("content", [b"", b"not a database at all" * 10])
def test_an_empty_or_foreign_database_file_says_what_to_do(tmp_path, content, tiny_hub, shared_data):
    db = tmp_path / "pb.duckdb"
    db.write_bytes(content)
    out = pathboard("run", "--models", "quiltnet-b32", "--tasks", "zeroshot", *CRC, "--data-root", shared_data,
                    "--db", db, env={"PATHBOARD_CACHE": str(tmp_path / "cache")})
    assert out.returncode == 2 and "Traceback" not in out.stderr
    line = out.stderr.strip().splitlines()[-1]
    assert "is not a DuckDB database" in line and "--db NEW.duckdb" in line
    assert ("(0 bytes" in line) == (not content)


@pytest.mark.parametrize("args,expected", MISUSES, ids=[m[1][:40] for m in MISUSES])
def test_misuse_is_one_line_with_the_fix(tmp_path, shared_data, tiny_hub, args, expected):
    prompts = REPO / "pathboard" / "prompts" / "lc25000-lung.json"
    file = tmp_path / "a-file"
    file.write_text("x")
    args = [a.format(prompts=prompts, file=file) for a in args]
    out = pathboard(*args, "--data-root", shared_data, env={"PATHBOARD_CACHE": str(tmp_path / "cache")}) \
        if args[0] == "run" else pathboard(*args)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and "unexpected" not in out.stderr
    assert expected in out.stderr.strip().splitlines()[-1], out.stderr


def test_slides_without_resolution_metadata_are_tiled_at_an_assumed_mpp(tmp_path, tiny_hub):
    project = tmp_path / "project"
    for i in range(2):
        unscaled_slide(project / f"s{i}.tif", i)
    (project / "cohort.csv").write_text("slide_path,label\ns0.tif,normal\ns1.tif,tumor\n")
    spec = f"slides-csv:{project / 'cohort.csv'}"
    db, env = tmp_path / "pb.duckdb", {"PATHBOARD_CACHE": str(tmp_path / "cache")}
    common = ["run", "--models", "quiltnet-b32", "--datasets", spec, "--tasks", "zeroshot-wsi", "--prompt-modes",
              "single", "--workers", "0", "--db", db]
    bare = pathboard(*common, env=env)
    assert "Traceback" not in bare.stderr
    assert f"if you know its resolution, pass --assume-mpp {spec}=MPP" in bare.stderr
    assumed = pathboard(*common, "--assume-mpp", f"{spec}=0.25", env=env)
    assert assumed.returncode == 0, assumed.stderr[-3000:]
    assert "2 slide(s) without resolution metadata tiled at an assumed 0.25 µm/px (--assume-mpp)" in assumed.stderr
    protocol, default = q(db, "SELECT protocol->>'$.task.assumed_mpp.mpp', default_protocol FROM cells "
                              "WHERE variant = ''")[0]
    assert float(protocol) == 0.25 and default is False


def test_cache_ls_verify_and_prune_from_the_command_line(tmp_path, tiny_hub, shared_data):
    cache = tmp_path / "cache"
    env = {"PATHBOARD_CACHE": str(cache)}
    ran = pathboard("run", "--models", "quiltnet-b32", "--tasks", "zeroshot", *CRC, "--data-root", shared_data,
                    "--db", tmp_path / "pb.duckdb", env=env)
    assert ran.returncode == 0, ran.stderr
    listed = pathboard("cache", "ls", env=env)
    assert listed.returncode == 0 and "quiltnet-b32" in listed.stdout and "crc-val-he-7k" in listed.stdout
    assert "total" in listed.stdout
    npy = next(p for p in (cache / "embeddings").rglob("embeddings.npy")
               if "tmp" not in p.relative_to(cache).parts and p.stat().st_size > 1024)
    data = bytearray(npy.read_bytes())
    data[-1] ^= 0xFF  # same size, one byte flipped: only the full checksum sees it
    npy.write_bytes(bytes(data))
    checked = pathboard("cache", "verify", env=env)
    assert checked.returncode == 0 and "1 corrupt removed" in checked.stdout and "sha256" in checked.stdout
    dry = pathboard("cache", "prune", "--older-than", "0", "--dry-run", env=env)
    assert dry.returncode == 0 and "would remove" in dry.stdout and "would be freed" in dry.stdout
    pruned = pathboard("cache", "prune", "--older-than", "0", env=env)
    assert pruned.returncode == 0 and " freed" in pruned.stdout
    assert "is empty" in pathboard("cache", "ls", env=env).stdout


def test_verify_notices_a_changed_image_even_with_its_size_and_mtime_restored(tmp_path, tiny_hub, shared_data):
    import shutil

    folder = tmp_path / "set"
    for cls in ("TUM", "STR"):
        shutil.copytree(shared_data / "CRC-VAL-HE-7K" / cls, folder / cls)
    env = {"PATHBOARD_CACHE": str(tmp_path / "cache")}
    args = ["run", "--models", "quiltnet-b32", "--datasets", f"folder:{folder}", "--tasks", "zeroshot",
            "--prompt-modes", "single", "--workers", "0", "--db", tmp_path / "pb.duckdb"]
    assert pathboard(*args, env=env).returncode == 0  # both manifests (with and without content hashes) cached
    assert pathboard(*args, "--verify", env=env).returncode == 0
    image = sorted((folder / "TUM").iterdir())[0]
    stat = image.stat()
    data = bytearray(image.read_bytes())
    data[-100:] = bytes(255 - b for b in data[-100:])  # new pixels, same size
    image.write_bytes(bytes(data))
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the old modification time
    plain = pathboard(*args, "--rescore", env=env)
    assert " 0 images and 0 tiles embedded" in plain.stderr  # size and mtime alone cannot see it
    verified = pathboard(*args, "--verify", env=env)
    assert verified.returncode == 0 and " 0 images and 0 tiles embedded" not in verified.stderr


def test_cells_of_a_reader_that_outlasts_the_run_are_merged_by_the_next_command(tmp_path, tiny_hub, shared_data):
    db, env = tmp_path / "pb.duckdb", {"PATHBOARD_CACHE": str(tmp_path / "cache"), "PATHBOARD_LOCK_WAIT": "2"}
    args = ["run", "--models", "quiltnet-b32", "--tasks", "zeroshot", *CRC, "--data-root", shared_data, "--db", db]
    assert pathboard(*args, env=env).returncode == 0
    reader = hold(db, 600)
    run = pathboard(*args, "--rescore", env=env)
    reader.kill()  # it outlasted the run
    reader.wait()
    assert run.returncode == 0, run.stderr[-3000:]
    assert "more wait in its journal" in run.stderr and "merged by the next pathboard command" in run.stderr
    listed = pathboard("runs", "--db", db)
    assert listed.returncode == 0, listed.stderr
    (n, distinct), = q(db, "SELECT count(*), count(DISTINCT (run_id, task, variant, prompt_mode)) FROM cells")
    assert n == distinct == 4  # both runs' cells (the headline and its reliability bins), once each
    assert [s for (s,) in q(db, "SELECT status FROM runs")] == ["finished", "finished"]
