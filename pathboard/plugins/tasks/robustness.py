"""Zero-shot robustness: the same zero-shot classifier on images under seeded perturbations.

Each perturbation of ``PERTURBATIONS`` (JPEG compression, blur, HED stain jitter,
brightness and contrast, rotation and flip, downscaling) is applied in the DataLoader workers and its
embeddings are cached under their own key, so a second run costs nothing. Per perturbation
(variant ``perturbation=NAME``) the task reports every zero-shot metric on the perturbed images, its
drop from the clean images (``METRIC_drop``, clean minus perturbed, with a paired bootstrap CI on the
same resamples), the prediction flip rate (the share of items whose predicted class changed) and the
mean cosine between each item's clean and perturbed embedding. The headline variant holds the clean
balanced accuracy and the mean and worst drop, flip rate and cosine over the perturbations.

It costs one extra image forward per item and perturbation, so it is off the default set:
``pathboard run --tasks robustness [--option perturbations=jpeg-30,blur-2]``.
"""
from __future__ import annotations

import numpy as np

from pathboard.api import (
    DEFAULT_PERTURBATIONS,
    PERTURBATIONS,
    CellContext,
    Inputs,
    Metric,
    Option,
    PathboardError,
    Predictions,
    Task,
    TaskResult,
    bootstrap_label,
    classification_metrics,
    evaluated_items,
    hookimpl,
    item_groups,
    mean_metric,
    paired_bootstrap,
    predict,
    zero_shot_classifier,
)

DROPS = ("balanced_accuracy", "accuracy", "weighted_f1", "quadratic_kappa")


class Robustness(Task):
    id = "robustness"
    title = "Zero-shot robustness to image perturbations"
    follows = ("zeroshot",)
    needs = frozenset({"patches", "labels"})
    default = False  # one extra image forward per item and perturbation
    options = (
        Option("perturbations", str, DEFAULT_PERTURBATIONS, "perturbations to score", choices=tuple(PERTURBATIONS),
               multiple=True),
        Option("seed", int, 0, "seed of the per-image random perturbations (HED, brightness, contrast)"),
    )

    def inputs(self, dataset, manifest) -> Inputs:
        return Inputs(images={dataset.id: ""}, texts=True, perturbations=tuple(self.values["perturbations"]),
                      perturbation_seed=self.values["seed"])

    def score(self, ctx: CellContext) -> TaskResult:
        classifier = zero_shot_classifier(ctx.encode_texts, ctx.prompts.prompts(ctx.prompt_mode, ctx.class_names))
        evaluated = ctx.evaluated_rows()
        if not evaluated.any():
            raise PathboardError(f"{ctx.dataset.id}: no labelled, readable items to score")
        clean = predict(ctx.image_embeddings, classifier)
        evaluated_rows = np.flatnonzero(evaluated)
        clean_evaluated = np.asarray(ctx.image_embeddings[evaluated_rows])  # read once, not per perturbation
        planned = item_groups(ctx.manifest, evaluated_items(ctx.dataset, ctx.manifest))
        k, out, predictions, notes = len(ctx.class_names), {}, {}, []
        for name, shaken in ctx.perturbed.items():
            rows = evaluated & shaken.valid
            if (evaluated & ~shaken.valid).any():
                notes.append(f"{ctx.dataset.id}: {int((evaluated & ~shaken.valid).sum())} item(s) could not be "
                             f"embedded under {name} and are left out of its rows")
            index = np.flatnonzero(rows)
            y_true, before = ctx.labels[index], clean[index]
            after = predict(shaken.embeddings, classifier)[index]
            groups = item_groups(ctx.manifest, index)
            cosine = np.einsum("nd,nd->n", clean_evaluated[shaken.valid[evaluated_rows]],
                               np.asarray(shaken.embeddings[index]))  # both L2-normalised
            differences = paired_bootstrap(y_true, before, after, k, ctx.ordinal, groups=groups)
            out[f"perturbation={name}"] = [
                *classification_metrics(y_true, after, ctx.class_names, ctx.ordinal, groups=groups),
                *(Metric(f"{m}_drop", d.diff, d.ci_low, d.ci_high, len(index))
                  for m, d in differences.items() if m in DROPS),
                mean_metric("flip_rate", before != after, groups=groups),
                mean_metric("cosine", cosine, groups=groups)]
            predictions[f"perturbation={name}"] = Predictions([ctx.manifest.paths[i] for i in index], y_true, after,
                                                              groups)
        if not out:
            raise PathboardError(f"{ctx.dataset.id}: no perturbation chosen")
        out[""] = self._headline(ctx, clean, evaluated, out)
        protocol = {"bootstrap": bootstrap_label(planned), "perturbations": {
            name: {**PERTURBATIONS[name].key(), "title": PERTURBATIONS[name].title} for name in ctx.perturbed}}
        return TaskResult(out, predictions=predictions, notes=notes, protocol=protocol)

    @staticmethod
    def _headline(ctx, clean, evaluated, out) -> list[Metric]:
        """Clean balanced accuracy, and the mean and worst of each robustness figure over the perturbations."""
        index = np.flatnonzero(evaluated)
        point = classification_metrics(ctx.labels[index], clean[index], ctx.class_names, ctx.ordinal, n_boot=0)
        nan = float("nan")
        headline = [next(m for m in point if m.name == "balanced_accuracy")]
        figures = {name: [next(m.value for m in metrics if m.name == name) for metrics in out.values()]
                   for name in ("balanced_accuracy_drop", "flip_rate", "cosine")}
        for name, values in figures.items():
            worst = max(values) if name != "cosine" else min(values)
            headline += [Metric(name, float(np.mean(values)), nan, nan, len(index)),
                         Metric(f"{name}/worst", float(worst), nan, nan, len(index))]
        return headline


@hookimpl
def register_tasks(register):
    register(Robustness())
