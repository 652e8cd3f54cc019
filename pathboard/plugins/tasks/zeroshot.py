"""Zero-shot patch classification, as in CONCH (Lu et al., Nature Medicine 2024).

Each class becomes one text embedding (the normalised mean of its prompts); an image is assigned
the class of highest cosine similarity.
"""
from __future__ import annotations

import numpy as np

from pathboard import hookimpl
from pathboard.core.errors import PathboardError
from pathboard.core.metrics import classification_metrics
from pathboard.core.task import CellContext, Task

CHUNK = 65_536


def zero_shot_classifier(encode_texts, prompts: dict[str, list[str]]) -> np.ndarray:
    """[C, D]: per class, the mean of its L2-normalised prompt embeddings, re-normalised."""
    weights = np.stack([encode_texts(texts).mean(axis=0) for texts in prompts.values()])
    return weights / np.linalg.norm(weights, axis=1, keepdims=True)


def predict(image_embeddings: np.ndarray, classifier: np.ndarray) -> np.ndarray:
    """Index of the most similar class per image, streamed over the (memory-mapped) rows."""
    return np.concatenate([np.asarray(image_embeddings[i : i + CHUNK]) @ classifier.T
                           for i in range(0, len(image_embeddings), CHUNK)]).argmax(axis=1)


class ZeroShot(Task):
    id = "zeroshot"
    title = "Zero-shot patch classification"

    def supports(self, dataset):
        if getattr(dataset, "level", "patch") != "patch":
            return f"{dataset.id} is slide-level; zeroshot scores patches"
        return super().supports(dataset)

    def score(self, ctx: CellContext):
        classifier = zero_shot_classifier(ctx.encode_texts, ctx.prompts.prompts(ctx.prompt_mode, ctx.class_names))
        rows = ctx.evaluated(getattr(ctx.dataset, "eval_split", None))
        if not rows.any():
            raise PathboardError(f"{ctx.dataset.id}: no labelled, readable items to score")
        y_pred = predict(ctx.image_embeddings, classifier)
        ctx.predictions[""] = (ctx.labels[rows], y_pred[rows])
        return classification_metrics(ctx.labels[rows], y_pred[rows], ctx.class_names, ctx.ordinal)


@hookimpl
def register_tasks(register):
    register(ZeroShot())
