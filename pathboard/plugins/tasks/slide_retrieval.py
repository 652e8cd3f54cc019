"""Slide retrieval (TITAN, Ding et al. 2024): query slides retrieve slides of the same diagnosis.

Every model is scored on one embedding per slide: a slide model's own (TITAN, PRISM: pooling ``slide-encoder``),
a patch model's mean of its tiles' embeddings, L2-normalised (pooling ``mean``, as few-shot WSI pools them).
Queries are the evaluated slides (labelled, in the evaluation split); the gallery is the dataset's official
training slides where it has a split (TITAN's TCGA-OT protocol: test queries, train gallery), otherwise every
other evaluated slide. A query's own patient's slides are never retrieved. ``acc@K`` and ``mvacc@K`` for K = 1,
3, 5 (:mod:`pathboard.core.science.slide_retrieval`), all six in the headline variant; the intervals resample
patients where slides carry them.

Options: the slide tasks' tiling, shared with the other slide tasks' tile cache.
"""
from __future__ import annotations

import numpy as np

from pathboard.api import (
    CellContext,
    Inputs,
    PathboardError,
    SlideTask,
    TaskResult,
    bootstrap_label,
    evaluated_items,
    hookimpl,
    item_groups,
    official_split,
    slide_retrieval_metrics,
)


class SlideRetrieval(SlideTask):
    id = "slide-retrieval"
    title = "Slide retrieval (Acc@K, MVAcc@K)"
    uses_prompts = False
    requires = frozenset({"image"})
    slide_level = True

    def inputs(self, dataset, manifest) -> Inputs:
        return Inputs(tiles=self.tiling, tile_items="labelled")

    def check(self, dataset, manifest) -> str | None:
        if int((evaluated_items(dataset, manifest)).sum()) < 2:
            return f"{self.id} needs at least two labelled slides to evaluate"
        return None

    def score(self, ctx: CellContext) -> TaskResult:
        paths = ctx.manifest.paths
        tiled = {path for path, _ in ctx.tiles.labelled()}
        have = np.array([p in tiled for p in paths], dtype=bool)
        official = official_split(ctx.dataset, ctx.manifest)
        if official is not None:
            train, evaluated, _ = official
            queries, gallery, source = np.flatnonzero(evaluated & have), np.flatnonzero(train & have), "official-split"
        else:
            queries = gallery = np.flatnonzero(evaluated_items(ctx.dataset, ctx.manifest) & have)
            source = "leave-one-patient-out"
        if not len(queries) or len(gallery) < 2:
            raise PathboardError(f"{ctx.dataset.id}: {len(queries)} query and {len(gallery)} gallery slide(s) with "
                                 f"tiles; {self.id} needs 1 and 2")
        groups = item_groups(ctx.manifest)
        patient = np.asarray(groups if groups is not None else paths, dtype=object)
        exclude = patient[queries][:, None] == patient[gallery][None, :]
        labels = np.asarray(ctx.labels)
        by_patient = item_groups(ctx.manifest, queries)
        metrics = slide_retrieval_metrics(ctx.slide_matrix([paths[i] for i in queries]), labels[queries],
                                          ctx.slide_matrix([paths[i] for i in gallery]), labels[gallery],
                                          exclude, groups=by_patient)
        return TaskResult({"": metrics}, protocol={"bootstrap": bootstrap_label(by_patient), "gallery": source})


@hookimpl
def register_tasks(register):
    register(SlideRetrieval())
