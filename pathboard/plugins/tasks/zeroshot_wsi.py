"""Zero-shot WSI classification with MI-Zero top-K pooling (Lu et al., CVPR 2023; CONCH, 2024).

Each tissue tile is compared with every class embedding; a class's slide score is the mean of its
K most similar tiles, and the slide gets the best-scoring class. Every K in ``TOPK_VALUES`` (1, 5, 10,
50, 100) is reported; the headline uses ``TOPK_HEADLINE`` (50), fixed and never chosen on test slides.

Options: the slide tasks' tiling (``mpp``, or ``magnification``, which wins, and ``tile_size``), and
``prompt_sets``: ``pooled`` (one classifier) or ``median`` (MI-Zero's own report: each explicit prompt set of
the prompt file, such as MI-Zero's 50, scored alone, and every metric the median over the sets), and
``pooling``: ``topk`` (MI-Zero, above) or ``screened-vote``, KEEP's label-free prompt screening and tile vote
(:mod:`pathboard.core.science.screening`; classes the prompt set adds beyond the dataset's, KEEP's "Normal",
collect tile votes but never label a slide). Under ``screened-vote`` the headline's slide probabilities are
the vote shares over the dataset's classes, and no top-K variants are reported; it picks each slide's own prompt
sets, so it does not combine with ``prompt_sets=median`` (refused when the run is planned).

Each K also reports calibration and ranking metrics of the slide probabilities, softmax(logit_scale x
the pooled similarities) at the model's own logit scale: ECE, Brier, NLL and AUROC (binary, or macro
one-vs-rest). The ``reliability`` variant holds the headline K's reliability diagram bins.

Slide models (TITAN, PRISM) have one embedding per slide, in the space of their text encoder: a slide's class
scores are its embedding against the prompt classifier, with no pooling of tiles (no top-K variants; the engine
records ``pooling: slide-encoder`` with the model, so the cells share the task's protocol with the patch models'
and are compared with them, paired). ``prompt_sets=median`` scores each set the same way; ``screened-vote``
votes over tiles and does not apply to them.

Slides are the items; when they carry groups (Record meta ``"group"``: the patient or case), the 95%
CIs come from a cluster bootstrap over the groups, and the cell's protocol says which bootstrap it used.
"""
from __future__ import annotations

import json

import numpy as np

from pathboard.api import (
    RELIABILITY,
    TOPK_HEADLINE,
    TOPK_VALUES,
    Artifact,
    CellContext,
    Option,
    PathboardError,
    Predictions,
    SlideTask,
    TaskResult,
    bootstrap_label,
    calibration_metrics,
    classification_metrics,
    evaluated_items,
    heatmap,
    hookimpl,
    item_groups,
    median_metrics,
    reliability_bins,
    safe_name,
    screened_vote,
    screening_bank,
    softmax_probs,
    topk_pool,
    zero_shot_classifier,
)

#: tiles kept per slide for the leaderboard's drill-down (the most similar to the predicted class)
TOP_TILES = 8


def top_tiles(coords: np.ndarray, values: np.ndarray, info: dict, predicted: str, truth: str, file) -> dict:
    """The slide's ``TOP_TILES`` tiles most similar to the predicted class, with their level-0 corner,
    side and similarity, so the leaderboard can read them back from the slide; and predicted vs true."""
    order = np.argsort(-values, kind="stable")[:TOP_TILES]
    return {"file": str(file), "predicted": predicted, "truth": truth, "size0": int(info["size0"]),
            "level": int(info.get("level", 0)), "windows": info.get("mpp_source") == "windows of a small image",
            "pooled_k": TOPK_HEADLINE,
            "tiles": [{"x": int(coords[i][0]), "y": int(coords[i][1]), "similarity": float(values[i])}
                      for i in order]}


POOLINGS = ("topk", "screened-vote")


def scored_slides(ctx: CellContext, score) -> tuple[list[str], list[int], list, object]:
    """(slides, their labels, ``score(path, tiles, label)`` of each, their groups: the patient or case, if
    given) over the labelled slides with tiles; one line when there is none."""
    items, truth, values = [], [], []
    for path, label in ctx.tiles.labelled():
        values.append(score(path, ctx.tiles[path], int(label)))
        items.append(path)
        truth.append(int(label))
    if not truth:
        raise PathboardError(f"{ctx.dataset.id}: no slide could be scored")
    return items, truth, values, item_groups(ctx.manifest, items)


def bootstrap_of(ctx: CellContext, groups) -> str:
    """The cell's bootstrap, for its protocol: over the groups of every evaluated slide, not just those scored
    here, so that models that lost different slides still share one protocol and are compared."""
    planned = item_groups(ctx.manifest, evaluated_items(ctx.dataset, ctx.manifest))
    return bootstrap_label(planned if groups is not None else None)


class ZeroShotWSI(SlideTask):
    id = "zeroshot-wsi"
    title = "Zero-shot WSI classification (MI-Zero top-K)"
    options = (*SlideTask.options,
               Option("pooling", str, "topk", "topk: MI-Zero top-K tile pooling; screened-vote: KEEP's label-free "
                      "prompt screening (top 50 prompt sets per slide) and tile vote", choices=POOLINGS),
               Option("prompt_sets", str, "pooled", "pooled: one classifier from the prompt mode's prompts; median: "
                      "each explicit set of the prompt file (MI-Zero's 50) scored alone, the median reported",
                      choices=("pooled", "median")))

    slide_level = True

    def configure(self, values):
        """As every task; and ``pooling=screened-vote`` with ``prompt_sets=median`` is refused in one line: KEEP's
        screening picks each slide's own prompt sets, so there is no set to score alone (it used to run the
        screened vote and say nothing of the median asked for)."""
        task = super().configure(values)
        if task.values["pooling"] == "screened-vote" and task.values["prompt_sets"] == "median":
            raise PathboardError("zeroshot-wsi: pooling=screened-vote screens each slide's own prompt sets, so "
                                 "prompt_sets=median (each set scored alone) does not apply: choose one of them")
        return task

    def score(self, ctx: CellContext) -> TaskResult:
        if ctx.slides_text is not None and self.values.get("pooling") == "screened-vote":
            raise PathboardError(f"{ctx.model_id} is a slide encoder: screened-vote pools tile votes; score it "
                                 "with pooling=topk (its slide embedding against the classifier)")
        if self.values.get("pooling") == "screened-vote":
            return self.screened(ctx)
        if ctx.slides_text is not None and self.values.get("prompt_sets") != "median":
            return self.by_slide_encoder(ctx)
        if self.values.get("prompt_sets") == "median":
            return self.median_of_sets(ctx)
        classifier = zero_shot_classifier(ctx.encode_texts, ctx.prompts.prompts(ctx.prompt_mode, ctx.class_names))
        artifacts = []

        def pool(path, tiles, label):  # every K's slide scores; the headline K's heatmap and top tiles
            similarities = tiles.embeddings @ classifier.T
            pooled = {k: topk_pool(similarities, k) for k in TOPK_VALUES}
            if ctx.artifacts is not None:
                out = ctx.artifacts / f"{safe_name(path)}.{ctx.prompt_mode}.heatmap.jpg"
                best = int(pooled[TOPK_HEADLINE].argmax())
                heatmap(ctx.manifest.root / path, tiles.coords, tiles.info["size0"], similarities[:, best], out)
                artifacts.append(Artifact(path, "heatmap", str(out)))
                top = top_tiles(tiles.coords, similarities[:, best], tiles.info, ctx.class_names[best],
                                ctx.class_names[label], ctx.manifest.root / path)
                out = out.with_suffix(".topk.json")
                out.write_text(json.dumps(top))
                artifacts.append(Artifact(path, "topk", str(out)))
            return pooled

        items, truth, slides, groups = scored_slides(ctx, pool)
        pooled = {k: np.stack([slide[k] for slide in slides]) for k in TOPK_VALUES}  # [slides, C] per K
        predicted = {k: pooled[k].argmax(axis=1) for k in TOPK_VALUES}
        probs = {k: softmax_probs(pooled[k], ctx.logit_scale) for k in TOPK_VALUES}
        scores = {f"topk={k}": classification_metrics(truth, predicted[k], ctx.class_names, ctx.ordinal, groups=groups)
                  + calibration_metrics(truth, probs[k], ctx.class_names, groups=groups)
                  for k in TOPK_VALUES}
        scores[""] = scores[f"topk={TOPK_HEADLINE}"]
        # the reliability diagram of the headline K's slide probabilities, as patch zero-shot stores it
        scores[RELIABILITY] = reliability_bins(truth, probs[TOPK_HEADLINE])
        return TaskResult(scores, artifacts=artifacts,
                          predictions={"": Predictions(items, np.asarray(truth), np.asarray(predicted[TOPK_HEADLINE]),
                                                       groups)},
                          protocol={"bootstrap": bootstrap_of(ctx, groups)})

    def by_slide_encoder(self, ctx: CellContext) -> TaskResult:
        """A slide model: each slide's embedding against the prompt classifier (TITAN's and PRISM's zero-shot)."""
        classifier = zero_shot_classifier(ctx.encode_texts, ctx.prompts.prompts(ctx.prompt_mode, ctx.class_names))
        text = ctx.slides_text  # the slides in the space of the texts
        items, truth, slides, groups = scored_slides(ctx, lambda path, tiles, label: text[path] @ classifier.T)
        scores = np.stack(slides)  # [slides, C]
        predicted, probs = scores.argmax(axis=1), softmax_probs(scores, ctx.logit_scale)
        metrics = (classification_metrics(truth, predicted, ctx.class_names, ctx.ordinal, groups=groups)
                   + calibration_metrics(truth, probs, ctx.class_names, groups=groups))
        return TaskResult({"": metrics, RELIABILITY: reliability_bins(truth, probs)},
                          predictions={"": Predictions(items, np.asarray(truth), predicted, groups)},
                          protocol={"bootstrap": bootstrap_of(ctx, groups)})

    def median_of_sets(self, ctx: CellContext) -> TaskResult:
        """MI-Zero's own report: every explicit prompt set of the prompt file is a classifier of its own, each K's
        metrics are the median over the sets (CI: the median's, on shared resamples of patients)."""
        if not ctx.prompts.sets:
            raise PathboardError(f"zeroshot-wsi prompt_sets=median needs a prompt file with explicit sets; "
                                 f"{ctx.prompts.source} has none")
        classifiers = [zero_shot_classifier(ctx.encode_texts, one) for one in ctx.prompts.set_prompts(ctx.class_names)]

        def predict(path, tiles, label):  # K -> the predicted class under each set
            similarities = [tiles.embeddings @ classifier.T for classifier in classifiers]
            return {k: [int(topk_pool(s, k).argmax()) for s in similarities] for k in TOPK_VALUES}

        if ctx.slides_text is not None:  # a slide model: one embedding per slide, no K
            items, truth, slides, groups = scored_slides(
                ctx, lambda path, tiles, label: [int((ctx.slides_text[path] @ c.T).argmax()) for c in classifiers])
            metrics = median_metrics(truth, list(np.array(slides).T), ctx.class_names, ctx.ordinal, groups=groups)
            return TaskResult({"": metrics}, protocol={"bootstrap": bootstrap_of(ctx, groups),
                                                       "prompt_sets": len(classifiers)})
        items, truth, slides, groups = scored_slides(ctx, predict)
        scores = {f"topk={k}": median_metrics(truth, list(np.array([slide[k] for slide in slides]).T), ctx.class_names,
                                              ctx.ordinal, groups=groups) for k in TOPK_VALUES}
        scores[""] = scores[f"topk={TOPK_HEADLINE}"]
        return TaskResult(scores, protocol={"bootstrap": bootstrap_of(ctx, groups), "prompt_sets": len(classifiers)})

    def screened(self, ctx: CellContext) -> TaskResult:
        """Each slide labelled by KEEP's procedure: its own top prompt sets, then its tiles' votes."""
        bank, combos, extra = screening_bank(ctx.encode_texts, ctx.prompts, ctx.prompt_mode, ctx.class_names)
        items, truth, shares, groups = scored_slides(
            ctx, lambda path, tiles, label: screened_vote(tiles.embeddings, tiles.coords, int(tiles.info["size0"]),
                                                          bank, combos, len(ctx.class_names)))
        votes = np.stack(shares)
        predicted = votes.argmax(axis=1)  # a tie goes to the first class, as numpy's argmax
        total = votes.sum(axis=1, keepdims=True)  # every tile voted for an added class: no preference
        probs = np.where(total > 0, votes / np.where(total > 0, total, 1), 1 / votes.shape[1])
        metrics = (classification_metrics(truth, predicted, ctx.class_names, ctx.ordinal, groups=groups)
                   + calibration_metrics(truth, probs, ctx.class_names, groups=groups))
        return TaskResult({"": metrics, RELIABILITY: reliability_bins(truth, probs)},
                          predictions={"": Predictions(items, np.asarray(truth), predicted, groups)},
                          protocol={"bootstrap": bootstrap_of(ctx, groups), "pooling": "screened-vote",
                                    "candidates": int(len(combos)), "vote_only_classes": extra})


@hookimpl
def register_tasks(register):
    register(ZeroShotWSI())
