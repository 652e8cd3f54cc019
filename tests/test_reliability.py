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
from helpers import pathboard

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
    cells = q(db, "SELECT model, task, variant, prompt_mode FROM cells WHERE run_id = ?", [run_id])
    assert len(cells) == len(set(cells)) == stored_cells(run.stderr) > 100  # every cell, none twice
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
    (n, distinct), = q(db, "SELECT count(*), count(DISTINCT (run_id, model, task, variant, prompt_mode)) FROM cells")
    assert n == distinct == total


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
]


@pytest.mark.parametrize("args,expected", MISUSES, ids=[m[1][:40] for m in MISUSES])
def test_misuse_is_one_line_with_the_fix(tmp_path, shared_data, tiny_hub, args, expected):
    prompts = Path(__file__).parents[1] / "pathboard" / "prompts" / "lc25000-lung.json"
    file = tmp_path / "a-file"
    file.write_text("x")
    args = [a.format(prompts=prompts, file=file) for a in args]
    out = pathboard(*args, "--data-root", shared_data, env={"PATHBOARD_CACHE": str(tmp_path / "cache")}) \
        if args[0] == "run" else pathboard(*args)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and "unexpected" not in out.stderr
    assert expected in out.stderr.strip().splitlines()[-1], out.stderr


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


def _tar_with(folder: Path, member, data: bytes = b"") -> Path:
    import io
    import tarfile

    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "set.tar"
    with tarfile.open(archive, "w") as tf:
        tf.addfile(member, io.BytesIO(data) if data else None)
    return archive


def test_archives_drop_setuid_bits_and_refuse_device_nodes(tmp_path):
    import stat
    import tarfile

    from pathboard.core.errors import PathboardError
    from pathboard.core.media.download import extract

    script = tarfile.TarInfo("set/run.sh")
    script.size, script.mode = 3, 0o4777  # setuid, world-writable
    extract(_tar_with(tmp_path / "a", script, b"#!\n"), tmp_path / "out")
    mode = (tmp_path / "out" / "set" / "run.sh").stat().st_mode
    assert not mode & stat.S_ISUID and not mode & stat.S_IWOTH
    node = tarfile.TarInfo("set/disk")
    node.type = tarfile.CHRTYPE
    with pytest.raises(PathboardError, match="device node"):
        extract(_tar_with(tmp_path / "b", node), tmp_path / "dev")
    assert not (tmp_path / "dev" / "set" / "disk").exists()


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
    plain = pathboard(*args, env=env)
    assert " 0 image batch(es) embedded" in plain.stderr  # size and mtime alone cannot see it
    verified = pathboard(*args, "--verify", env=env)
    assert verified.returncode == 0 and " 0 image batch(es) embedded" not in verified.stderr


def test_an_append_that_races_a_merge_is_kept_for_the_next_one(tmp_path, monkeypatch):
    import json as _json

    from pathboard.core.store.database import Store

    store = Store(tmp_path / "pb.duckdb")
    store.settle()
    store._append_journal([("INSERT INTO runs (run_id) VALUES (?)", ["r1"])])
    merge = Store._merge

    def racing(self, con, files):  # the journal's owner appends right after the merger read the file
        out = merge(self, con, files)
        with open(files[0], "a") as f:
            f.write(_json.dumps({"id": "late", "stmts": [["INSERT INTO runs (run_id) VALUES (?)", ["r2"]]]}) + "\n")
        return out

    monkeypatch.setattr(Store, "_merge", racing)
    store.settle()
    monkeypatch.setattr(Store, "_merge", merge)
    assert store.pending()  # the grown file was not removed
    store.settle()
    assert not store.pending()
    assert sorted(q(tmp_path / "pb.duckdb", "SELECT run_id FROM runs")) == [("r1",), ("r2",)]


def test_cells_of_a_reader_that_outlasts_the_run_are_merged_by_the_next_command(tmp_path, tiny_hub, shared_data):
    db, env = tmp_path / "pb.duckdb", {"PATHBOARD_CACHE": str(tmp_path / "cache"), "PATHBOARD_LOCK_WAIT": "2"}
    args = ["run", "--models", "quiltnet-b32", "--tasks", "zeroshot", *CRC, "--data-root", shared_data, "--db", db]
    assert pathboard(*args, env=env).returncode == 0
    reader = hold(db, 25)
    run = pathboard(*args, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "more wait in its journal" in run.stderr and "merged by the next pathboard command" in run.stderr
    reader.wait()
    listed = pathboard("runs", "--db", db)
    assert listed.returncode == 0, listed.stderr
    (n, distinct), = q(db, "SELECT count(*), count(DISTINCT (run_id, task, variant, prompt_mode)) FROM cells")
    assert n == distinct == 4  # both runs' cells (the headline and its reliability bins), once each
    assert [s for (s,) in q(db, "SELECT status FROM runs")] == ["finished", "finished"]


def test_running_out_of_accelerator_memory_halves_the_batch_instead_of_failing(shared_data, capsys):
    import torch
    from torchvision.transforms import functional

    from pathboard.core.embedding.embedder import embed_images

    class Small:  # a model whose device holds at most 8 images per forward pass
        preprocess = staticmethod(lambda img: functional.to_tensor(img.resize((16, 16))))
        calls: list[int] = []

        def encode_images(self, batch):
            self.calls.append(len(batch))
            if len(batch) > 8:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return batch.flatten(1)[:, :4] * 1.0

    root = shared_data / "CRC-VAL-HE-7K"
    paths = sorted(str(p.relative_to(root)) for p in root.glob("*/*.png"))
    assert len(paths) == 32
    rows = {}
    failed, _ = embed_images(Small(), root, paths, lambda start, a: rows.update({start + i: r for i, r in enumerate(a)}),
                             batch_size=32, workers=0, desc="oom")
    assert not failed and sorted(rows) == list(range(len(paths)))
    assert Small.calls[:3] == [32, 16, 8] and max(Small.calls[2:]) <= 8  # halved until it fits, then kept there
    err = capsys.readouterr().err
    assert err.count("out of memory at") == 2 and "going on with 8" in err  # 32 -> 16 -> 8, said each time
