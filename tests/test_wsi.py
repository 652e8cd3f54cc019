"""Slide tiling on the real OpenSlide test slide, and MI-Zero end to end on synthetic slides."""
import json
import math
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pytest
import tifffile
from PIL import Image
from test_trained_zero_shot import train_tiny_clip

from pathboard.core.engine import plugins
from pathboard.core.engine.plan import RunConfig, plan
from pathboard.core.engine.run import execute
from pathboard.core.errors import PathboardError
from pathboard.core.interfaces.dataset import Record, SlideDataset
from pathboard.core.media.tiling import Tiling, open_slide, slide_mpp, tile_grid
from pathboard.plugins.tasks.zeroshot_wsi import topk_pool

CMU = "slides/CMU-1-Small-Region.svs"  # 2220 x 2967 px at 0.499 µm/px, one level


@pytest.mark.parametrize("mpp, size", [(0.5, 224), (1.0, 224), (0.5, 448)])
def test_tiling_the_real_slide_at_two_resolutions(shared_data, mpp, size):
    slide = open_slide(shared_data / CMU)
    assert slide_mpp(slide) == (0.499, "openslide.mpp-x")
    grid = tile_grid(slide, Tiling(size=size, mpp=mpp))
    side = round(size * mpp / 0.499)
    assert grid.size0 == side and grid.level == 0 and grid.read_size == side
    most = (2220 // side) * (2967 // side)
    # the tissue is a diagonal strip over about 30% of the region (checked on the thumbnail and mask)
    assert 0.25 * most <= len(grid.coords) <= 0.6 * most
    assert (grid.coords % side == 0).all() and (grid.coords[:, 0] + side <= 2220).all()
    assert 0.2 < grid.tissue_fraction < 0.45


def test_overlap_multiplies_the_tile_count(shared_data):
    slide = open_slide(shared_data / CMU)
    plain = tile_grid(slide, Tiling(mpp=1.0))
    overlapping = tile_grid(slide, Tiling(mpp=1.0, overlap=0.75))
    assert 8 * len(plain.coords) < len(overlapping.coords) < 20 * len(plain.coords)


def test_broken_and_unresolved_slides_are_one_line_errors(shared_data, tmp_path):
    with pytest.raises(PathboardError, match="cannot open slide broken.svs") as err:
        open_slide(shared_data / "slides" / "broken.svs")
    assert "\n" not in str(err.value)
    plain = tmp_path / "photo.png"
    Image.new("RGB", (600, 400), (200, 80, 150)).save(plain)
    with pytest.raises(PathboardError, match="has no resolution metadata"):
        tile_grid(open_slide(plain), Tiling(), name="photo.png")


def test_topk_pooling():
    sims = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.95], [0.2, 0.3]])
    np.testing.assert_allclose(topk_pool(sims, 1), [0.9, 0.95])
    np.testing.assert_allclose(topk_pool(sims, 2), [0.85, 0.625])
    np.testing.assert_allclose(topk_pool(sims, 100), sims.mean(0))  # K beyond the tile count


PURPLE, PINK = "dense purple tissue", "smooth pink tissue"


def texture(kind: str, shape, rng) -> np.ndarray:
    h, w = shape
    if kind == "purple":  # dark, high-frequency nuclei-like speckle
        base = np.array([110, 50, 150], dtype=np.float32)
        noise = rng.normal(0, 45, (h, w, 1)) * (rng.random((h, w, 1)) < 0.4)
    else:  # light, smooth
        base = np.array([235, 150, 195], dtype=np.float32)
        noise = rng.normal(0, 6, (h, w, 1))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


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
        assert max(img.size) == 1024  # drawn on the thumbnail
    n_failed = con.execute("SELECT DISTINCT n_failed FROM cells").fetchall()
    assert n_failed == [(1,)]
    con.close()
    # the tiles are cached with their coordinates: a second run does no forward at all
    second = execute(plan(cfg), cfg)
    assert second.image_forwards == 0
    headline = next(c for c in second.cells if c["variant"] == "")
    assert math.isclose(headline["metrics"]["balanced_accuracy"].value, 1.0)


def test_cli_tiling_options_reach_the_task():
    task = plugins.get("task", "zeroshot-wsi").configure({"mpp": 1.0, "tile_size": 256})
    assert task.tiling == Tiling(size=256, mpp=1.0)
    assert task.configure({"magnification": 10}).tiling.target_mpp == 1.0
    assert plugins.get("task", "zeroshot-wsi").tiling == Tiling()  # the registered task is untouched
