"""Zero-shot segmentation: overlap averaging, masks and metrics on hand-made grids, the ground truth
of DigestPath and CAMELYON16 from layout fixtures, and the task end to end on synthetic slides of two
textures (a tiny CLIP trained on them must segment them) and on the real OpenSlide test slide."""
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from sklearn.metrics import f1_score, precision_score, recall_score
from test_datasets_wsi import asap_xml
from test_trained_zero_shot import train_tiny_clip
from test_wsi import PINK, PURPLE, texture

from pathboard.core.engine import plugins
from pathboard.core.engine.plan import RunConfig, plan
from pathboard.core.engine.run import execute
from pathboard.core.errors import DatasetNotFoundError, PathboardError
from pathboard.core.interfaces.dataset import Annotation, Record, SlideDataset
from pathboard.core.media.masks import IGNORE, mask_to_grid, rasterize_polygons, truth_from_annotations
from pathboard.core.media.tiling import Tiling, open_slide, tile_grid
from pathboard.plugins.tasks.segmentation import (
    average_scores,
    image_scores,
    predict_mask,
    segmentation_metrics,
    tile_cells,
)

# ----------------------------------------------------------------------------------- overlap averaging

def test_tiles_map_to_grid_cells():
    cells, span = tile_cells(np.array([[0, 0], [112, 56], [56, 224]]), size0=224, stride=56)
    assert span == 4
    assert cells.tolist() == [[0, 0], [1, 2], [4, 1]]  # (row, col) from level-0 (x, y)


def test_overlapping_scores_are_averaged_per_cell():
    # a 3 x 4 grid; tiles 2 cells wide: A at (0, 0), B at (0, 1), C at (1, 3) (clipped at the right edge)
    cells = np.array([[0, 0], [0, 1], [1, 3]])
    scores = np.array([[1.0, 0.0], [0.0, 1.0], [0.2, 0.6]])
    mean, count = average_scores(cells, 2, scores, (3, 4))
    assert count.tolist() == [[1, 2, 1, 0], [1, 2, 1, 1], [0, 0, 0, 1]]
    np.testing.assert_allclose(mean[0, 0], [1.0, 0.0])  # A only
    np.testing.assert_allclose(mean[1, 1], [0.5, 0.5])  # A and B
    np.testing.assert_allclose(mean[1, 2], [0.0, 1.0])  # B only
    np.testing.assert_allclose(mean[2, 3], [0.2, 0.6])  # C only
    assert np.isnan(mean[2, 0]).all()
    pred = predict_mask(mean, count)
    assert pred.tolist() == [[0, 0, 1, IGNORE], [0, 0, 1, 1], [IGNORE, IGNORE, IGNORE, 1]]  # ties: first class


def test_one_wrong_tile_is_outvoted_under_75_percent_overlap():
    # 75% overlap: an interior cell lies under 16 tiles (4 x 4 cells each), so one misclassified tile
    # cannot flip any cell, although it alone would paint 16 cells
    cells = np.array([(r, c) for r in range(5) for c in range(5)])
    scores = np.tile([1.0, 0.0], (25, 1))
    scores[12] = [0.0, 1.0]  # the tile at cell (2, 2)
    mean, count = average_scores(cells, 4, scores, (8, 8))
    assert count[3, 3] == 16 and count[0, 0] == 1 and count[7, 7] == 1 and count[5, 5] == 9
    np.testing.assert_allclose(mean[3, 3], [15 / 16, 1 / 16])
    np.testing.assert_allclose(mean[5, 5], [8 / 9, 1 / 9])
    assert (predict_mask(mean, count) == 0).all()
    scores[12] = [1.0, 0.0]
    scores[[r * 5 + c for r in range(5) for c in range(2)]] = [0.2, 0.9]  # tiles in the two left columns
    pred = predict_mask(*average_scores(cells, 4, scores, (8, 8)))
    assert pred[:, :3].tolist() == [[1, 1, 1]] * 8  # under left tiles only, or 8 left vs 4 right
    assert (pred[:, 4:] == 0).all()  # 4 left vs 8 right at column 4, right tiles only beyond


# --------------------------------------------------------------------------------------------- metrics

def test_dice_precision_recall_on_hand_made_masks():
    truth = np.array([[0, 0, 1, 1], [0, 0, 1, IGNORE]])
    pred = np.array([[0, 1, 1, 1], [IGNORE, 0, 1, 1]])
    s = image_scores(truth, pred, 3)
    # scored cells (neither ignored): truth 0 0 1 1 0 1, prediction 0 1 1 1 0 1
    np.testing.assert_allclose(s["dice"][:2], [2 * 2 / (3 + 2), 2 * 3 / (3 + 4)])
    np.testing.assert_allclose(s["precision"][:2], [1.0, 3 / 4])
    np.testing.assert_allclose(s["recall"][:2], [2 / 3, 1.0])
    assert np.isnan(s["dice"][2]) and np.isnan(s["precision"][2])  # class 2 is in neither mask
    t, p = [0, 0, 1, 1, 0, 1], [0, 1, 1, 1, 0, 1]
    assert np.isclose(np.nanmean(s["dice"]), f1_score(t, p, average="macro"))
    assert np.isclose(np.nanmean(s["precision"]), precision_score(t, p, average="macro"))
    assert np.isclose(np.nanmean(s["recall"]), recall_score(t, p, average="macro"))

    # a lesion never predicted: its Dice, precision and recall are 0, not skipped
    missed = image_scores(np.array([[0, 1], [0, 1]]), np.array([[0, 0], [0, 0]]), 3)
    np.testing.assert_allclose(missed["dice"], [2 * 2 / (2 + 4), 0.0, np.nan])
    np.testing.assert_allclose(missed["precision"], [0.5, 0.0, np.nan])
    np.testing.assert_allclose(missed["recall"], [1.0, 0.0, np.nan])
    assert image_scores(np.full((2, 2), IGNORE), np.zeros((2, 2), int), 2) is None

    perfect = image_scores(np.array([[0, 0]]), np.array([[0, 0]]), 3)  # a lesion-free image, all right
    metrics = {m.name: m for m in segmentation_metrics([s, missed, perfect], ["benign", "malignant", "other"])}
    expected = np.mean([np.nanmean(s["dice"]), np.nanmean(missed["dice"]), 1.0])
    assert np.isclose(metrics["dice"].value, expected) and metrics["dice"].n == 3
    assert metrics["dice"].ci_low <= expected <= metrics["dice"].ci_high
    assert 0 <= metrics["dice"].ci_low and metrics["dice"].ci_high <= 1
    assert np.isclose(metrics["dice/malignant"].value, np.mean([6 / 7, 0.0])) and metrics["dice/malignant"].n == 2
    assert "dice/other" not in metrics
    again = {m.name: m for m in segmentation_metrics([s, missed, perfect], ["benign", "malignant", "other"])}
    assert again == metrics  # seeded bootstrap


# ------------------------------------------------------------------------------------- rasterisation

def test_polygons_are_rasterised_by_cell_centre():
    square = [(100, 100), (300, 100), (300, 300), (100, 300)]  # cell centres at 50, 150, 250, 350
    grid = rasterize_polygons([square], (4, 5), 100)
    assert np.argwhere(grid).tolist() == [[1, 1], [1, 2], [2, 1], [2, 2]]
    triangle = [(0, 0), (390, 0), (0, 390)]  # centre (c + .5, r + .5) * 100 inside when r + c <= 2
    grid = rasterize_polygons([triangle], (4, 4), 100)
    assert grid.tolist() == [[r + c <= 2 for c in range(4)] for r in range(4)]
    assert not rasterize_polygons([[(0, 0), (10, 10)]], (2, 2), 100).any()  # not a polygon
    assert not rasterize_polygons([[(1000, 1000), (1200, 1000), (1200, 1200)]], (2, 2), 100).any()  # outside


def test_truth_from_annotations_layers_classes_and_exclusions():
    tumor = Annotation("tumor", ((0, 0), (400, 0), (400, 400), (0, 400)))
    hole = Annotation("exclusion", ((200, 200), (400, 200), (400, 400), (200, 400)))
    truth = truth_from_annotations([hole, tumor], ["normal", "tumor"], (5, 5), 100, default="normal")
    expected = np.zeros((5, 5), int)
    expected[:4, :4] = 1
    expected[2:4, 2:4] = IGNORE  # exclusions win whatever their order in the file
    assert truth.tolist() == expected.tolist()
    with pytest.raises(PathboardError, match="Custom"):
        truth_from_annotations([Annotation("Custom", tumor.polygon)], ["normal", "tumor"], (5, 5), 100, "normal")


def test_label_images_reduce_to_the_majority_per_cell():
    labels = np.zeros((4, 6), dtype=np.int8)
    labels[:, 3:] = 1
    labels[0, 0] = 1  # a minority pixel does not flip its cell
    labels[2:, :2] = -1
    # cells of 2 x 2 pixels; the middle column of cells is half 0, half 1: a tie goes to the smaller value
    assert mask_to_grid(labels, (2, 3), 2).tolist() == [[0, 0, 1], [IGNORE, 0, 1]]
    # a grid reaching past the label image: the cells outside are ignored
    assert mask_to_grid(labels, (3, 3), 2)[2].tolist() == [IGNORE] * 3


# ------------------------------------------------------------------------------ dataset ground truths

def test_digestpath_truth_from_lesion_masks(tmp_path):
    ds = plugins.get("dataset", "digestpath")
    assert ds.mpp == 0.5
    base = tmp_path / ds.folder
    (base / "tissue-train-pos-v1").mkdir(parents=True)
    (base / "tissue-train-neg").mkdir()
    rng = np.random.default_rng(0)
    img = np.concatenate([texture("purple", (336, 224), rng), texture("pink", (336, 224), rng)], axis=1)
    Image.fromarray(img).save(base / "tissue-train-pos-v1/18-01.jpg", quality=90)
    mask = np.zeros((336, 448), np.uint8)
    mask[56:280, 112:224] = 255  # the lesion: rows 1-4, columns 2-3 of a 56 px grid
    mask[0:10, 400:448] = 255  # a sliver in cell (0, 7) stays benign (majority)
    Image.fromarray(mask).save(base / "tissue-train-pos-v1/18-01_mask.jpg", quality=75)  # lossy, as shipped
    Image.fromarray(img[:, ::-1]).save(base / "tissue-train-neg/19-02.jpg")
    Image.fromarray(img).save(base / "tissue-train-pos-v1/18-03.jpg")  # its mask is missing

    truth = ds.segmentation_truth(base, "tissue-train-pos-v1/18-01.jpg", (6, 8), 56)
    expected = np.zeros((6, 8), int)
    expected[1:5, 2:4] = 1  # malignant is class 1
    assert ds.classes.index("malignant") == 1
    assert truth.tolist() == expected.tolist()
    assert ds.segmentation_truth(base, "tissue-train-neg/19-02.jpg", (6, 8), 56).tolist() == np.zeros((6, 8)).tolist()
    with pytest.raises(DatasetNotFoundError, match="18-03_mask.jpg not found"):
        ds.segmentation_truth(base, "tissue-train-pos-v1/18-03.jpg", (6, 8), 56)

    # the JPEGs carry no resolution: they tile at the dataset's declared mpp, and only with it
    slide = open_slide(base / "tissue-train-pos-v1/18-01.jpg")
    with pytest.raises(PathboardError, match="no resolution metadata"):
        tile_grid(slide, Tiling(overlap=0.75))
    grid = tile_grid(slide, Tiling(overlap=0.75, fallback_mpp=ds.mpp))
    assert grid.slide_mpp == 0.5 and grid.mpp_source.startswith("dataset mpp") and grid.size0 == 224
    assert len(grid.coords) and (grid.coords % 56 == 0).all()
    assert Tiling().key() == {"size": 224, "mpp": 0.5, "magnification": None, "overlap": 0.0, "min_tissue": 0.25}
    assert Tiling(fallback_mpp=0.5).key() != Tiling().key()


def test_camelyon16_truth_from_asap_polygons(tmp_path):
    ds = plugins.get("dataset", "camelyon16")
    base = tmp_path / ds.folder
    for path in ("training/tumor/tumor_001.tif", "training/tumor/tumor_002.tif", "training/normal/normal_001.tif",
                 "testing/images/test_001.tif", "testing/images/test_002.tif"):
        (base / path).parent.mkdir(parents=True, exist_ok=True)
        (base / path).write_bytes(b"slide")  # the truth reads annotations only
    (base / "training/lesion_annotations").mkdir()
    (base / "training/lesion_annotations/tumor_001.xml").write_text(asap_xml([
        ("Annotation 0", "_0", [(0, "1000", "1000"), (1, "5000", "1000"), (2, "5000", "4000"), (3, "1000", "4000")]),
        ("Annotation 1", "_2", [(0, "3000", "2000"), (1, "5000", "2000"), (2, "5000", "4000"), (3, "3000", "4000")]),
        ("Annotation 2", "_1", [(0, "6000,5", "0"), (1, "8000", "0"), (2, "8000", "1000"), (3, "6000", "1000")]),
    ]))
    (base / "testing/reference.csv").write_text("Test_001,Tumor,Micro,\nTest_002,Normal,None,\n")
    with zipfile.ZipFile(base / "testing/lesion_annotations.zip", "w") as zf:
        zf.writestr("test_001.xml", asap_xml([("A", "Tumor", [(0, 0, 0), (1, 2000, 0), (2, 2000, 2000), (3, 0, 2000)])]))

    truth = ds.segmentation_truth(base, "training/tumor/tumor_001.tif", (5, 9), 1000)
    expected = np.zeros((5, 9), int)
    expected[1:4, 1:5] = 1  # tumor
    expected[2:4, 3:5] = IGNORE  # normal tissue inside the outline (group _2)
    expected[0, 6:8] = 1  # a second metastasis (group _1)
    assert truth.tolist() == expected.tolist()
    test = ds.segmentation_truth(base, "testing/images/test_001.tif", (3, 3), 1000)
    assert test.tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 0]]  # from the zipped test annotations
    assert (ds.segmentation_truth(base, "training/normal/normal_001.tif", (3, 3), 1000) == 0).all()
    assert (ds.segmentation_truth(base, "testing/images/test_002.tif", (3, 3), 1000) == 0).all()
    with pytest.raises(DatasetNotFoundError, match="tumor_002.tif is a tumor slide but has no lesion annotation"):
        ds.segmentation_truth(base, "training/tumor/tumor_002.tif", (3, 3), 1000)
    (base / "testing/reference.csv").write_text("Test_001,Tumor,Micro,\nTest_002,Tumor,Macro,\n")
    with pytest.raises(DatasetNotFoundError, match="test_002.tif is a tumor slide"):
        ds.segmentation_truth(base, "testing/images/test_002.tif", (3, 3), 1000)


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


# ------------------------------------------------------------------------------------ end to end

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


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread: on a small shared machine two threads each fighting for a busy core are
    many times slower than one, and a fixed thread count keeps training bit-for-bit repeatable."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
    second = execute(plan(cfg), cfg)
    assert second.image_forwards == 0
    assert second.cells[0]["metrics"]["dice"].value == pytest.approx(metrics["dice"].value)


CMU = "CMU-1-Small-Region.svs"  # 2220 x 2967 px at 0.499 µm/px; tissue is a diagonal strip


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
