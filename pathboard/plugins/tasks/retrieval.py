"""Zero-shot cross-modal retrieval, as in CONCH (Lu et al., Nature Medicine 2024).

Images and captions are embedded (L2-normalised) and ranked by cosine similarity, with CLIP_benchmark's
convention for the headline (``caption_pairs``): every (image, caption) pair is a text, image->text
queries every pair's text and hits on its own captions, text->image queries the readable images with
each pair's text and hits on its own image only. The ``captions=distinct`` variant keeps pathboard's
earlier convention (``pairs_index``): each distinct caption once, correct for every image that has it
(higher where captions are shared). Recall@1/5/10 both ways and their mean, tied items taken in a random
order in expectation (``hit_rates``: two images' identical captions tie exactly), with 95% bootstrap CIs
over the queries, or over their groups (Record meta "group": the figures of one article, the patches of
one case) where images have them (``retrieval_metrics``).
"""
from __future__ import annotations

import numpy as np

from pathboard.api import (
    CellContext,
    Inputs,
    PathboardError,
    Task,
    TaskResult,
    bootstrap_label,
    caption_pairs,
    hit_rates,
    hookimpl,
    item_groups,
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
        rows = np.flatnonzero(valid)
        groups = item_groups(ctx.manifest, rows)  # per readable image, or None
        texts, img_pos, txt_pos = pairs_index(captions, valid)
        text_emb = ctx.encode_texts(texts)  # each distinct caption once; the pairs reuse its embedding
        at = {t: i for i, t in enumerate(texts)}
        image_emb = normalised(ctx.image_embeddings[rows])

        pair_texts, image_of, own = caption_pairs(captions, valid)  # CLIP_benchmark's convention
        pair_emb = text_emb[[at[t] for t in pair_texts]]
        queried = [t for t, image in enumerate(image_of) if image >= 0]
        i2t = hit_rates(image_emb, pair_emb, own)
        t2i = hit_rates(pair_emb[queried], image_emb, [[image_of[t]] for t in queried])
        headline = retrieval_metrics(i2t, t2i, i2t_groups=groups,
                                     t2i_groups=None if groups is None else groups[[image_of[t] for t in queried]])

        shared = [t for t, pos in enumerate(txt_pos) if pos]  # distinct captions of readable images
        i2t = hit_rates(image_emb, text_emb, img_pos)
        t2i = hit_rates(text_emb[shared], image_emb, [txt_pos[t] for t in shared])
        distinct = retrieval_metrics(i2t, t2i, i2t_groups=groups,
                                     t2i_groups=None if groups is None else groups[[txt_pos[t][0] for t in shared]])
        protocol = {"captions": "CLIP_benchmark pairs (headline); distinct captions (variant captions=distinct)",
                    "bootstrap": bootstrap_label(groups)}
        return TaskResult({"": headline, "captions=distinct": distinct}, protocol=protocol)


@hookimpl
def register_tasks(register):
    register(Retrieval())
