"""Execute a plan: per model and dataset, embed what the cells read (cached), score each cell, store it.

Data flows one way: the plan names the work, the :class:`~pathboard.core.embedding.Embedder` computes
or finds every embedding, each task scores a read-only context and returns a
:class:`~pathboard.core.task.TaskResult`, and the runner stores it.
"""
from __future__ import annotations

import dataclasses
import errno
import importlib.metadata
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import pathboard
from pathboard.core.errors import PathboardError
from pathboard.core.options import options_json, protocol_of
from pathboard.core.paths import cache_root
from pathboard.core.plan import Plan, RunConfig
from pathboard.core.store import Store
from pathboard.core.task import CellContext
from pathboard.core.weights import Weights

PACKAGES = ["torch", "torchvision", "open_clip_torch", "transformers", "numpy", "scikit-learn", "pillow", "duckdb"]


@dataclass
class Summary:
    run_id: str
    cells: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failed_files: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    image_forwards: int = 0
    #: cells committed to the database, cells still waiting in its journal (a reader held the file to the
    #: end; the next pathboard command merges them), and the seconds the run waited for a reader
    stored: int = 0
    pending: int = 0
    waited_s: float = 0.0
    #: what embedding cost per model and dataset (the ``costs`` rows)
    costs: list[dict] = field(default_factory=list)
    #: wall seconds spent embedding (incl. cache reads), scoring and storing
    seconds: dict = field(default_factory=lambda: {"embed": 0.0, "score": 0.0, "store": 0.0})


class LazyModel:
    """Loads the model on first use only: a fully cached run never loads weights at all."""

    def __init__(self, spec, weights: Weights, runtime):
        self.spec, self.weights, self.runtime, self._model = spec, weights, runtime, None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def __call__(self):
        if self._model is None:
            print(f"loading {self.spec.id} from {self.weights.path}", file=sys.stderr)
            try:
                self._model = self.spec.load(self.weights, self.runtime)
            except PathboardError:
                raise
            except Exception as exc:
                raise PathboardError(f"cannot load {self.spec.id} weights from {self.weights.path} "
                                     f"({type(exc).__name__}: {exc}); re-download them or fix --weights") from exc
        return self._model


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
    datasets = {d.id: {"title": d.title, "groups": sorted(d.groups), "level": d.level, "ordinal": bool(d.ordinal)}
                for d in p.datasets.values()}
    tasks = {c.task.id: {"title": c.task.title} for c in p.cells}
    return {"models": models, "datasets": datasets, "tasks": tasks}


def _one_line(exc: Exception) -> str:
    line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return (f"{type(exc).__name__}: {line}; free space where the embedding cache lives (--cache-dir, "
                f"PATHBOARD_CACHE: {cache_root()}) or point it elsewhere; finished cells are stored")
    return line if isinstance(exc, PathboardError) else f"{type(exc).__name__}: {line}"


def execute(p: Plan, cfg: RunConfig, command: str = "") -> Summary:
    from pathboard.core.cache import EmbeddingCache
    from pathboard.core.compare import compare_latest
    from pathboard.core.embedding import Embedder
    from pathboard.core.model import Runtime
    from pathboard.core.rankings import rank_latest

    runtime = Runtime.create(cfg.device, cfg.precision)
    cache = EmbeddingCache(Path(cfg.cache_dir) if cfg.cache_dir else cache_root())
    store = Store(cfg.db)
    run_id = store.start_run(command=command, pathboard_version=pathboard.__version__, packages=_versions(),
                             host=platform.node(), device=runtime.device, precision=runtime.precision,
                             batch_size=cfg.batch_size, data_root=str(p.root) if p.root else None, catalog=catalog(p))
    summary = Summary(run_id, skipped=list(p.skipped))
    for model_id, dataset_id, reason in p.blocked:
        summary.errors.append(f"{model_id} x {dataset_id}: {reason}")
        print(f"error: {summary.errors[-1]}", file=sys.stderr)
    artifacts = Path(cfg.db).resolve().parent / "pathboard-artifacts" / run_id
    status = "failed"
    settled = True
    embedders = []
    try:
        for model_id in dict.fromkeys(c.model.id for c in p.cells):
            model_cells = [c for c in p.cells if c.model.id == model_id]
            spec, weights = model_cells[0].model, p.weights[model_id]
            embedder = Embedder(spec, LazyModel(spec, weights, runtime), weights.fingerprint, runtime, cache,
                                cfg.batch_size, cfg.workers)
            embedders.append(embedder)
            for dataset_id in dict.fromkeys(c.dataset.id for c in model_cells):
                cells = [c for c in model_cells if c.dataset.id == dataset_id]
                try:
                    _run_dataset(cells, embedder, p, store, summary, artifacts, cfg.batch_size)
                except Exception as exc:  # one broken model or dataset must not lose the other cells
                    if os.environ.get("PATHBOARD_DEBUG"):
                        raise
                    summary.errors.append(f"{model_id} x {dataset_id}: {_one_line(exc)}")
                    print(f"error: {summary.errors[-1]}", file=sys.stderr)
        status = "finished" if not summary.errors else "finished with errors"
        settled = store.flush()  # cells journalled while a reader held the file go in before the comparisons
        compare_latest(store)
        rank_latest(store)
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        summary.image_forwards = sum(e.image_forwards for e in embedders)
        store.finish_run(run_id, status, summary.image_forwards, summary.skipped + summary.errors,
                         summary.failed_files)
        if status != "interrupted" and settled:  # the run record itself (a reader that outlasted the wait: not again)
            store.flush()
        summary.stored, summary.pending, summary.waited_s = store.committed, store.journalled, store.waited_s
    return summary


def _run_dataset(cells, embedder, p: Plan, store: Store, summary: Summary, artifacts: Path, batch_size: int = 0):
    """Embed what this dataset's cells read (each thing once), then score and store every cell, and what
    embedding it cost."""
    from pathboard.core.cost import PeakMemory

    spec, dataset = embedder.spec, cells[0].dataset
    manifest = p.manifests[dataset.id]
    start = started = time.perf_counter()
    counted = (embedder.images_embedded, embedder.tiles_embedded, embedder.embed_seconds)
    with PeakMemory(embedder.runtime.device) as peak:
        images = {}  # dataset id -> Embedded
        for other_id in dict.fromkeys(i for c in cells for i in c.inputs.images):
            images[other_id] = embedder.images(p.datasets[other_id], p.manifests[other_id])
        if dataset.id in images and images[dataset.id].failed:
            summary.failed_files[dataset.id] = dict(images[dataset.id].failed)
        missing = getattr(manifest, "missing", None)  # listed, then gone (a broken link): counted, not fatal
        if missing:
            summary.failed_files.setdefault(dataset.id, {}).update(missing)
        perturbed = {}  # (perturbation, seed) -> Embedded, of this dataset's images
        for key in dict.fromkeys((name, c.inputs.perturbation_seed) for c in cells for name in c.inputs.perturbations):
            perturbed[key] = embedder.images(dataset, manifest, *key)
        tiles = {}  # (tiling, which items) -> TileSet; a slide in several sets is embedded once (cached)
        for key in dict.fromkeys((c.inputs.tiles, c.inputs.tile_items) for c in cells if c.inputs.tiles is not None):
            tiling = key[0]
            if dataset.id in p.assume_mpp and tiling.fallback_mpp is None:  # slides without resolution metadata
                tiling = dataclasses.replace(tiling, fallback_mpp=p.assume_mpp[dataset.id],
                                             fallback_source="assumed with --assume-mpp")
            tiles[key] = embedder.slides(dataset, manifest, tiling, key[1])
            if tiles[key].failed:
                summary.failed_files.setdefault(dataset.id, {}).update(tiles[key].failed)
    embedded = [now - before for now, before in
                zip((embedder.images_embedded, embedder.tiles_embedded, embedder.embed_seconds), counted)]

    summary.seconds["embed"] += time.perf_counter() - start
    prompts = p.prompts.get(dataset.id)
    own = images.get(dataset.id)
    for cell in cells:
        task, values = cell.task, cell.task.values
        others = MappingProxyType({i: (p.datasets[i], p.manifests[i], images[i])
                                   for i in cell.inputs.images if i != dataset.id})
        tileset = tiles.get((cell.inputs.tiles, cell.inputs.tile_items))
        shaken = MappingProxyType({name: perturbed[(name, cell.inputs.perturbation_seed)]
                                   for name in cell.inputs.perturbations})
        ctx = CellContext(spec.id, dataset, manifest, cell.prompt_mode, prompts, embedder.texts, own,
                          MappingProxyType(dict(values)), others, tileset, artifacts / spec.id / dataset.id,
                          getattr(spec.card, "context_length", 77), shaken, embedder.facts)
        start = time.perf_counter()
        result = task.score(ctx)
        summary.seconds["score"] += time.perf_counter() - start
        for item, reason in result.failed.items():
            print(f"warning: {dataset.id}: skipped {item}: {reason}", file=sys.stderr)
        if result.failed:
            summary.failed_files.setdefault(dataset.id, {}).update(result.failed)
        for note in result.notes:
            print(f"warning: {note}", file=sys.stderr)
        summary.notes += result.notes
        task_options, options_hash = options_json(values)
        prompt_hash = prompts.hash(cell.prompt_mode, dataset.classes) if cell.prompt_mode else None
        task_protocol = dict(result.protocol)
        assumed = _assumed_slides(tileset)
        if assumed:  # numbers that rest on an assumed resolution say so, and are a protocol of their own
            task_protocol["assumed_mpp"] = {"mpp": p.assume_mpp[dataset.id], "slides": assumed}
            note = (f"{dataset.id}: {assumed} slide(s) without resolution metadata tiled at an assumed "
                    f"{p.assume_mpp[dataset.id]} µm/px (--assume-mpp)")
            if note not in summary.notes:
                summary.notes.append(note)
                print(f"note: {note}", file=sys.stderr)
        protocol, protocol_hash, default = protocol_of(
            prompt_hash, dataset.id in p.custom_prompts, values, {o.name: o.default for o in task.options},
            task_protocol, manifest.hash, embedder.identity)
        default = default and not assumed
        n_failed = len(own.failed) if own is not None and cell.inputs.tiles is None else \
            len(result.failed) + (len(tileset.failed) if tileset is not None else 0)
        common = {"model": spec.id, "dataset": dataset.id, "task": task.id, "prompt_mode": cell.prompt_mode,
                  "weights_fingerprint": embedder.fingerprint, "weights_origin": p.weights[spec.id].origin,
                  "prompt_hash": prompt_hash,
                  "manifest_hash": manifest.hash, "embedding_key": own.key if own is not None else None,
                  "n_items": len(manifest), "n_failed": n_failed, "device": embedder.runtime.device,
                  "precision": embedder.runtime.precision, "task_options": task_options,
                  "options_hash": options_hash, "protocol": protocol, "protocol_hash": protocol_hash,
                  "default_protocol": default}
        entries = []
        for variant, metrics in result.metrics.items():
            row = {**common, "variant": variant}
            predictions = result.predictions.get(variant)
            stored = None if predictions is None else (
                predictions.y_true, predictions.y_pred, len(dataset.classes), bool(dataset.ordinal),
                list(predictions.items), None if predictions.groups is None else list(predictions.groups))
            artifacts_rows = [(a.item, a.kind, a.path) for a in result.artifacts] if variant == "" else ()
            entries.append((row, metrics, artifacts_rows, stored))
        start = time.perf_counter()
        store.add_cells(summary.run_id, entries)  # one short transaction per scored cell
        summary.seconds["store"] += time.perf_counter() - start
        summary.cells += [{**row, "metrics": {m.name: m for m in metrics}} for row, metrics, _, _ in entries]
    summary.costs.append(_store_cost(store, summary.run_id, embedder, dataset.id, embedded,
                                     time.perf_counter() - started, peak, batch_size))


def _assumed_slides(tileset) -> int:
    """How many of a tile set's slides were tiled at a resolution assumed with --assume-mpp."""
    if tileset is None:
        return 0
    return sum(str(tileset[path].info.get("mpp_source", "")).startswith("assumed") for path, _ in tileset.items())


def _store_cost(store: Store, run_id: str, embedder, dataset_id: str, embedded: list, wall: float, peak,
                batch_size: int) -> dict:
    """One ``costs`` row: what this run embedded of the dataset (nothing when every embedding was cached),
    at what rate, and the model's parameter count (known once the model has been loaded, ever)."""
    images, tiles, seconds = embedded
    facts = embedder.facts() if getattr(embedder.load_model, "loaded", False) or embedder.has_facts() else {}
    cost = {
        "model": embedder.spec.id, "dataset": dataset_id, "device": embedder.runtime.device,
        "precision": embedder.runtime.precision, "batch_size": batch_size, "params": facts.get("params"),
        "images": int(images), "tiles": int(tiles), "embed_seconds": float(seconds),
        "images_per_s": images / seconds if images and seconds > 0 else None,
        "tiles_per_s": tiles / seconds if tiles and seconds > 0 else None, "wall_seconds": float(wall),
        "peak_memory_bytes": peak.bytes if images or tiles else None, "memory_kind": peak.kind}
    store.add_cost(run_id, cost)
    return cost
