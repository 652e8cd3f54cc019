"""The segmentation task: which datasets it applies to, and synthetic and real slides segmented end to end."""
import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pytest
import tifffile
from PIL import Image
from support.layouts import PINK, PURPLE, texture
from support.trained import train_tiny_clip

from pathboard.core.engine import plugins
from pathboard.core.engine.plan import RunConfig, plan
from pathboard.core.engine.run import execute
from pathboard.core.interfaces.dataset import Annotation, Record, SlideDataset
from pathboard.core.media.masks import IGNORE, rasterize_polygons, truth_from_annotations
from pathboard.core.media.tiling import Tiling


@dataclass
class RegionSlides(SlideDataset):
    """Slides with annotated regions: ``regions[file]`` = (tissue outline, [Annotation, ...]); tissue
    outside the outline is not annotated (ignored), inside it unannotated tissue is ``default``."""

    regions: dict = field(default_factory=dict)
    default: str = "pink"
    tasks: frozenset = frozenset({"segmentation"})

    def records(self, base):
        for f in sorted(base.iterdir()):
            yield Record(f.name, 0, "test")

    def annotations(self, base, path):
        return self.regions.get(path, (None, []))[1]

    def segmentation_truth(self, base, path, grid_shape, cell_size0):
        outline, annotations = self.regions[path]
        truth = truth_from_annotations(annotations, self.classes, grid_shape, cell_size0, self.default)
        truth[~rasterize_polygons([outline], grid_shape, cell_size0)] = IGNORE
        return truth


def rect(x0, y0, x1, y1):
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def write_regions(path: Path, size, purple_rects, rng, margin=112):
    """A tiled TIFF at 0.5 µm/px: white margin, pink tissue, purple rectangles (level-0 x0, y0, x1, y1)."""
    h, w = size
    img = np.full((h, w, 3), 245, dtype=np.uint8)
    img[margin:h - margin, margin:w - margin] = texture("pink", (h - 2 * margin, w - 2 * margin), rng)
    for x0, y0, x1, y1 in purple_rects:
        img[y0:y1, x0:x1] = texture("purple", (y1 - y0, x1 - x0), rng)
    tifffile.imwrite(path, img, tile=(256, 256), photometric="rgb", compression="zlib",
                     resolution=(1e4 / 0.5, 1e4 / 0.5), resolutionunit="CENTIMETER")
    return rect(margin, margin, w - margin, h - margin), [Annotation("purple", rect(*r)) for r in purple_rects]


@pytest.fixture(scope="module")
def texture_clip(tmp_path_factory):
    """The tiny CLIP of test_wsi, trained for a fixed number of steps on 224 px tiles of the two textures."""
    tmp = tmp_path_factory.mktemp("clip")
    rng = np.random.default_rng(0)
    paths = {}
    for kind in ("purple", "pink"):
        (tmp / "tiles" / kind).mkdir(parents=True)
        paths[kind] = []
        for i in range(24):
            p = tmp / "tiles" / kind / f"{i}.png"
            Image.fromarray(texture(kind, (224, 224), rng)).save(p)
            paths[kind].append(p)
    weights, _ = train_tiny_clip(tmp / "weights", [paths["purple"], paths["pink"]], [f"{PURPLE}.", f"{PINK}."],
                                 steps=80)
    prompts = tmp / "prompts.json"
    prompts.write_text(json.dumps({"templates": ["CLASSNAME."], "classes": {"purple": [PURPLE], "pink": [PINK]}}))
    return weights, prompts


def register(monkeypatch, dataset):
    monkeypatch.setitem(plugins.registry("dataset"), dataset.id, dataset)
    dataset.plugin = "test"


CMU = "CMU-1-Small-Region.svs"  # 2220 x 2967 px at 0.499 µm/px; tissue is a diagonal strip


def test_the_task_picks_datasets_with_ground_truth():
    task = plugins.get("task", "segmentation")
    assert task.supports(plugins.get("dataset", "digestpath")) is None
    assert task.supports(plugins.get("dataset", "camelyon16")) is None
    assert "does not declare" in task.supports(plugins.get("dataset", "crc-val-he-7k"))
    assert task.tiling.overlap == 0.75 and task.tiling_for(plugins.get("dataset", "digestpath")).fallback_mpp == 0.5
    assert task.tiling_for(plugins.get("dataset", "camelyon16")).fallback_mpp is None
    assert task.configure({}).tiling == Tiling(size=224, mpp=0.5, overlap=0.75)  # the CLI defaults
    custom = task.configure({"mpp": 1.0, "tile_size": 448})
    assert custom.tiling == Tiling(size=448, mpp=1.0, overlap=0.75) and task.tiling.mpp == 0.5
    assert task.configure({"magnification": 10}).tiling.target_mpp == 1.0
    assert plugins.registry("task")["segmentation"].plugin == "pathboard:tasks_segmentation"


@pytest.mark.slow
def test_segments_synthetic_slides_of_two_textures(tmp_path, texture_clip, fresh_cache, monkeypatch):
    weights, prompts = texture_clip
    rng = np.random.default_rng(1)
    root = tmp_path / "data"
    (root / "regions").mkdir(parents=True)
    size = (1008, 1232)  # 18 x 22 cells of 56 px; the 112 px white margin is 2 cells
    regions = {
        "halves.tiff": write_regions(root / "regions/halves.tiff", size, [(112, 112, 560, 896)], rng),
        "island.tiff": write_regions(root / "regions/island.tiff", size, [(392, 336, 840, 672)], rng),
        "top.tiff": write_regions(root / "regions/top.tiff", size, [(112, 112, 1120, 448)], rng),
    }
    tifffile.imwrite(root / "regions/blank.tiff", np.full((1008, 1232, 3), 245, np.uint8), tile=(256, 256),
                     photometric="rgb", resolution=(1e4 / 0.5, 1e4 / 0.5), resolutionunit="CENTIMETER")
    dataset = RegionSlides(id="regions", folder="regions", classes=["purple", "pink"], prompt_file=str(prompts),
                           splits=("test",), eval_split="test", regions=regions)
    register(monkeypatch, dataset)

    db = tmp_path / "pb.duckdb"
    cfg = RunConfig(models="quiltnet-b32", weights=(f"quiltnet-b32={weights}",), datasets="regions",
                    tasks="segmentation", prompt_modes="single", data_root=str(root), db=str(db), workers=0)
    first = execute(plan(cfg), cfg)
    assert not first.errors, first.errors
    assert first.image_forwards > 0
    assert list(first.failed_files["regions"]) == ["blank.tiff"]
    assert "no tissue" in first.failed_files["regions"]["blank.tiff"]
    metrics = first.cells[0]["metrics"]
    print({name: round(m.value, 3) for name, m in metrics.items()})
    assert metrics["dice"].n == 3
    assert metrics["dice"].value > 0.8, metrics["dice"]  # the headline: Dice averaged over the images
    assert metrics["precision"].value > 0.8 and metrics["recall"].value > 0.8
    assert metrics["dice/purple"].value > 0.8 and metrics["dice/pink"].value > 0.8
    assert metrics["dice"].ci_low <= metrics["dice"].value <= metrics["dice"].ci_high

    con = duckdb.connect(str(db), read_only=True)
    stored = dict(con.execute("SELECT metric, value FROM results_all WHERE task = 'segmentation'").fetchall())
    assert stored["dice"] == pytest.approx(metrics["dice"].value)
    pngs = con.execute("SELECT item, kind, path FROM artifacts ORDER BY item").fetchall()
    con.close()
    assert [(item, kind) for item, kind, _ in pngs] == [(f, "segmentation") for f in sorted(regions)]
    with Image.open(pngs[0][2]) as png:  # thumbnail | prediction | truth, 512 px panels
        assert png.size == (3 * 512 + 16, round(18 * 512 / 22))
        right = np.asarray(png.convert("RGB"))[:, -512:]
    assert (right == (214, 48, 49)).all(-1).any()  # the truth panel shows the pink class...

    # the overlapping tiles are cached with their coordinates: a second run does no forward at all
    cfg.rescore = True
    second = execute(plan(cfg), cfg)
    assert second.image_forwards == 0
    assert second.cells[0]["metrics"]["dice"].value == pytest.approx(metrics["dice"].value)


@pytest.mark.slow
def test_segments_the_real_slide_and_skips_a_broken_one(tmp_path, shared_data, texture_clip, fresh_cache,
                                                        monkeypatch):
    weights, prompts = texture_clip
    root = tmp_path / "data"
    (root / "cmu").mkdir(parents=True)
    (root / "cmu" / CMU).symlink_to(shared_data / "slides" / CMU)
    (root / "cmu" / "broken.svs").symlink_to(shared_data / "slides" / "broken.svs")
    outline = rect(0, 0, 2220, 2967)
    drawn = Annotation("purple", ((700, 900), (1500, 700), (1700, 1600), (1100, 2100), (600, 1500)))
    dataset = RegionSlides(id="cmu", folder="cmu", classes=["purple", "pink"], prompt_file=str(prompts),
                           splits=("test",), eval_split="test", regions={CMU: (outline, [drawn])})
    register(monkeypatch, dataset)

    db = tmp_path / "pb.duckdb"
    cfg = RunConfig(models="quiltnet-b32", weights=(f"quiltnet-b32={weights}",), datasets="cmu",
                    tasks="segmentation", prompt_modes="single", data_root=str(root), db=str(db), workers=0,
                    options={"mpp": 1.0})  # --mpp 1: a quarter of the tiles of 0.5 µm/px
    summary = execute(plan(cfg), cfg)
    assert not summary.errors, summary.errors
    reason = summary.failed_files["cmu"]["broken.svs"]
    assert "cannot open slide broken.svs" in reason and "\n" not in reason
    assert list(summary.failed_files["cmu"]) == ["broken.svs"]
    metrics = summary.cells[0]["metrics"]
    assert metrics["dice"].n == 1
    for name in ("dice", "precision", "recall"):
        assert 0.0 <= metrics[name].value <= 1.0
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT DISTINCT n_failed FROM cells").fetchall() == [(1,)]
    (item, path), = con.execute("SELECT item, path FROM artifacts").fetchall()
    con.close()
    assert item == CMU and Path(path).is_file()
    with Image.open(path) as png:  # 26 x 19 cells of 112 level-0 px (448 px tiles at 0.499 µm/px)
        assert png.size == (3 * round(19 * 512 / 26) + 16, 512)
