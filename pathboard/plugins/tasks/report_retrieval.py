"""Zero-shot slide <-> pathology-report retrieval (the PathAlign use case; Ahmed et al., 2024).

A slide is embedded as the mean of its tissue tiles' image embeddings, L2-normalised; a slide model's
slide is its slide encoder's embedding. A report is
embedded as the normalised mean of its chunks' text embeddings: the report's words are split, in
order and without overlap, into chunks of at most ``words_per_chunk(text_context)`` =
``max(1, floor(0.6 * text_context))`` words, where ``text_context`` is the number of tokens the
model's text tower reads (CLIP BPE: 77 -> 46 words; PubMedBERT towers: 256 -> 153 words). The rule
is conservative: English prose takes about 1.3 BPE tokens per word, so 0.6 * context words plus the
start/end tokens fit (46 * 1.3 + 2 = 62 <= 77). Reports dense in numbers and abbreviations may
still overflow a chunk; the model then truncates that chunk, as it would any long text.

Reports come from ``dataset.reports(manifest)`` (item path -> report text). Slides whose report
text is identical (the slides of one case share its report) share one gallery report. Only slides
with a report take part. Slide -> report: each tiled slide queries every distinct report of the
dataset's slides, and its correct item is its case's report. Report -> slide: each report with at
least one tiled slide queries the tiled slides, and is a hit when any of its case's slides is in the
top K. A report whose slides all failed to tile stays in the gallery as a distractor. Recall@1/5/10
both ways and their mean, with tied items in a random order (in expectation) and 95% bootstrap CIs, are computed
exactly as in image-caption retrieval (``retrieval_metrics``) (``i2t``: slide -> report, ``t2i``: report ->
slide); the intervals resample cases (the slides' Record meta "group"), not slides, where slides have them.

Options: ``mpp`` (or ``magnification``, which wins) and ``tile_size`` choose the tiling, shared with
``zeroshot-wsi`` (and its tile cache). Exactly the slides with a report are tiled (their paths are the
cell's ``Inputs.tile_items``), labelled or not; the task applies wherever a dataset has reports (the
TCGA slide sets, once the TCGA-Reports CSV is under the data root).
"""
from __future__ import annotations

import math

import numpy as np

from pathboard.api import (
    CellContext,
    Inputs,
    PathboardError,
    SlideTask,
    TaskResult,
    bootstrap_label,
    hit_rates,
    hookimpl,
    item_groups,
    normalised,
    retrieval_metrics,
)

#: words per chunk as a fraction of the text context in tokens (~1.3 BPE tokens per word + start/end)
WORDS_PER_TOKEN = 0.6
REPORTS_FILE = ("TCGA-Reports", "TCGA_Reports.csv")


def words_per_chunk(text_context: int) -> int:
    """The most words a chunk holds for a text tower reading ``text_context`` tokens."""
    return max(1, math.floor(WORDS_PER_TOKEN * text_context))


def chunk_report(text: str, text_context: int) -> list[str]:
    """The report's words in consecutive chunks of at most ``words_per_chunk(text_context)`` words
    (none for a report without words)."""
    words, n = text.split(), words_per_chunk(text_context)
    return [" ".join(words[i : i + n]) for i in range(0, len(words), n)]


def embed_reports(encode, reports: list[str], text_context: int) -> np.ndarray:
    """[R, D] report embeddings: the normalised mean of each report's normalised chunk embeddings
    (all chunks go to ``encode`` in one call). Every report must have at least one word."""
    chunks = [chunk_report(r, text_context) for r in reports]
    if any(not c for c in chunks):
        raise ValueError("a report has no words")
    emb = normalised(np.asarray(encode([c for cs in chunks for c in cs]), dtype=np.float32))
    bounds = np.cumsum([0] + [len(c) for c in chunks])
    return normalised(np.stack([emb[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])]))


def slide_reports(dataset, manifest) -> dict[str, str]:
    """Item path -> report text, for the manifest's slides whose report has words."""
    reports = dataset.reports(manifest) or {}
    return {p: reports[p].strip() for p in manifest.paths if p in reports and str(reports[p] or "").strip()}


class ReportRetrieval(SlideTask):
    id = "report-retrieval"
    title = "Zero-shot slide-report retrieval"
    uses_prompts = False
    requires = frozenset({"image", "text"})
    needs = frozenset({"slides", "reports"})
    slide_level = True

    def check(self, dataset, manifest) -> str | None:
        n = len(set(slide_reports(dataset, manifest).values()))
        if n >= 2:
            return None
        expected = manifest.root.parent.joinpath(*REPORTS_FILE)
        return (f"{dataset.id}: {n} pathology report(s) for its slides, {self.id} needs 2: expected {expected} "
                "(the TCGA-Reports release, Kefeli et al. 2024)")

    def inputs(self, dataset, manifest) -> Inputs:
        return Inputs(tiles=self.tiling, tile_items=tuple(slide_reports(dataset, manifest)), texts=True)

    def score(self, ctx: CellContext) -> TaskResult:
        by_path = slide_reports(ctx.dataset, ctx.manifest)
        reports = list(dict.fromkeys(by_path.values()))  # distinct reports, manifest order
        index = {r: i for i, r in enumerate(reports)}
        slides, slide_pos, paths, failed = [], [], [], {}
        for path, _ in ctx.tiles.items():
            if path not in by_path:
                continue
            tiles = np.asarray(ctx.tiles[path].embeddings, dtype=np.float32)
            if not len(tiles):
                failed[path] = "no tiles to embed"
                continue
            slides.append(tiles.mean(axis=0) if ctx.slides_text is None else ctx.slides_text[path])
            slide_pos.append([index[by_path[path]]])
            paths.append(path)
        if not slides or len(reports) < 2:
            raise PathboardError(f"{ctx.dataset.id}: {len(slides)} tiled slide(s) with a report and "
                                 f"{len(reports)} distinct report(s); {self.id} needs 1 and 2")
        slide_emb = normalised(np.stack(slides))
        report_emb = embed_reports(ctx.encode_texts, reports, ctx.text_context)
        report_pos: list[list[int]] = [[] for _ in reports]
        for row, (r,) in enumerate(slide_pos):
            report_pos[r].append(row)
        queried = [r for r, pos in enumerate(report_pos) if pos]
        i2t = hit_rates(slide_emb, report_emb, slide_pos)
        t2i = hit_rates(report_emb[queried], slide_emb, [report_pos[r] for r in queried])
        cases = item_groups(ctx.manifest, paths)  # a case's slides (and its report) are resampled together
        metrics = retrieval_metrics(i2t, t2i, i2t_groups=cases,
                                    t2i_groups=None if cases is None else cases[[report_pos[r][0] for r in queried]])
        return TaskResult({"": metrics}, failed=failed, protocol={"bootstrap": bootstrap_label(cases)})


@hookimpl
def register_tasks(register):
    register(ReportRetrieval())
