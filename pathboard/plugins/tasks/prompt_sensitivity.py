"""Prompt sensitivity: how much a zero-shot number depends on the wording of the prompts.

Zero-shot accuracy is re-scored under many prompt draws, on the cached image (or tile) embeddings,
so the analysis embeds texts only: no image forward on a cached dataset. The draws are the same for
every model (they depend on the prompt set and the seed only), so models are ranked draw by draw
(the run stores how stable that ranking is, in ``prompt_rankings``).

- ``template=I``: every class's canonical name in template I alone (one prompt per class);
- ``synonym=CLASS:NAME``: one class named by one of its other synonyms, in the single template, the
  other classes by their canonical names (one word changed against single mode);
- ``subset=N/draw=R``: per class, N prompts drawn without replacement from its synonyms x templates
  (seeded by N, R and the ``seed`` option), averaged as in ensemble mode.

Each draw is stored as its own variant (point metrics); the summary variants (``templates``,
``synonyms``, ``subset=N`` and ``""`` over every draw) hold the median, with the 25th/75th percentiles in
q1/q3, and ``METRIC/min``, ``METRIC/max`` and ``METRIC/iqr`` (q3 - q1) over the draws. Patch datasets
are scored by cosine argmax as in ``zeroshot``; slide datasets by MI-Zero top-K pooling at the headline K
of ``zeroshot-wsi``, on the same tiling (and so the same cached tiles); slide models (TITAN, PRISM) by their
slide embedding against each draw's classifier, as ``zeroshot-wsi`` scores them.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np

from pathboard.api import (
    PLACEHOLDER,
    TOPK_HEADLINE,
    CellContext,
    Inputs,
    Metric,
    Option,
    PathboardError,
    SlideTask,
    TaskResult,
    confusion_matrices,
    hookimpl,
    normalised,
    prompt_family,
    scores_from_confusion,
    topk_pool,
)

METRICS = ("balanced_accuracy", "accuracy", "weighted_f1", "cohen_kappa")
SIZES = (1, 2, 4, 8, 16)
#: similarities held at once while scoring every draw (rows x draws x classes)
CHUNK_VALUES = 16_000_000


def draws(prompts, classes: list[str], sizes=SIZES, repeats: int = 10, seed: int = 0) -> dict[str, dict]:
    """Draw name -> {class: [prompt, ...]}: every template alone, every other synonym alone, and
    ``repeats`` seeded random subsets of each size (a size no class can fill more than once is drawn once)."""
    canonical = {c: prompts.canonical.get(c, prompts.classes[c][0]) for c in classes}
    single = prompts.single_template or prompts.templates[0]
    out = {}
    for i, template in enumerate(prompts.templates):
        out[f"template={i}"] = {c: [template.replace(PLACEHOLDER, canonical[c])] for c in classes}
    for c in classes:
        for synonym in prompts.classes[c]:
            if synonym != canonical[c]:
                out[f"synonym={c}:{synonym}"] = {k: [single.replace(PLACEHOLDER, synonym if k == c else canonical[k])]
                                                 for k in classes}
    pools = {c: [t.replace(PLACEHOLDER, s) for s in prompts.classes[c] for t in prompts.templates] for c in classes}
    for n in sizes:
        for r in range(repeats if any(len(p) > n for p in pools.values()) else 1):
            rng = np.random.default_rng([seed, n, r])
            picks = {c: sorted(rng.choice(len(pools[c]), min(n, len(pools[c])), replace=False)) for c in classes}
            out[f"subset={n}/draw={r}"] = {c: [pools[c][j] for j in picks[c]] for c in classes}
    return out


def spread(name: str, values, n: int) -> list[Metric]:
    """Median with q1/q3, and min, max and IQR of one metric over draws (CI columns empty)."""
    values = np.asarray(values, dtype=np.float64)
    q1, median, q3 = np.nanpercentile(values, [25, 50, 75])
    nan = float("nan")
    return [Metric(name, float(median), nan, nan, n, float(q1), float(q3)),
            Metric(f"{name}/min", float(np.nanmin(values)), nan, nan, n),
            Metric(f"{name}/max", float(np.nanmax(values)), nan, nan, n),
            Metric(f"{name}/iqr", float(q3 - q1), nan, nan, n)]


class PromptSensitivity(SlideTask):
    id = "prompt-sensitivity"
    title = "Zero-shot prompt sensitivity"
    uses_prompts = False  # it draws its own prompts from the dataset's prompt set
    follows = ("zeroshot", "zeroshot-wsi")
    slide_level = True  # on slide datasets: slide models re-score their slide embeddings, with 0 forwards
    needs = frozenset({"labels"})
    options = (
        Option("draws", int, 10, "random prompt subsets per size", min=1, max=1000),
        Option("sizes", int, SIZES, "prompts per class in the random subsets", multiple=True, min=1, max=1024),
        Option("seed", int, 0, "seed of the random subsets (the same for every model)"),
        *SlideTask.options,
    )

    def check(self, dataset, manifest) -> str | None:
        if not {"patches", "slides"} & set(dataset.facts):
            return f"{self.id} on {dataset.id}: it has neither labelled patches nor slides to classify"
        return None

    def inputs(self, dataset, manifest) -> Inputs:
        if "patches" in dataset.facts:
            return Inputs(images={dataset.id: ""}, texts=True)
        return Inputs(tiles=self.tiling, texts=True)

    def score(self, ctx: CellContext) -> TaskResult:
        if ctx.prompts is None:
            raise PathboardError(f"{ctx.dataset.id}: no prompt set to draw prompts from")
        classes = ctx.class_names
        v = self.values
        chosen = draws(ctx.prompts, classes, v["sizes"], v["draws"], v["seed"])
        texts = list(dict.fromkeys(t for d in chosen.values() for ts in d.values() for t in ts))
        embedded = dict(zip(texts, ctx.encode_texts(texts)))  # one cached text batch for every draw
        names = list(chosen)
        classifiers = np.stack([normalised(np.stack([np.mean([embedded[t] for t in chosen[d][c]], axis=0)
                                                     for c in classes])) for d in names])  # [R, C, D]
        y_true, predicted = self._predict(ctx, classifiers)  # [n], [R, n]
        k, present = len(classes), np.unique(y_true)
        everything = np.arange(len(y_true))[None]
        per_draw = {}
        for name, y_pred in zip(names, predicted):
            scores = scores_from_confusion(confusion_matrices(y_true, y_pred, k, everything), present, ctx.ordinal)
            per_draw[name] = {m: float(scores[m][0]) for m in METRICS}
        n = len(y_true)
        nan = float("nan")
        out = {name: [Metric(m, value, nan, nan, n) for m, value in values.items()]
               for name, values in per_draw.items()}
        families = {"": list(per_draw)}
        for name in per_draw:
            families.setdefault(prompt_family(name), []).append(name)
        for summary, members in families.items():
            out[summary] = [x for m in METRICS for x in spread(m, [per_draw[d][m] for d in members], n)]
            out[summary].append(Metric("draws", float(len(members)), nan, nan, n))
        digest = hashlib.sha256(json.dumps(chosen, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        protocol = {"draws_hash": digest, "templates": list(ctx.prompts.templates),
                    "scoring": "cosine argmax" if ctx.images is not None else
                    "slide encoder" if ctx.slides_text is not None else f"MI-Zero top-{TOPK_HEADLINE}"}
        return TaskResult(out, protocol=protocol)

    def _predict(self, ctx: CellContext, classifiers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(truth of the scored items [n], every draw's predictions [R, n]), in one streamed pass over the
        (memory-mapped) embeddings; ``classifiers`` is [R, C, D]."""
        r, c, d = classifiers.shape
        flat = classifiers.reshape(r * c, d).T
        if ctx.images is not None:
            rows = np.flatnonzero(ctx.evaluated_rows())
            if not len(rows):
                raise PathboardError(f"{ctx.dataset.id}: no labelled, readable items to score")
            step = max(1, CHUNK_VALUES // (r * c))
            predicted = np.concatenate([(np.asarray(ctx.image_embeddings[rows[i:i + step]]) @ flat)
                                        .reshape(-1, r, c).argmax(axis=2) for i in range(0, len(rows), step)])
            return ctx.labels[rows], predicted.T
        slides = ctx.tiles.labelled()
        if not slides:
            raise PathboardError(f"{ctx.dataset.id}: no slide could be scored")
        if ctx.slides_text is not None:  # a slide model: its slide embedding against every draw's classifier
            text = ctx.slides_text
            predicted = np.stack([(text[path] @ flat).reshape(r, c).argmax(axis=1) for path, _ in slides])
            return np.asarray([label for _, label in slides], dtype=np.int64), predicted.T
        predicted = np.stack([topk_pool(ctx.tiles[path].embeddings @ flat, TOPK_HEADLINE).reshape(r, c).argmax(axis=1)
                              for path, _ in slides])
        return np.asarray([label for _, label in slides], dtype=np.int64), predicted.T


@hookimpl
def register_tasks(register):
    register(PromptSensitivity())
