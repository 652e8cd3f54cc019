"""Numbers that can be trusted: paired comparisons on the items both models scored, one protocol per
table, and non-finite embeddings counted as failures instead of being argmaxed."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest
import torch
from helpers import mirror, pathboard
from PIL import Image

from pathboard.core.embedding.cache import EmbeddingCache
from pathboard.core.embedding.embedder import NONFINITE, Embedder
from pathboard.core.engine import plugins
from pathboard.core.interfaces.dataset import ImageFolderDataset
from pathboard.core.interfaces.model import Runtime
from pathboard.core.media.tiling import Tiling
from pathboard.core.science.compare import compare_latest, paired_difference
from pathboard.core.science.metrics import Metric
from pathboard.core.store.database import Store
from pathboard.leaderboard import tables
from pathboard.leaderboard.tables import load_measured


def test_paired_comparisons_use_the_items_both_models_scored(tmp_path):
    store = Store(tmp_path / "pb.duckdb")
    run = store.start_run(command="test")
    items = [f"img{i}.png" for i in range(40)]
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 40)
    pred_a, pred_b = rng.integers(0, 3, 40), rng.integers(0, 3, 40)
    keep_a, keep_b = np.arange(40) != 3, np.arange(40) != 17  # each lost a different item
    for model, keep, pred in (("a", keep_a, pred_a), ("b", keep_b, pred_b)):
        cell = {"model": model, "dataset": "d", "task": "zeroshot", "prompt_mode": "single", "variant": "",
                "protocol_hash": "p"}
        store.add_cell(run, cell, [Metric("accuracy", 0.0, 0.0, 0.0, int(keep.sum()))],
                       predictions=(y_true[keep], pred[keep], 3, False, [i for i, k in zip(items, keep) if k]))
    assert compare_latest(store) > 0
    rows = store.query("SELECT metric, diff, ci_low, ci_high, n FROM comparisons")
    both = keep_a & keep_b
    expected = paired_difference(y_true[both], pred_a[both], pred_b[both], 3, False)
    assert set(rows["n"]) == {38}  # the 38 items both scored, not the 39 each scored
    for _, row in rows.iterrows():
        assert (row["diff"], row["ci_low"], row["ci_high"]) == pytest.approx(expected[row["metric"]])


def test_cells_of_different_protocols_are_never_compared(tmp_path):
    store = Store(tmp_path / "pb.duckdb")
    run = store.start_run(command="test")
    y = np.array([0, 1, 0, 1])
    for model, protocol in (("a", "p1"), ("b", "p2")):
        cell = {"model": model, "dataset": "d", "task": "zeroshot", "prompt_mode": "single", "variant": "",
                "protocol_hash": protocol}
        store.add_cell(run, cell, [Metric("accuracy", 1.0, 1.0, 1.0, 4)],
                       predictions=(y, y, 2, False, ["w", "x", "y", "z"]))
    assert compare_latest(store) == 0


def test_a_prompts_run_does_not_change_the_default_table(tmp_path, tiny_hub, shared_data, fresh_cache, monkeypatch):
    db = tmp_path / "pb.duckdb"
    monkeypatch.setenv("PATHBOARD_DB", str(db))
    base = ["run", "--models", "quiltnet-b32,plip", "--datasets", "crc-val-he-7k", "--data-root", shared_data,
            "--db", db, "--tasks", "zeroshot", "--prompt-modes", "single", "--workers", "0"]
    assert pathboard(*base).returncode == 0
    default = load_measured(db).set_index(["model", "metric"])["value"]
    custom = tmp_path / "custom.json"
    classes = plugins.get("dataset", "crc-val-he-7k").classes
    custom.write_text(json.dumps({"templates": ["a photo of CLASSNAME."],
                                  "classes": {c: [f"tissue type {c.lower()}"] for c in classes}}))
    out = pathboard(*base, "--prompts", f"crc-val-he-7k={custom}")
    assert out.returncode == 0, out.stderr
    after = load_measured(db).set_index(["model", "metric"])["value"]
    assert after.equals(default)  # the default table is the default protocol's, whatever ran last
    everything = load_measured(db, "all")
    assert everything["protocol_hash"].nunique() == 2 and len(everything) == 2 * len(default)
    con = duckdb.connect(str(db), read_only=True)
    flags = con.execute("SELECT DISTINCT default_protocol, protocol->>'$.prompts' FROM cells ORDER BY 1").fetchall()
    assert flags == [(False, "custom"), (True, "built-in")]
    # comparisons pair the two models within each protocol, never across
    pairs = con.execute("SELECT DISTINCT a.protocol_hash = b.protocol_hash FROM comparisons k "
                        "JOIN cells a ON a.cell_id = k.cell_a JOIN cells b ON b.cell_id = k.cell_b").fetchall()
    assert pairs == [(True,)]
    assert con.execute("SELECT count(DISTINCT a.protocol_hash) FROM comparisons k "
                       "JOIN cells a ON a.cell_id = k.cell_a").fetchone() == (2,)

    # the leaderboard shows the default protocol first; the other is chosen in the sidebar
    from streamlit.testing.v1 import AppTest

    app = Path(tables.__file__).with_name("app.py")
    at = AppTest.from_file(str(app), default_timeout=120)
    at.run()  # the app reads $PATHBOARD_DB
    assert any("single: one prompt per class" in c.value for c in at.caption)  # the mode is defined on the page
    at.radio(key="mode").set_value("single").run()
    choices = at.sidebar.selectbox(key="protocol").options
    assert len(choices) == 2 and choices[0].startswith("default") and "custom prompts" in choices[1]
    shown = " ".join(h.proto.body for h in at.get("html"))
    value = lambda model: f"{default[(model, 'weighted_f1')]:.3f}"  # noqa: E731
    assert value("plip") in shown and value("quiltnet-b32") in shown
    custom_values = everything[~everything["default_protocol"].astype(bool) & (everything["metric"] == "weighted_f1")]
    at.sidebar.selectbox(key="protocol").set_value(custom_values["protocol_hash"].iloc[0]).run()
    other = " ".join(h.proto.body for h in at.get("html"))
    assert all(f"{v:.3f}" in other for v in custom_values["value"])


class NaNWhereBright:
    """A stand-in model: 3-d embeddings of the mean colour, NaN (an fp16 overflow) for bright images."""

    id, fingerprint, runtime = "stub", "stub", Runtime()

    @staticmethod
    def preprocess(img):
        return torch.from_numpy(np.asarray(img.resize((32, 32)), dtype=np.float32).transpose(2, 0, 1) / 255)

    def encode_images(self, batch):
        mean = batch.mean(dim=(2, 3))
        out = torch.nn.functional.normalize(mean + 0.01, dim=-1)
        out[mean.mean(dim=1) > 0.95] = float("nan")
        return out


def embedder(tmp_path):
    return Embedder(type("Spec", (), {"id": "stub"})(), lambda: NaNWhereBright(), "stub", Runtime(),
                    EmbeddingCache(tmp_path / "cache"), batch_size=4, workers=0)


def test_nonfinite_image_embeddings_are_failed_items(tmp_path, shared_data):
    root = tmp_path / "data"
    mirror(shared_data / "CRC-VAL-HE-7K", root / "CRC")
    Image.new("RGB", (64, 64), (250, 250, 250)).save(root / "CRC" / "ADI" / "zz-white.png")
    dataset = ImageFolderDataset(id="crc", folder="CRC", classes=["ADI", "DEB", "LYM", "MUC", "MUS", "NORM", "STR",
                                                                   "TUM"])
    manifest = dataset.manifest(root)
    images = embedder(tmp_path).images(dataset, manifest)
    white = manifest.paths.index("ADI/zz-white.png")
    assert images.failed == {"ADI/zz-white.png": NONFINITE}
    assert not images.valid[white] and images.valid.sum() == len(manifest) - 1


def test_nonfinite_tiles_are_left_out_and_counted(tmp_path):
    root = tmp_path / "data"
    (root / "tiles" / "a").mkdir(parents=True)
    img = np.zeros((128, 128, 3), dtype=np.uint8)
    img[:, 64:] = 255  # the right half is bright: its windows embed to NaN
    Image.fromarray(img).save(root / "tiles" / "a" / "half.png")
    dataset = ImageFolderDataset(id="tiles", folder="tiles", classes=["a"])
    manifest = dataset.manifest(root)
    tiles = embedder(tmp_path).slide(dataset, manifest, "a/half.png", Tiling(size=224, overlap=0.75, window=64))
    assert np.isfinite(tiles.embeddings).all() and len(tiles.embeddings) == len(tiles.coords)
    assert tiles.info["nonfinite_tiles"] > 0 and len(tiles.coords) + tiles.info["nonfinite_tiles"] == 5 * 5
    assert (tiles.coords[:, 0] < 64).all()  # only windows of the dark half remain


def test_cache_keys_name_the_preprocessing_the_tokenizer_and_the_format(tmp_path, monkeypatch):
    import dataclasses
    import importlib.metadata

    from pathboard.core.embedding.embedder import cache

    spec = plugins.get("model", "quiltnet-b32")
    other_arch = dataclasses.replace(spec, arch="ViT-B-32")  # same weights, another preprocessing/tokenizer path

    def key(s):
        return Embedder(s, lambda: None, "same-weights", Runtime(), EmbeddingCache(tmp_path), 4, 0)._key(kind="x")

    before = key(spec)
    assert before == key(dataclasses.replace(spec)) and before != key(other_arch)
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda d: "99.0" if d == "open_clip_torch" else real(d))
    assert key(spec) != before  # an open_clip upgrade never reuses old embeddings
    assert cache.FORMAT == 2
