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

Metrics (``segmentation_metrics``): per image, Dice, precision and recall of every class present in the
truth or the prediction, macro-averaged; then the mean over images, with a seeded bootstrap 95% CI over
images; ``dice/<class>`` and the like per class. Per image a PNG shows the thumbnail, the prediction and the
truth side by side.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from pathboard.api import (
    SEGMENTATION_OVERLAP,
    Artifact,
    CellContext,
    Inputs,
    PathboardError,
    SlideTask,
    TaskResult,
    Tiling,
    average_scores,
    hookimpl,
    image_scores,
    predict_mask,
    safe_name,
    save_panels,
    segmentation_metrics,
    tile_cells,
    tile_stride,
    zero_shot_classifier,
)


class Segmentation(SlideTask):
    id = "segmentation"
    title = "Zero-shot segmentation (tiles with 75% overlap, scores averaged)"
    needs = frozenset({"segmentation", "labels"})  # patch- or slide-level: it embeds its own overlapping tiles
    overlap = SEGMENTATION_OVERLAP

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
            stride = tile_stride(size0, self.overlap)
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
                out = ctx.artifacts / f"{safe_name(path)}.{ctx.prompt_mode}.segmentation.png"
                image = ctx.dataset.open_image(ctx.manifest.root, path) if tiling.window else ctx.manifest.root / path
                save_panels(image, grid_shape, stride, pred, truth, out)
                artifacts.append(Artifact(path, "segmentation", str(out)))
        if not per_image:
            raise PathboardError(f"{ctx.dataset.id}: no image could be segmented")
        protocol = {"tiling": tiling.key(), "stride": "a quarter tile (75% overlap)", "grid": "one cell per stride",
                    "truth": "per cell, from the dataset's segmentation_truth"}
        if tiling.window:
            protocol["window"] = {"native_px": tiling.window, "stride_px": tile_stride(tiling.window, self.overlap),
                                  "resized_to": tiling.size}
        return TaskResult({"": segmentation_metrics(per_image, ctx.class_names)}, artifacts=artifacts, failed=failed,
                          protocol=protocol)


@hookimpl
def register_tasks(register):
    register(Segmentation())
