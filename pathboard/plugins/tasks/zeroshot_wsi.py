"""Zero-shot WSI classification with MI-Zero top-K pooling (Lu et al., CVPR 2023; CONCH, 2024).

Each tissue tile is compared with every class embedding; a class's slide score is the mean of its
K most similar tiles, and the slide gets the best-scoring class. Every K in ``K_VALUES`` is
reported; the headline uses ``HEADLINE_K``, fixed here and never chosen on test slides.
"""
from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
from PIL import Image

from pathboard import hookimpl
from pathboard.core.errors import PathboardError
from pathboard.core.metrics import classification_metrics
from pathboard.core.task import CellContext, Task
from pathboard.core.tiling import Tiling, open_slide
from pathboard.plugins.tasks.zeroshot import zero_shot_classifier

K_VALUES = (1, 5, 10, 50, 100)
HEADLINE_K = 50


def topk_pool(similarities: np.ndarray, k: int) -> np.ndarray:
    """[C] slide scores: per class, the mean similarity of its top-k tiles ([T, C] in)."""
    k = min(k, len(similarities))
    return np.sort(similarities, axis=0)[-k:].mean(axis=0)


def heatmap(slide_file, coords: np.ndarray, size0: int, values: np.ndarray, out) -> None:
    """The tiles' similarity to the predicted class, red (high) to yellow, over the thumbnail."""
    slide = open_slide(slide_file)
    thumb = slide.get_thumbnail((1024, 1024)).convert("RGB")
    scale = thumb.size[0] / slide.dimensions[0]
    v = (values - values.min()) / (np.ptp(values) or 1.0)
    layer = np.zeros((thumb.size[1], thumb.size[0], 4), dtype=np.float32)
    side = max(1, round(size0 * scale))
    for (x, y), value in zip(coords, v):
        x0, y0 = int(x * scale), int(y * scale)
        layer[y0:y0 + side, x0:x0 + side] = (1.0, 1.0 - value, 0.0, 0.55)
    base = np.asarray(thumb, dtype=np.float32) / 255
    blended = base * (1 - layer[..., 3:]) + layer[..., :3] * layer[..., 3:]
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((blended * 255).astype(np.uint8)).save(out)


class ZeroShotWSI(Task):
    id = "zeroshot-wsi"
    title = "Zero-shot WSI classification (MI-Zero top-K)"
    tiling = Tiling()

    def configure(self, cfg) -> "ZeroShotWSI":
        """A copy tiling at the run's --mpp/--magnification/--tile-size."""
        task = copy.copy(self)
        task.tiling = replace(self.tiling, size=getattr(cfg, "tile_size", self.tiling.size),
                              mpp=getattr(cfg, "mpp", self.tiling.mpp),
                              magnification=getattr(cfg, "magnification", self.tiling.magnification))
        return task

    def supports(self, dataset):
        if getattr(dataset, "level", "patch") != "wsi":
            return f"{dataset.id} is patch-level; zeroshot-wsi scores slides"
        if not dataset.classes:
            return f"{dataset.id} is unlabelled"
        return super().supports(dataset)

    def score(self, ctx: CellContext):
        classifier = zero_shot_classifier(ctx.encode_texts, ctx.prompts.prompts(ctx.prompt_mode, ctx.class_names))
        split = getattr(ctx.dataset, "eval_split", None)
        truth, predicted = [], {k: [] for k in K_VALUES}
        for path, label, s in zip(ctx.manifest.paths, ctx.labels, ctx.splits):
            if label < 0 or (split is not None and s != split):
                continue
            try:
                tiles = ctx.embedder.slide(ctx.dataset, ctx.manifest, path, self.tiling)
            except PathboardError as exc:
                ctx.fail(path, str(exc))
                continue
            similarities = tiles.embeddings @ classifier.T
            for k in K_VALUES:
                predicted[k].append(int(topk_pool(similarities, k).argmax()))
            truth.append(int(label))
            if ctx.artifacts is not None:
                out = ctx.artifacts / f"{path.replace('/', '__')}.{ctx.prompt_mode}.png"
                best = predicted[HEADLINE_K][-1]
                heatmap(ctx.manifest.root / path, tiles.coords, tiles.info["size0"], similarities[:, best], out)
                ctx.written.append((path, "heatmap", str(out)))
        if not truth:
            raise PathboardError(f"{ctx.dataset.id}: no slide could be scored")
        scores = {f"topk={k}": classification_metrics(truth, predicted[k], ctx.class_names, ctx.ordinal)
                  for k in K_VALUES}
        scores[""] = scores[f"topk={HEADLINE_K}"]
        ctx.predictions[""] = (truth, predicted[HEADLINE_K])
        return scores


@hookimpl
def register_tasks(register):
    register(ZeroShotWSI())
