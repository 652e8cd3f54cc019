"""Zero-shot patch classification, as in CONCH (Lu et al., Nature Medicine 2024).

Each class becomes one text embedding (the normalised mean of its prompts); an image is assigned the class
of highest cosine similarity. Scored on the evaluated items (``evaluated_items``: the evaluation split).

When the dataset's items carry groups (Record meta ``"group"``: patient, case, slide), the 95% CIs come from
a cluster bootstrap over the groups (patches of one slide are not independent); the cell's protocol says
which bootstrap it used.

Besides the classification metrics it reports how calibrated the model's zero-shot probabilities are,
softmax(logit_scale x cosine) at the model's own learned logit scale, and how well they rank: ECE (15 bins),
Brier score, NLL and AUROC (binary, or macro one-vs-rest), with CIs on the same resamples.
"""
from __future__ import annotations

from pathboard.api import (
    RELIABILITY,
    CellContext,
    PathboardError,
    Predictions,
    Task,
    TaskResult,
    bootstrap_label,
    calibration_metrics,
    classification_metrics,
    evaluated_items,
    hookimpl,
    item_groups,
    reliability_bins,
    similarities,
    softmax_probs,
    zero_shot_classifier,
)


class ZeroShot(Task):
    id = "zeroshot"
    title = "Zero-shot patch classification"
    needs = frozenset({"patches", "labels"})

    def score(self, ctx: CellContext) -> TaskResult:
        classifier = zero_shot_classifier(ctx.encode_texts, ctx.prompts.prompts(ctx.prompt_mode, ctx.class_names))
        rows = ctx.evaluated_rows()
        if not rows.any():
            raise PathboardError(f"{ctx.dataset.id}: no labelled, readable items to score")
        scores = similarities(ctx.image_embeddings, classifier)[rows]
        y_true, y_pred = ctx.labels[rows], scores.argmax(axis=1)
        items = [p for p, keep in zip(ctx.manifest.paths, rows) if keep]
        groups = item_groups(ctx.manifest, rows)
        # the protocol counts the groups of every evaluated item (not just those this model embedded),
        # so models that lost different items still share one protocol and are compared
        planned = item_groups(ctx.manifest, evaluated_items(ctx.dataset, ctx.manifest))
        metrics = classification_metrics(y_true, y_pred, ctx.class_names, ctx.ordinal, groups=groups)
        probs = softmax_probs(scores, ctx.logit_scale)
        metrics += calibration_metrics(y_true, probs, ctx.class_names, groups=groups)
        return TaskResult({"": metrics, RELIABILITY: reliability_bins(y_true, probs)},
                          predictions={"": Predictions(items, y_true, y_pred, groups)},
                          protocol={"bootstrap": bootstrap_label(planned if groups is not None else None)})


@hookimpl
def register_tasks(register):
    register(ZeroShot())
