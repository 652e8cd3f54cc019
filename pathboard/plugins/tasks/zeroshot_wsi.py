"""Zero-shot WSI classification with MI-Zero top-K pooling (Lu et al., CVPR 2023; CONCH, 2024).

Each tissue tile is compared with every class embedding; a class's slide score is the mean of its
K most similar tiles, and the slide gets the best-scoring class. Every K in ``K_VALUES`` is
reported; the headline uses ``HEADLINE_K``, fixed here and never chosen on test slides.

Options: ``mpp`` (or ``magnification``, which wins) and ``tile_size`` choose the tiling.

Each K also reports calibration and ranking metrics of the slide probabilities, softmax(logit_scale x
the pooled similarities) at the model's own logit scale: ECE, Brier, NLL and AUROC (binary, or macro
one-vs-rest; :mod:`pathboard.core.science.calibration`). The ``reliability`` variant holds the headline K's reliability
diagram bins.

Slides are the items; when they carry groups (Record meta ``"group"``: the patient or case), the 95%
CIs come from a cluster bootstrap over the groups, and the cell's protocol says which bootstrap it used.
"""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from pathboard import hookimpl
from pathboard.core.errors import PathboardError
from pathboard.core.interfaces.options import Option
from pathboard.core.interfaces.task import (
    Artifact,
    CellContext,
    Inputs,
    Predictions,
    Task,
    TaskResult,
    evaluated_items,
    item_groups,
)
from pathboard.core.media.tiling import Tiling, open_slide
from pathboard.core.science.calibration import RELIABILITY, calibration_metrics, reliability_bins, softmax_probs
from pathboard.core.science.metrics import bootstrap_label, classification_metrics
from pathboard.core.science.zeroshot import topk_pool, zero_shot_classifier

K_VALUES = (1, 5, 10, 50, 100)
HEADLINE_K = 50

#: the slide tasks' tiling options (``--mpp``, ``--magnification`` and ``--tile-size`` are aliases)
TILING_OPTIONS = (
    Option("mpp", float, 0.5, "tile at this resolution (µm per pixel)", min=0.05, max=20),
    Option("magnification", float, None, "tile at this magnification instead (taken as 10/mpp); wins over mpp",
           min=0.5, max=100),
    Option("tile_size", int, 224, "tile side in pixels at that resolution", min=224, max=512),
)


def tiling_from(values, **fixed) -> Tiling:
    """The Tiling that the TILING_OPTIONS values name (plus fixed fields such as the overlap)."""
    return Tiling(size=values["tile_size"], mpp=values["mpp"], magnification=values["magnification"], **fixed)


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


#: tiles kept per slide for the leaderboard's drill-down (the most similar to the predicted class)
TOP_TILES = 8


def top_tiles(coords: np.ndarray, values: np.ndarray, info: dict, predicted: str, truth: str, file) -> dict:
    """The slide's ``TOP_TILES`` tiles most similar to the predicted class, with their level-0 corner,
    side and similarity, so the leaderboard can read them back from the slide; and predicted vs true."""
    order = np.argsort(-values, kind="stable")[:TOP_TILES]
    return {"file": str(file), "predicted": predicted, "truth": truth, "size0": int(info["size0"]),
            "level": int(info.get("level", 0)), "windows": info.get("mpp_source") == "windows of a small image",
            "pooled_k": HEADLINE_K,
            "tiles": [{"x": int(coords[i][0]), "y": int(coords[i][1]), "similarity": float(values[i])}
                      for i in order]}


class ZeroShotWSI(Task):
    id = "zeroshot-wsi"
    title = "Zero-shot WSI classification (MI-Zero top-K)"
    needs = frozenset({"slides", "labels"})
    options = TILING_OPTIONS

    @property
    def tiling(self) -> Tiling:
        return tiling_from(self.values)

    def inputs(self, dataset, manifest) -> Inputs:
        return Inputs(tiles=self.tiling, texts=True)

    def score(self, ctx: CellContext) -> TaskResult:
        classifier = zero_shot_classifier(ctx.encode_texts, ctx.prompts.prompts(ctx.prompt_mode, ctx.class_names))
        items, truth, artifacts = [], [], []
        pooled = {k: [] for k in K_VALUES}
        for path, label in ctx.tiles.labelled():
            tiles = ctx.tiles[path]
            similarities = tiles.embeddings @ classifier.T
            for k in K_VALUES:
                pooled[k].append(topk_pool(similarities, k))
            items.append(path)
            truth.append(int(label))
            if ctx.artifacts is not None:
                out = ctx.artifacts / f"{path.replace('/', '__')}.{ctx.prompt_mode}.png"
                best = int(pooled[HEADLINE_K][-1].argmax())
                heatmap(ctx.manifest.root / path, tiles.coords, tiles.info["size0"], similarities[:, best], out)
                artifacts.append(Artifact(path, "heatmap", str(out)))
                top = top_tiles(tiles.coords, similarities[:, best], tiles.info, ctx.class_names[best],
                                ctx.class_names[int(label)], ctx.manifest.root / path)
                out = out.with_suffix(".topk.json")
                out.write_text(json.dumps(top))
                artifacts.append(Artifact(path, "topk", str(out)))
        if not truth:
            raise PathboardError(f"{ctx.dataset.id}: no slide could be scored")
        groups = item_groups(ctx.manifest, items)  # a slide's group: its patient (or case), if given
        pooled = {k: np.stack(slides) for k, slides in pooled.items()}  # [slides, C] per K
        predicted = {k: pooled[k].argmax(axis=1) for k in K_VALUES}
        probs = {k: softmax_probs(pooled[k], ctx.logit_scale) for k in K_VALUES}
        scores = {f"topk={k}": classification_metrics(truth, predicted[k], ctx.class_names, ctx.ordinal, groups=groups)
                  + calibration_metrics(truth, probs[k], ctx.class_names, groups=groups)
                  for k in K_VALUES}
        scores[""] = scores[f"topk={HEADLINE_K}"]
        # the reliability diagram of the headline K's slide probabilities, as patch zero-shot stores it
        scores[RELIABILITY] = reliability_bins(truth, probs[HEADLINE_K])
        # the protocol counts the groups of every evaluated slide, not just those scored here, so models
        # that lost different slides still share one protocol and are compared
        planned = item_groups(ctx.manifest, evaluated_items(ctx.dataset, ctx.manifest))
        return TaskResult(scores, artifacts=artifacts,
                          predictions={"": Predictions(items, np.asarray(truth), np.asarray(predicted[HEADLINE_K]),
                                                       groups)},
                          protocol={"bootstrap": bootstrap_label(planned if groups is not None else None)})


@hookimpl
def register_tasks(register):
    register(ZeroShotWSI())
