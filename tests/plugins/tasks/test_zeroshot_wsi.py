"""Zero-shot WSI: MI-Zero classifies synthetic slides by majority texture, tiling options reach the task,
and intervals resample the patients of the slides."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, SimpleNamespace

import duckdb
import numpy as np
import pytest
import tifffile
from PIL import Image
from support.layouts import PINK, PURPLE, texture
from support.synthetic import manifest
from support.trained import train_tiny_clip

from pathboard.core.engine import plugins
from pathboard.core.engine.plan import RunConfig, plan
from pathboard.core.engine.run import execute
from pathboard.core.interfaces.dataset import Record, SlideDataset
from pathboard.core.interfaces.task import CellContext
from pathboard.core.media import figures
from pathboard.core.media.tiling import Tiling
from pathboard.core.science.metrics import (
    classification_metrics,
)


def write_slide(path: Path, purple_fraction: float, rng, size=(1536, 2048)) -> None:
    """A tiled TIFF at 0.5 µm/px: white margin, then purple and pink tissue side by side."""
    h, w = size
    img = np.full((h, w, 3), 245, dtype=np.uint8)
    inner = img[128:-128, 128:-128]
    split = int(inner.shape[1] * purple_fraction)
    inner[:, :split] = texture("purple", (inner.shape[0], split), rng)
    inner[:, split:] = texture("pink", (inner.shape[0], inner.shape[1] - split), rng)
    tifffile.imwrite(path, img, tile=(256, 256), photometric="rgb", compression="zlib",
                     resolution=(1e4 / 0.5, 1e4 / 0.5), resolutionunit="CENTIMETER")


@dataclass
class TextureSlides(SlideDataset):
    def records(self, base):
        for f in sorted(base.iterdir()):
            yield Record(f.name, 0 if f.name.startswith("purple") else 1, "test")


@pytest.mark.slow
def test_mi_zero_classifies_slides_by_majority_texture(tmp_path, shared_data, fresh_cache, monkeypatch):
    rng = np.random.default_rng(0)
    # a tiny CLIP learns the two textures from 224 px tiles captioned with the class prompts
    tiles = tmp_path / "tiles"
    paths = {}
    for kind in ("purple", "pink"):
        (tiles / kind).mkdir(parents=True)
        paths[kind] = []
        for i in range(24):
            p = tiles / kind / f"{i}.png"
            Image.fromarray(texture(kind, (224, 224), rng)).save(p)
            paths[kind].append(p)
    weights, _ = train_tiny_clip(tmp_path / "weights", [paths["purple"], paths["pink"]],
                                 [f"{PURPLE}.", f"{PINK}."], steps=80)

    root = tmp_path / "data"
    (root / "textures").mkdir(parents=True)
    for name, fraction in [("purple-1", 0.8), ("purple-2", 0.65), ("pink-1", 0.25), ("pink-2", 0.1)]:
        write_slide(root / "textures" / f"{name}.tiff", fraction, rng)
    (root / "textures" / "purple-broken.svs").symlink_to(shared_data / "slides" / "broken.svs")
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"templates": ["CLASSNAME."], "classes": {"purple": [PURPLE], "pink": [PINK]}}))
    dataset = TextureSlides(id="textures", folder="textures", classes=["purple", "pink"], prompt_file=str(prompts),
                            splits=("test",), eval_split="test")
    monkeypatch.setitem(plugins.registry("dataset"), "textures", dataset)
    dataset.plugin = "test"

    db = tmp_path / "pb.duckdb"
    cfg = RunConfig(models="quiltnet-b32", weights=(f"quiltnet-b32={weights}",), datasets="textures",
                    tasks="zeroshot-wsi", prompt_modes="single", data_root=str(root), db=str(db), workers=0)
    first = execute(plan(cfg), cfg)
    assert first.image_forwards > 0
    assert list(first.failed_files["textures"]) == ["purple-broken.svs"]
    con = duckdb.connect(str(db), read_only=True)
    headline = con.execute("SELECT value, n FROM results_all WHERE variant = '' AND metric = 'balanced_accuracy'")
    assert headline.fetchall() == [(1.0, 4)]
    variants = {v for (v,) in con.execute("SELECT DISTINCT variant FROM cells").fetchall()}
    assert variants == {"", "topk=1", "topk=5", "topk=10", "topk=50", "topk=100", "reliability"}
    counts = con.execute("SELECT sum(value) FROM results_all WHERE variant = 'reliability' AND metric LIKE "
                         "'%/count'").fetchall()
    assert counts == [(4.0,)]  # the reliability bins of the headline K hold every scored slide
    heatmaps = con.execute("SELECT item, path FROM artifacts WHERE kind = 'heatmap' ORDER BY item").fetchall()
    assert [item for item, _ in heatmaps] == ["pink-1.tiff", "pink-2.tiff", "purple-1.tiff", "purple-2.tiff"]
    with Image.open(heatmaps[0][1]) as img:
        assert max(img.size[0], img.size[1] - figures.BAR) == 1024  # drawn on the thumbnail, its colour bar under it
    n_failed = con.execute("SELECT DISTINCT n_failed FROM cells").fetchall()
    assert n_failed == [(1,)]
    con.close()
    # the tiles are cached with their coordinates: a second run does no forward at all
    cfg.rescore = True
    second = execute(plan(cfg), cfg)
    assert second.image_forwards == 0
    headline = next(c for c in second.cells if c["variant"] == "")
    assert math.isclose(headline["metrics"]["balanced_accuracy"].value, 1.0)


def test_cli_tiling_options_reach_the_task():
    task = plugins.get("task", "zeroshot-wsi").configure({"mpp": 1.0, "tile_size": 256})
    assert task.tiling == Tiling(size=256, mpp=1.0)
    assert task.configure({"magnification": 10}).tiling.target_mpp == 1.0
    assert plugins.get("task", "zeroshot-wsi").tiling == Tiling()  # the registered task is untouched


def test_zeroshot_wsi_resamples_patients_of_slides():
    from pathboard.plugins.tasks.zeroshot_wsi import ZeroShotWSI

    classes = ["a", "b"]
    paths = [f"slide{i}.svs" for i in range(24)]
    patients = [f"patient{i // 3}" for i in range(24)]  # three slides per patient
    labels = np.arange(24) % 2
    rng = np.random.default_rng(0)
    slides = {}
    for path, label in zip(paths, labels):
        hit = rng.random() < 0.7
        tiles = np.eye(2, dtype=np.float32)[np.full(60, label if hit else 1 - label)]
        slides[path] = SimpleNamespace(embeddings=tiles, coords=np.zeros((60, 2)), info={"size0": 224})
    tiles = type("Tiles", (), {"labelled": lambda self: list(zip(paths, labels)),
                               "__getitem__": lambda self, p: slides[p]})()
    texts = {f"{c} tissue": np.eye(2, dtype=np.float32)[i][None] for i, c in enumerate(classes)}
    m = manifest(paths, patients)
    m.labels = labels
    dataset = SimpleNamespace(id="toy-wsi", classes=classes, ordinal=False, eval_split=None)
    prompts = SimpleNamespace(prompts=lambda mode, names: {c: [f"{c} tissue"] for c in names})
    ctx = CellContext("model", dataset, m, "single", prompts, lambda t: np.concatenate([texts[x] for x in t]),
                      None, MappingProxyType({}), tiles=tiles, facts=lambda: {"logit_scale": 100.0})
    result = ZeroShotWSI().score(ctx)
    assert result.protocol == {"bootstrap": "cluster by group (8 groups)"}
    assert list(result.predictions[""].groups) == patients
    predictions = result.predictions[""]
    expected = {m.name: m for m in classification_metrics(predictions.y_true, predictions.y_pred, classes,
                                                          groups=patients)}
    assert {m.name: m for m in result[""] if m.name in expected} == expected  # calibration: test_calibration.py


def test_mi_zero_reports_the_median_over_explicit_prompt_sets():
    """Three prompt sets, one of them swapping the classes: each is scored alone and the headline is their
    median, as MI-Zero reports its 50."""
    from pathboard.core.interfaces.prompts import PromptSet
    from pathboard.core.science.metrics import median_metrics
    from pathboard.plugins.tasks.zeroshot_wsi import ZeroShotWSI

    classes = ["a", "b"]
    paths = [f"slide{i}.svs" for i in range(12)]
    labels = np.arange(12) % 2
    slides = {p: SimpleNamespace(embeddings=np.eye(2, dtype=np.float32)[np.full(10, y if i % 4 else 1 - y)],
                                 coords=np.zeros((10, 2)), info={"size0": 224})
              for i, (p, y) in enumerate(zip(paths, labels))}  # every 4th slide looks like the other class
    tiles = type("Tiles", (), {"labelled": lambda self: list(zip(paths, labels)),
                               "__getitem__": lambda self, p: slides[p]})()
    texts = {"there is a.": [1, 0], "there is b.": [0, 1], "shows a.": [1, 0], "shows b.": [0, 1]}
    sets = (({"a": "a", "b": "b"}, ("there is CLASSNAME.",)), ({"a": "b", "b": "a"}, ("shows CLASSNAME.",)),
            ({"a": "a", "b": "b"}, ("there is CLASSNAME.", "shows CLASSNAME.")))
    prompts = PromptSet({"a": ["a", "b"], "b": ["b", "a"]}, ["there is CLASSNAME.", "shows CLASSNAME."], sets=sets)
    m = manifest(paths, [f"p{i}" for i in range(12)])
    m.labels = labels
    dataset = SimpleNamespace(id="toy-wsi", classes=classes, ordinal=False, eval_split=None)
    ctx = CellContext("model", dataset, m, "ensemble", prompts,
                      lambda t: np.asarray([texts[x] for x in t], dtype=np.float32), None, MappingProxyType({}),
                      tiles=tiles, facts=lambda: {"logit_scale": 100.0})
    task = ZeroShotWSI().configure({"prompt_sets": "median"})
    result = task.score(ctx)
    assert result.protocol["prompt_sets"] == 3
    right = labels.copy()
    right[::4] = 1 - right[::4]  # what a correct set predicts
    expected = {x.name: x for x in median_metrics(labels, [right, 1 - right, right], classes, groups=m.paths)}
    headline = {x.name: x for x in result[""]}
    assert headline["balanced_accuracy"].value == pytest.approx(0.75)  # the correct sets' 9 of 12
    assert headline["balanced_accuracy"] == expected["balanced_accuracy"]
    with pytest.raises(Exception, match="needs a prompt file with explicit sets"):
        task.score(CellContext("model", dataset, m, "ensemble", PromptSet({"a": ["a"], "b": ["b"]}, ["CLASSNAME."]),
                               ctx.encode_texts, None, MappingProxyType({}), tiles=tiles))


def test_screened_vote_with_the_median_of_sets_is_refused_at_plan_time(tmp_path):
    from pathboard.core.errors import PathboardError

    task = plugins.get("task", "zeroshot-wsi")
    assert task.configure({"pooling": "screened-vote"}).values["prompt_sets"] == "pooled"
    assert task.configure({"prompt_sets": "median"}).values["pooling"] == "topk"
    with pytest.raises(PathboardError, match="choose one of them") as err:
        task.configure({"pooling": "screened-vote", "prompt_sets": "median"})
    assert "\n" not in str(err.value)
    cfg = RunConfig(models="quiltnet-b32", datasets="tcga-cesc", tasks="zeroshot-wsi", db=str(tmp_path / "pb.duckdb"),
                    options=("zeroshot-wsi.pooling=screened-vote", "zeroshot-wsi.prompt_sets=median"))
    with pytest.raises(PathboardError, match="screened-vote"):
        plan(cfg)
