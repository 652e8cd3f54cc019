"""Zero-shot cross-modal retrieval, as in CONCH (Lu et al., Nature Medicine 2024).

Images and captions are embedded (L2-normalised) and ranked by cosine similarity. Image->text: each
image queries all of the dataset's distinct captions; text->image: each distinct caption queries all
readable images. Recall@1/5/10 both ways and their mean, with ties counted against the query and 95%
bootstrap CIs over queries (``retrieval_metrics``).
"""
from __future__ import annotations

import numpy as np

from pathboard.api import (
    CellContext,
    Inputs,
    PathboardError,
    Task,
    TaskResult,
    first_hit_ranks,
    hookimpl,
    normalised,
    pairs_index,
    retrieval_metrics,
)


class Retrieval(Task):
    id = "retrieval"
    title = "Zero-shot cross-modal retrieval"
    uses_prompts = False
    requires = frozenset({"image", "text"})
    needs = frozenset({"captions"})

    def inputs(self, dataset, manifest) -> Inputs:
        return Inputs(images={dataset.id: ""}, texts=True)

    def score(self, ctx: CellContext) -> TaskResult:
        captions = ctx.dataset.captions(ctx.manifest)
        valid = ctx.valid & np.array([len(c) > 0 for c in captions], dtype=bool)
        if not valid.any():
            raise PathboardError(f"{ctx.dataset.id}: no readable image with a caption to score")
        texts, img_pos, txt_pos = pairs_index(captions, valid)
        text_emb = ctx.encode_texts(texts)
        image_emb = normalised(ctx.image_embeddings[np.flatnonzero(valid)])
        queried = [t for t, pos in enumerate(txt_pos) if pos]  # captions of readable images only
        i2t = first_hit_ranks(image_emb, text_emb, img_pos)
        t2i = first_hit_ranks(text_emb[queried], image_emb, [txt_pos[t] for t in queried])
        return TaskResult({"": retrieval_metrics(i2t, t2i)})


@hookimpl
def register_tasks(register):
    register(Retrieval())
