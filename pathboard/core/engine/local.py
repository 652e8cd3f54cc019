"""The local executor: every model x dataset pair in this process, one model at a time (each is loaded
once, and only if something is not cached), each pair's cells scored and stored as they finish."""
from __future__ import annotations

import os
import time
from pathlib import Path

from pathboard.core.engine.plan import Plan, RunConfig
from pathboard.core.engine.steps import (
    Summary,
    embed_dataset,
    make_embedder,
    pair_failed,
    pairs,
    score_cells,
    store_cell,
    store_cost,
)
from pathboard.core.store import Store


def run(p: Plan, cfg: RunConfig, runtime, cache, store: Store, summary: Summary, artifacts: Path,
        embedders: list) -> None:
    """Embed, score and store every pair of the plan here; a pair that fails is one error line."""
    by_model: dict = {}
    for model_id, dataset_id, cells in pairs(p):
        if model_id not in by_model:
            made = len(by_model)
            make_embedder(cells[0].model, p, runtime, cache, cfg.batch_size, cfg.workers, by_model)
            embedders += list(by_model.values())[made:]
        try:
            _run_dataset(cells, by_model[model_id], p, store, summary, artifacts, cfg.batch_size)
        except Exception as exc:  # one broken model or dataset must not lose the other cells
            if os.environ.get("PATHBOARD_DEBUG"):
                raise
            pair_failed(summary, model_id, dataset_id, exc)


def _run_dataset(cells, embedder, p: Plan, store: Store, summary: Summary, artifacts: Path, batch_size: int = 0):
    """Embed what this dataset's cells read (each thing once), then score and store every cell, and what
    embedding it cost."""
    from pathboard.core.engine.cost import PeakMemory

    dataset = cells[0].dataset
    started = time.perf_counter()
    counted = (embedder.images_embedded, embedder.tiles_embedded, embedder.embed_seconds)
    with PeakMemory(embedder.runtime.device) as peak:
        embedded = embed_dataset(cells, embedder, p)
    if embedded.failed:
        summary.failed_files.setdefault(dataset.id, {}).update(embedded.failed)
    spent = [now - before for now, before in
             zip((embedder.images_embedded, embedder.tiles_embedded, embedder.embed_seconds), counted)]
    for out in score_cells(cells, embedder, p, embedded, artifacts):
        store_cell(store, summary, dataset.id, out)  # one short transaction per scored cell
    summary.costs.append(store_cost(store, summary.run_id, embedder, dataset.id, spent,
                                    time.perf_counter() - started, peak, batch_size))
