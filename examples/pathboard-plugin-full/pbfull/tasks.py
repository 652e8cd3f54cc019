"""A task with an option: zero-shot top-k accuracy (is the true class among the k most similar?)."""
from __future__ import annotations

import numpy as np

from pathboard.api import (
    Metric,
    Option,
    PathboardError,
    Task,
    TaskResult,
    bootstrap_indices,
    hookimpl,
    percentile_ci,
    similarities,
    zero_shot_classifier,
)


class TopKZeroShot(Task):
    id = "topk-zeroshot"
    title = "Zero-shot top-k accuracy"
    needs = frozenset({"patches", "labels"})
    options = (Option("k", int, 2, "how many of the most similar classes count as a hit", min=1),)
    default = False  # opt-in: `--tasks topk-zeroshot`

    def score(self, ctx) -> TaskResult:
        k = ctx.options["k"]
        classifier = zero_shot_classifier(ctx.encode_texts, ctx.prompts.prompts(ctx.prompt_mode, ctx.class_names))
        rows = ctx.evaluated_rows()
        if not rows.any():
            raise PathboardError(f"{ctx.dataset.id}: nothing to score")
        sims = similarities(ctx.image_embeddings, classifier)[rows]
        truth = sims[np.arange(len(sims)), ctx.labels[rows]]
        hits = ((sims > truth[:, None]).sum(axis=1) < k).astype(np.float64)  # rank of the true class < k
        boot = np.concatenate([hits[idx].mean(axis=1) for idx in bootstrap_indices(len(hits))])
        return TaskResult({"": [Metric(f"top{k}_accuracy", float(hits.mean()), *percentile_ci(boot), len(hits))]})


@hookimpl
def register_tasks(register):
    register(TopKZeroShot())
