"""The README's main job through the CLI: leaderboard rows, a second run that embeds nothing, unreadable
images named and counted, bad input in one line."""
from __future__ import annotations

import json
import re
import time

import duckdb
import numpy as np
import pytest
from PIL import Image
from support.helpers import SLOWER, mirror, pathboard

from pathboard.adapters.hf_clip import HFCLIPModel
from pathboard.adapters.openclip import OpenCLIPModel
from pathboard.core.engine.plan import RunConfig, plan
from pathboard.core.engine.run import execute
from pathboard.core.timing import STAGES

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

RNG = np.random.default_rng(0)


def test_run_survives_a_broken_link_and_reads_a_16_bit_png(tmp_path, tiny_hub, shared_data):
    root = tmp_path / "data"
    mirror(shared_data / "CRC-VAL-HE-7K", root / "CRC-VAL-HE-7K")
    tum = root / "CRC-VAL-HE-7K" / "TUM"
    (tum / "vanished.tif").symlink_to(tmp_path / "nowhere.tif")
    x = RNG.integers(1000, 3001, (224, 224)).astype(np.uint16)
    Image.fromarray(x).save(tum / "sixteen.png")
    db = tmp_path / "pb.duckdb"
    out = pathboard("run", "--models", "quiltnet-b32", "--datasets", "crc-val-he-7k", "--tasks", "zeroshot",
                    "--prompt-modes", "single", "--data-root", root, "--db", db, "--workers", "0",
                    env={"PATHBOARD_CACHE": str(tmp_path / "cache")})
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert out.stderr.count("TUM/vanished.tif") == 1, out.stderr
    assert "warning: crc-val-he-7k: left out 1 missing file(s), e.g. TUM/vanished.tif: file not found" in out.stderr
    assert "sixteen" not in out.stderr
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT DISTINCT n FROM leaderboard").fetchall() == [(33,)]


METRICS = {"balanced_accuracy", "weighted_f1", "cohen_kappa", "accuracy"}


CALIBRATION = {"ece", "brier", "nll", "auroc", *(f"auroc/{c}" for c in ("ADI", "DEB", "LYM", "MUC", "MUS", "NORM",
                                                                          "STR", "TUM"))}


CRC_PRESENT = ["ADI", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM"]


def _count_forwards(monkeypatch):
    calls = []
    for cls in (OpenCLIPModel, HFCLIPModel):
        original = cls.encode_images

        def counted(self, batch, _original=original):
            calls.append(len(batch))
            return _original(self, batch)

        monkeypatch.setattr(cls, "encode_images", counted)
    return calls


def test_main_job_writes_leaderboard_rows(tmp_path, tiny_hub, shared_data, fresh_cache):
    db = tmp_path / "pb.duckdb"
    start = time.perf_counter()
    out = pathboard("run", "--models", "quiltnet-b32,plip", "--datasets", "crc-val-he-7k",
                    "--data-root", shared_data, "--db", db)
    wall = time.perf_counter() - start
    assert out.returncode == 0, out.stderr
    # where the time went: a line per stage, in run order, adding up to less than the process's wall time
    stages = re.findall(r"^time: (\S+(?: \S+)?) +(\d+\.\d+) s", out.stderr, re.M)
    names = [s for s, _ in stages]
    assert names == sorted(names, key=STAGES.index), out.stderr
    assert {"model load", "image embedding", "prompt encoding", "scoring", "storing", "comparisons"} <= set(names)
    assert sum(float(s) for _, s in stages) < wall
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT model, prompt_mode, metric, value, ci_low, ci_high, n FROM leaderboard "
                       "WHERE task = 'zeroshot' AND variant = ''").fetchall()
    cells = {(m, p) for m, p, *_ in rows}
    assert cells == {(m, p) for m in ("quiltnet-b32", "plip") for p in ("single", "ensemble")}
    for model, mode in cells:
        metrics = {r[2]: r for r in rows if (r[0], r[1]) == (model, mode)}
        # CRC is not ordinal; calibration and AUROC (test_calibration.py) come with every zero-shot cell
        assert METRICS | CALIBRATION | {f"recall/{c}" for c in CRC_PRESENT} == set(metrics)
        for _, _, _, value, low, high, n in metrics.values():
            assert n == 32 and low <= value + 1e-9 and value - 1e-9 <= high
    bins = con.execute("SELECT metric, value, n FROM leaderboard WHERE task = 'zeroshot' AND variant = 'reliability' "
                       "AND model = 'plip' AND prompt_mode = 'single' AND metric LIKE '%/count'").fetchall()
    assert bins and sum(v for _, v, _ in bins) == 32  # the reliability diagram's bins hold every item
    prov = con.execute("SELECT weights_fingerprint, prompt_hash, manifest_hash, device, precision "
                       "FROM cells WHERE model = 'plip' AND task = 'zeroshot' AND variant = '' "
                       "ORDER BY prompt_mode").fetchall()
    assert len(prov) == 2 and prov[0][0] == prov[1][0] and len(prov[0][0]) == 64
    assert prov[0][1] != prov[1][1]  # single and ensemble embed different prompts
    assert prov[0][3:] == ("cpu", "fp32")
    run = con.execute("SELECT status, packages, image_forwards FROM runs").fetchone()
    assert run[0] == "finished" and "torch" in json.loads(run[1]) and run[2] > 0
    stored = con.execute("SELECT count(*) FROM results_all").fetchone()[0]
    con.close()
    # the same job again: every cell is up to date, so nothing is loaded, embedded, scored or written
    start = time.perf_counter()
    again = pathboard("run", "--models", "quiltnet-b32,plip", "--datasets", "crc-val-he-7k",
                      "--data-root", shared_data, "--db", db)
    seconds = time.perf_counter() - start
    assert again.returncode == 0, again.stderr
    cells = len({(m, t, p) for m, t, p in duckdb.connect(str(db), read_only=True).execute(
        "SELECT DISTINCT model, task, prompt_mode FROM cells").fetchall()})
    assert f"nothing new: {cells} cell(s) up to date in {db}" in again.stderr, again.stderr
    assert "loading " not in again.stderr and "cost:" not in again.stderr
    assert duckdb.connect(str(db), read_only=True).execute("SELECT count(*) FROM results_all").fetchone()[0] == stored
    print(f"\nan identical rerun of the main job: {seconds:.2f} s, 0 rows written")
    assert seconds <= 3 * SLOWER, f"{seconds:.1f} s"


def test_second_identical_run_does_no_image_forward(tmp_path, tiny_hub, shared_data, fresh_cache, monkeypatch):
    calls = _count_forwards(monkeypatch)
    cfg = RunConfig(models="quiltnet-b32,plip", datasets="crc-val-he-7k", data_root=str(shared_data),
                    db=str(tmp_path / "pb.duckdb"), workers=0, batch_size=16)
    first = execute(plan(cfg), cfg)
    assert sum(calls) == 2 * 32 and first.image_forwards == 4
    calls.clear()
    cfg.rescore = True  # score every cell again (an identical rerun without it scores nothing: test_uptodate)
    second = execute(plan(cfg), cfg)
    assert calls == [] and second.image_forwards == 0
    # same cached vectors -> identical numbers, for every task and prompt mode
    def numbers(summary):  # every metric of every cell and variant (NaN: None, so that it equals itself)
        return [(c["task"], c["variant"], {n: None if m.value != m.value else m.value for n, m in c["metrics"].items()})
                for c in summary.cells]

    assert numbers(first) == numbers(second) and len(numbers(first)) > 4
    # another batch size reuses the cache too: it is keyed by content, not by how it was computed
    cfg.batch_size = 7
    execute(plan(cfg), cfg)
    assert calls == []


def test_unreadable_image_is_skipped_counted_and_named(tmp_path, tiny_hub, shared_data, fresh_cache):
    root = tmp_path / "data"
    mirror(shared_data / "CRC-VAL-HE-7K", root / "CRC-VAL-HE-7K")
    (root / "CRC-VAL-HE-7K" / "TUM" / "zz-broken.tif").write_bytes(b"II*\x00 not really a tiff")
    db = tmp_path / "pb.duckdb"
    out = pathboard("run", "--models", "quiltnet-b32", "--datasets", "crc-val-he-7k", "--data-root", root,
                    "--db", db, "--prompt-modes", "single")
    assert out.returncode == 0, out.stderr
    assert "TUM/zz-broken.tif" in out.stderr and "Traceback" not in out.stderr
    con = duckdb.connect(str(db), read_only=True)
    skipped = json.loads(con.execute("SELECT skipped_files FROM runs").fetchone()[0])
    assert list(skipped["crc-val-he-7k"]) == ["TUM/zz-broken.tif"]
    assert con.execute("SELECT n_items, n_failed FROM cells").fetchone() == (33, 1)
    assert con.execute("SELECT DISTINCT n FROM leaderboard").fetchall() == [(32,)]


@pytest.mark.parametrize("args, expected", [
    (["--models", "quiltnet-b23"], "unknown model 'quiltnet-b23'; did you mean quiltnet-b32"),
    (["--datasets", "crc-val-he7k"], "unknown dataset 'crc-val-he7k'; did you mean crc-val-he-7k"),
    (["--datasets", "nct-crc-he-100k"], "folder not found: {root}/NCT-CRC-HE-100K"),
    (["--models", "openai-clip-b16"], "hf download timm/vit_base_patch16_clip_224.openai"),
    (["--weights", "quiltnet-b32=/nowhere"], "not found at /nowhere"),
    (["--prompt-modes", "single,ensembel"], "unknown prompt mode 'ensembel'"),
    (["--prompts", "{root}/CRC-VAL-HE-7K/ADI"], "cannot read prompt file"),
])
def test_bad_input_is_one_line(tmp_path, tiny_hub, shared_data, args, expected):
    base = {"--models": "quiltnet-b32", "--datasets": "crc-val-he-7k"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value.format(root=shared_data)
    argv = [x for kv in base.items() for x in kv]
    out = pathboard("run", *argv, "--data-root", shared_data, "--db", tmp_path / "x.duckdb")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0, out.stderr
    assert expected.format(root=shared_data) in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "x.duckdb").exists()  # rejected at plan time, before any work


def test_wrong_layout_names_the_expected_path(tmp_path, tiny_hub, shared_data):
    root = tmp_path / "data"
    mirror(shared_data / "CRC-VAL-HE-7K", root / "CRC-VAL-HE-7K" / "CRC-VAL-HE-7K")  # unzipped one level deep
    out = pathboard("run", "--models", "quiltnet-b32", "--datasets", "crc-val-he-7k", "--data-root", root,
                    "--db", tmp_path / "x.duckdb")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"expected class folders {root}/CRC-VAL-HE-7K/ADI" in out.stderr


def test_all_datasets_skips_missing_ones_with_a_reason(tmp_path, tiny_hub, shared_data):
    out = pathboard("run", "--models", "quiltnet-b32", "--datasets", "colon", "--data-root", shared_data,
                    "--db", tmp_path / "x.duckdb", "--prompt-modes", "single")
    assert out.returncode == 0, out.stderr
    assert "skipped nct-crc-he-100k: folder not found" in out.stderr
    assert "skipped lc25000-colon: folder not found" in out.stderr
    assert "crc-val-he-7k" in out.stdout


def test_broken_weights_fail_one_model_and_keep_the_others(tmp_path, tiny_hub, shared_data):
    broken = tmp_path / "broken"
    broken.mkdir()
    snapshot = next((tiny_hub / "hub" / "models--wisdomik--QuiltNet-B-32" / "snapshots").iterdir())
    (broken / "open_clip_config.json").write_text((snapshot / "open_clip_config.json").read_text())
    (broken / "open_clip_pytorch_model.bin").write_bytes(b"truncated download")
    db = tmp_path / "pb.duckdb"
    out = pathboard("run", "--models", "quiltnet-b32,plip", "--datasets", "crc-val-he-7k", "--data-root",
                    shared_data, "--db", db, "--weights", f"quiltnet-b32={broken}", "--prompt-modes", "single")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"error: quiltnet-b32 x crc-val-he-7k: cannot load quiltnet-b32 weights from {broken}" in out.stderr and "the other cells are stored" in out.stderr
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT DISTINCT model FROM leaderboard").fetchall() == [("plip",)]
    status, skipped = con.execute("SELECT status, skipped_cells FROM runs").fetchone()
    assert status == "finished with errors" and "quiltnet-b32 x crc-val-he-7k" in skipped


def test_strict_turns_a_skipped_group_member_into_an_error(tmp_path, tiny_hub, shared_data):
    out = pathboard("run", "--models", "quiltnet-b32", "--datasets", "colon", "--data-root", shared_data,
                    "--db", tmp_path / "x.duckdb", "--strict")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "expected layout" in out.stderr and not (tmp_path / "x.duckdb").exists()
