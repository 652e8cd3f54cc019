"""Run a plan: record the run, hand the pairs to an executor (this process, or a Ray cluster), then compare
the models and rank them on what was stored. This process alone writes the database.

Data flows one way: the plan names the work, the :class:`~pathboard.core.embedding.embedder.Embedder`
computes or finds every embedding, each task scores a read-only context and returns a
:class:`~pathboard.core.interfaces.task.TaskResult`, and the run stores it.
"""
from __future__ import annotations

import dataclasses
import importlib.metadata
import platform
import sys
from pathlib import Path

import pathboard
from pathboard.core import timing
from pathboard.core.engine import distributed, local, uptodate
from pathboard.core.engine.plan import Plan, RunConfig
from pathboard.core.engine.steps import Summary
from pathboard.core.engine.uptodate import cell_key
from pathboard.core.errors import PathboardError
from pathboard.core.interfaces.slide_model import describe_tiling
from pathboard.core.paths import cache_root
from pathboard.core.store import Store, queries

PACKAGES = ["torch", "torchvision", "open_clip_torch", "transformers", "numpy", "scikit-learn", "pillow", "duckdb"]


def _versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def catalog(p: Plan) -> dict:
    """What the leaderboard shows about the run's models, datasets and tasks, stored with the run so
    that it never imports the plugins."""
    models = {c.model.id: {"title": c.model.card.title, **dataclasses.asdict(c.model.card)} for c in p.cells}
    for id, encoder in p.patch_encoders.items():  # a slide model: which patch encoder it reads, at what tiling
        if id in models:
            tiling = next(c.model.tiling for c in p.cells if c.model.id == id)
            models[id].update(kind="slide encoder", patch_encoder=encoder.id, tiling=describe_tiling(tiling))
    datasets = {d.id: {"title": d.title, "groups": sorted(d.groups), "level": d.level, "ordinal": bool(d.ordinal),
                       "expected_files": getattr(d, "expected_files", None)}  # the full set: a sample is marked
                for d in p.datasets.values()}
    tasks = {c.task.id: {"title": c.task.title} for c in p.cells}
    protocols = {p.pack.id: p.pack.card()} if p.pack else {}
    return {"models": models, "datasets": datasets, "tasks": tasks, "protocols": protocols}


def execute(p: Plan, cfg: RunConfig, command: str = "") -> Summary:
    """Run the plan here (``cfg.executor == "local"``) or on a Ray cluster (``"ray"``: see
    :mod:`pathboard.core.engine.distributed`); either way this process alone writes the database."""
    from pathboard.core.embedding.cache import EmbeddingCache
    from pathboard.core.interfaces.model import Runtime

    on_ray = cfg.executor == "ray"
    if cfg.executor not in ("local", "ray"):
        raise PathboardError(f"unknown executor {cfg.executor!r}; choose local or ray")
    store = Store(cfg.db)
    for cell in p.cells:
        cell.key = cell_key(cell, p, cfg.precision)
    todo, fresh = (p.cells, []) if cfg.rescore else uptodate.split(p, queries.current_cell_keys(store))
    if not todo and not p.blocked and not p.broken:  # nothing to embed or score: no model, no cluster
        return _nothing_new(p, cfg, store, command, len(fresh))
    run_catalog = catalog(p)  # of every cell asked for, up to date or not
    p = dataclasses.replace(p, cells=todo)
    if on_ray:
        runtime = distributed.connect(cfg)  # the device the workers embed on, checked there
    else:
        from pathboard.core.interfaces.model import size_threads

        runtime = Runtime.create(cfg.device, cfg.precision)
        size_threads(cfg.threads)
    cache = EmbeddingCache(Path(cfg.cache_dir) if cfg.cache_dir else cache_root())
    run_id = _start_run(store, p, cfg, command, runtime.device, runtime.precision, run_catalog)
    summary = Summary(run_id, skipped=list(p.skipped), up_to_date=len(fresh))
    for model_id, dataset_id, reason in p.blocked:
        summary.failed_pairs += 1
        summary.errors.append(f"{model_id} x {dataset_id}: {reason}")
        print(f"error: {summary.errors[-1]}", file=sys.stderr)
    for task_id, cell, line in p.broken:
        summary.failed_cells.setdefault(task_id, []).append(cell)
        if line not in summary.errors:
            summary.errors.append(line)
            print(f"error: {line}", file=sys.stderr)
    artifacts = Path(cfg.db).resolve().parent / "pathboard-artifacts" / run_id
    status = "failed"
    settled = True
    embedders = []
    try:
        if on_ray:
            distributed.run(p, cfg, runtime, cache, store, summary, artifacts)
        else:
            local.run(p, cfg, runtime, cache, store, summary, artifacts, embedders)
        status = "finished" if not summary.errors else "finished with errors"
        settled = store.flush()  # cells journalled while a reader held the file go in before the comparisons
        compare_and_rank(store)
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        summary.image_forwards += sum(e.image_forwards for e in embedders)
        store.finish_run(run_id, status, summary.image_forwards, summary.skipped + summary.errors,
                         summary.failed_files)
        if status != "interrupted" and settled:  # the run record itself (a reader that outlasted the wait: not again)
            store.flush()
        summary.stored, summary.pending, summary.waited_s = store.committed, store.journalled, store.waited_s
        summary.seconds = timing.take()
    return summary


def _start_run(store: Store, p: Plan, cfg: RunConfig, command: str, device: str, precision: str,
               run_catalog: dict) -> str:
    """Record the run and its provenance; its id."""
    return store.start_run(command=command, pathboard_version=pathboard.__version__, packages=_versions(),
                           host=platform.node(), device=device, precision=precision, batch_size=cfg.batch_size,
                           data_root=str(p.root) if p.root else None, catalog=run_catalog)


def _nothing_new(p: Plan, cfg: RunConfig, store: Store, command: str, fresh: int) -> Summary:
    """A run whose every cell is up to date: recorded as a run that stored nothing, and, only if a killed run
    left them stale, the comparisons and rankings recomputed."""
    run_id = _start_run(store, p, cfg, command, cfg.device or "", cfg.precision, catalog(p))
    summary = Summary(run_id, skipped=list(p.skipped), up_to_date=fresh)
    status = "failed"
    try:
        if not queries.comparisons_current(store):
            compare_and_rank(store)
        status = "finished"
    finally:
        store.finish_run(run_id, status, 0, summary.skipped, {})  # journalled if a reader holds the file: no wait
        summary.stored, summary.pending, summary.waited_s = store.committed, store.journalled, store.waited_s
        summary.seconds = timing.take()
    return summary


def compare_and_rank(store: Store) -> tuple[int, int]:
    """Recompute what a run ends with: the paired comparisons of the newest cells of every model pair, and
    how stable the model ranking is across prompt draws. Returns the rows stored of each."""
    from pathboard.core.science.compare import compare_cells
    from pathboard.core.science.rankings import METRIC, TASK, rank_draws

    pairs, draws, stored_pairs, stored_draws = queries.anything_to_compare(store, TASK, METRIC)
    with timing.stage("comparisons"):
        compared = compare_cells(queries.latest_predictions(store)) if pairs else []
        if compared or stored_pairs:
            store.replace_comparisons(compared)
    with timing.stage("rankings"):
        ranked = rank_draws(queries.prompt_draws(store, TASK, METRIC)) if draws else []
        if ranked or stored_draws:
            store.replace_prompt_rankings(ranked)
    return len(compared), len(ranked)
