"""Zero-shot segmentation, as in CONCH (Lu et al., Nature Medicine 2024).

An image or slide is tiled with 75% overlap at the task's resolution (options ``mpp``/``magnification``
and ``tile_size``, aliases ``--mpp``/``--magnification``/``--tile-size``: 224 px at 0.5 µm/px by default);
files without resolution metadata are read at their
dataset's declared scan resolution (``Dataset.mpp``). Each tissue tile is classified
zero-shot: its cosine similarity to each class embedding (one prompt or the ensemble). The grid the
scores are averaged on has one cell per tile stride (a quarter tile), so every cell lies under up to
16 tiles; a cell's class scores are the mean similarity of the tiles covering it and its predicted
class is the argmax. Nothing is fitted or thresholded on the test images.

Ground truth comes from the dataset: ``segmentation_truth(base, path, grid_shape, cell_size0)``
returns a class index per grid cell (``-1``: ignored, e.g. CAMELYON16 exclusion outlines). Cells that
no kept tile covers are background or too little tissue for the tissue detector: they have no
prediction and are not scored, for every model alike.

Metrics: per image, Dice (F1), precision and recall of every class present in the truth or the
prediction (0 where undefined: a class never predicted has precision 0), macro-averaged; then the
mean over images, with a seeded bootstrap 95% CI over images. ``dice/<class>`` (and ``precision/<class>``,
``recall/<class>``) average one class's score over the images where it is present in the truth or the
prediction. Per image a PNG shows the
thumbnail, the prediction and the truth side by side.
"""
from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
from PIL import Image

from pathboard import hookimpl
from pathboard.core.errors import PathboardError
from pathboard.core.interfaces.task import Artifact, CellContext, Inputs, Task, TaskResult
from pathboard.core.media.masks import IGNORE
from pathboard.core.media.tiling import Tiling, open_slide, tile_stride
from pathboard.core.science.metrics import N_BOOT, SEED, Metric, bootstrap_indices, percentile_ci
from pathboard.core.science.zeroshot import zero_shot_classifier
from pathboard.plugins.tasks.zeroshot_wsi import TILING_OPTIONS, tiling_from

OVERLAP = 0.75
#: class colours of the PNGs (RGB); further classes cycle
PALETTE = [(64, 160, 90), (214, 48, 49), (52, 101, 194), (240, 170, 30), (140, 70, 170), (30, 170, 190)]
PANEL = 512  # longest side of each PNG panel


def tile_cells(coords: np.ndarray, size0: int, stride: int) -> tuple[np.ndarray, int]:
    """[T, 2] (row, col) of each tile's top-left grid cell, and the side of a tile in cells."""
    cells = np.asarray(coords, dtype=np.int64)[:, ::-1] // stride
    return cells, max(1, round(size0 / stride))


def average_scores(cells: np.ndarray, span: int, scores: np.ndarray, grid_shape: tuple[int, int]):
    """Mean [rows, cols, C] score of the tiles covering each cell (NaN where none does), and the
    [rows, cols] number of covering tiles. Tile t covers cells ``cells[t] + [0, span)^2``."""
    rows, cols = grid_shape
    total = np.zeros((rows, cols, scores.shape[1]), dtype=np.float64)
    count = np.zeros((rows, cols), dtype=np.int64)
    for dy in range(span):
        for dx in range(span):
            r, c = cells[:, 0] + dy, cells[:, 1] + dx
            inside = (r < rows) & (c < cols)
            np.add.at(total, (r[inside], c[inside]), scores[inside])
            np.add.at(count, (r[inside], c[inside]), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count[..., None]
    return mean, count


def predict_mask(mean: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Argmax class per cell, ``IGNORE`` where no tile covers it."""
    pred = np.full(count.shape, IGNORE, dtype=np.int64)
    covered = count > 0
    pred[covered] = mean[covered].argmax(axis=-1)
    return pred


def image_scores(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> dict[str, np.ndarray] | None:
    """Per-class Dice, precision and recall over the cells scored in both masks ([C] each, NaN for
    classes absent from truth and prediction); None when no cell is scored."""
    scored = (truth >= 0) & (pred >= 0)
    if not scored.any():
        return None
    t, p = truth[scored], pred[scored]
    classes = np.arange(n_classes)
    tp = np.array([np.sum((t == c) & (p == c)) for c in classes], dtype=np.float64)
    n_true = np.bincount(t, minlength=n_classes)[:n_classes].astype(np.float64)
    n_pred = np.bincount(p, minlength=n_classes)[:n_classes].astype(np.float64)
    present = (n_true + n_pred) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {"dice": 2 * tp / (n_true + n_pred),
               "precision": np.where(n_pred > 0, tp / n_pred, 0.0),
               "recall": np.where(n_true > 0, tp / n_true, 0.0)}
    return {name: np.where(present, v, np.nan) for name, v in out.items()}


def segmentation_metrics(per_image: list[dict[str, np.ndarray]], class_names: list[str], n_boot: int = N_BOOT,
                         seed: int = SEED) -> list[Metric]:
    """Macro-averaged per image, then averaged over images, with bootstrap CIs over images."""
    n = len(per_image)
    columns = {}  # metric -> [n] per-image value (NaN: undefined for that image)
    for name in ("dice", "precision", "recall"):
        columns[name] = np.array([np.nanmean(s[name]) for s in per_image])
    for name in ("dice", "precision", "recall"):
        for c, cls in enumerate(class_names):
            values = np.array([s[name][c] for s in per_image])
            if np.isfinite(values).any():
                columns[f"{name}/{cls}"] = values
    boot = {name: [] for name in columns}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample without a class: NaN, dropped below
        for idx in bootstrap_indices(n, n_boot, seed):
            for name, values in columns.items():
                boot[name].append(np.nanmean(values[idx], axis=1))
    return [Metric(name, float(np.nanmean(values)), *percentile_ci(np.concatenate(boot[name])),
                   int(np.isfinite(values).sum())) for name, values in columns.items()]


def colorize(mask: np.ndarray, dim: np.ndarray | None = None) -> np.ndarray:
    """RGB image of a class mask: class colours, light grey for ``IGNORE``; ``dim`` cells washed out."""
    rgb = np.full((*mask.shape, 3), 225, dtype=np.float32)
    for c in range(int(mask.max(initial=-1)) + 1):
        rgb[mask == c] = PALETTE[c % len(PALETTE)]
    if dim is not None:
        rgb[dim] = 0.35 * rgb[dim] + 0.65 * 255
    return rgb.astype(np.uint8)


def save_panels(image, grid_shape, cell: int, pred: np.ndarray, truth: np.ndarray, out) -> None:
    """Thumbnail | prediction | truth (cells outside the scored tissue washed out), one PNG. ``image`` is
    a slide file or an already decoded PIL image (small images segmented in windows)."""
    rows, cols = grid_shape
    scale = PANEL / max(rows, cols)
    size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
    if isinstance(image, Image.Image):
        thumb, f = image.convert("RGB"), 1.0
    else:
        slide = open_slide(image)
        thumb = slide.get_thumbnail((PANEL * 2, PANEL * 2)).convert("RGB")
        f = thumb.size[0] / slide.dimensions[0]
    thumb = thumb.crop((0, 0, round(cols * cell * f), round(rows * cell * f))).resize(size, Image.BILINEAR)
    panels = [thumb,
              Image.fromarray(colorize(pred)).resize(size, Image.NEAREST),
              Image.fromarray(colorize(truth, dim=pred < 0)).resize(size, Image.NEAREST)]
    gap = 8
    canvas = Image.new("RGB", (3 * size[0] + 2 * gap, size[1]), (255, 255, 255))
    for i, panel in enumerate(panels):
        canvas.paste(panel, (i * (size[0] + gap), 0))
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)


class Segmentation(Task):
    id = "segmentation"
    title = "Zero-shot segmentation (tiles with 75% overlap, scores averaged)"
    needs = frozenset({"segmentation", "labels"})  # patch- or slide-level: it embeds its own overlapping tiles
    options = TILING_OPTIONS

    @property
    def tiling(self) -> Tiling:
        return tiling_from(self.values, overlap=OVERLAP)

    def tiling_for(self, dataset) -> Tiling:
        """The task's tiling, with the dataset's scan resolution for files without metadata, or the
        dataset's window (``segmentation_window``: native pixels) for small images such as PanNuke tiles."""
        return replace(self.tiling, fallback_mpp=getattr(dataset, "mpp", None),
                       window=getattr(dataset, "segmentation_window", None))

    def inputs(self, dataset, manifest) -> Inputs:
        """Tiles of the evaluated items, or of the items a dataset says have truth (``segmentation_items``:
        e.g. TissueNet's annotated slides only)."""
        chosen = getattr(dataset, "segmentation_items", None)
        items = tuple(chosen(manifest)) if callable(chosen) else "evaluated"
        return Inputs(tiles=self.tiling_for(dataset), tile_items=items, texts=True)

    def check(self, dataset, manifest):
        chosen = getattr(dataset, "segmentation_items", None)
        if callable(chosen) and not chosen(manifest):
            return f"{dataset.id} has no item with segmentation truth under {manifest.root}"
        return None

    def score(self, ctx: CellContext) -> TaskResult:
        classifier = zero_shot_classifier(ctx.encode_texts, ctx.prompts.prompts(ctx.prompt_mode, ctx.class_names))
        per_image, failed, artifacts = [], {}, []
        tiling = self.tiling_for(ctx.dataset)
        for path, _ in ctx.tiles.items():
            tiles = ctx.tiles[path]
            size0 = int(tiles.info["size0"])
            stride = tile_stride(size0, OVERLAP)
            width, height = tiles.info["dimensions"]
            grid_shape = (height // stride, width // stride)
            try:
                truth = np.asarray(ctx.dataset.segmentation_truth(ctx.manifest.root, path, grid_shape, stride))
            except (PathboardError, OSError) as exc:
                failed[path] = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                continue
            if truth.shape != grid_shape:
                raise PathboardError(f"{ctx.dataset.id}: segmentation_truth gave a {truth.shape} grid for {path}; "
                                     f"expected {grid_shape}")
            cells, span = tile_cells(tiles.coords, size0, stride)
            mean, count = average_scores(cells, span, tiles.embeddings @ classifier.T, grid_shape)
            pred = predict_mask(mean, count)
            scores = image_scores(truth, pred, len(ctx.class_names))
            if scores is None:
                failed[path] = "no tissue cell has a ground-truth label (all ignored)"
                continue
            per_image.append(scores)
            if ctx.artifacts is not None:
                out = ctx.artifacts / f"{path.replace('/', '__')}.{ctx.prompt_mode}.segmentation.png"
                image = ctx.dataset.open_image(ctx.manifest.root, path) if tiling.window else ctx.manifest.root / path
                save_panels(image, grid_shape, stride, pred, truth, out)
                artifacts.append(Artifact(path, "segmentation", str(out)))
        if not per_image:
            raise PathboardError(f"{ctx.dataset.id}: no image could be segmented")
        protocol = {"tiling": tiling.key(), "stride": "a quarter tile (75% overlap)", "grid": "one cell per stride",
                    "truth": "per cell, from the dataset's segmentation_truth"}
        if tiling.window:
            protocol["window"] = {"native_px": tiling.window, "stride_px": tile_stride(tiling.window, OVERLAP),
                                  "resized_to": tiling.size}
        return TaskResult({"": segmentation_metrics(per_image, ctx.class_names)}, artifacts=artifacts, failed=failed,
                          protocol=protocol)


@hookimpl
def register_tasks(register):
    register(Segmentation())
