"""Zero-shot patch classification, as in CONCH (Lu et al., Nature Medicine 2024).

Each class becomes one text embedding (the normalised mean of its prompts); an image is assigned
the class of highest cosine similarity. Scored on the dataset's evaluation split.
"""
from __future__ import annotations

from pathboard import hookimpl
from pathboard.core.errors import PathboardError
from pathboard.core.metrics import classification_metrics
from pathboard.core.task import CellContext, Predictions, Task, TaskResult
from pathboard.core.zeroshot import predict, zero_shot_classifier


class ZeroShot(Task):
    id = "zeroshot"
    title = "Zero-shot patch classification"
    needs = frozenset({"patches", "labels"})

    def score(self, ctx: CellContext) -> TaskResult:
        classifier = zero_shot_classifier(ctx.encode_texts, ctx.prompts.prompts(ctx.prompt_mode, ctx.class_names))
        rows = ctx.evaluated(getattr(ctx.dataset, "eval_split", None))
        if not rows.any():
            raise PathboardError(f"{ctx.dataset.id}: no labelled, readable items to score")
        y_pred = predict(ctx.image_embeddings, classifier)
        y_true, y_pred = ctx.labels[rows], y_pred[rows]
        items = [p for p, keep in zip(ctx.manifest.paths, rows) if keep]
        return TaskResult({"": classification_metrics(y_true, y_pred, ctx.class_names, ctx.ordinal)},
                          predictions={"": Predictions(items, y_true, y_pred)})


@hookimpl
def register_tasks(register):
    register(ZeroShot())
