"""The steps of a run that every executor shares, one model x dataset pair at a time: embed what its cells
read (:func:`embed_dataset`), score each cell on those embeddings (:func:`score_cells`), and store what a
cell produced (:func:`store_cell`) and what embedding cost (:func:`store_cost`).

The local executor (:mod:`~pathboard.core.engine.local`) runs them in this process; the Ray executor
(:mod:`~pathboard.core.engine.distributed`) runs embedding and scoring on workers and the storing steps on
the driver, the only writer of the database.
"""
from __future__ import annotations

import dataclasses
import errno
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from pathboard.core.engine.plan import Plan
from pathboard.core.engine.slides import folder_for, folders_of
from pathboard.core.errors import PathboardError
from pathboard.core.interfaces.contracts import ContractError, broken, expect
from pathboard.core.interfaces.model import EmbeddingModel
from pathboard.core.interfaces.options import options_json, protocol_of
from pathboard.core.interfaces.slide_model import SlideEncoder, is_slide_model
from pathboard.core.interfaces.task import CellContext, TaskResult
from pathboard.core.interfaces.weights import Weights
from pathboard.core.paths import cache_root, safe_name
from pathboard.core.science import grouping
from pathboard.core.science.metrics import MIN_UNITS, Metric
from pathboard.core.store import Store
from pathboard.core.store.database import interval_units
from pathboard.core.timing import stage


@dataclass
class Summary:
    run_id: str
    cells: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: task id -> the cells it failed in ("model x dataset (mode)"); their reasons are in ``errors``
    failed_cells: dict = field(default_factory=dict)
    #: model x dataset pairs that failed whole (a model that does not load, a dataset that does not embed)
    failed_pairs: int = 0
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
    #: wall seconds of each stage of the run (:data:`pathboard.core.timing.STAGES`), planning included
    seconds: dict = field(default_factory=dict)
    #: cells of the plan whose stored numbers were up to date: neither scored nor written again
    up_to_date: int = 0


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
                with stage("model load"):
                    model = self.spec.load(self.weights, self.runtime)
            except PathboardError:
                raise
            except Exception as exc:
                raise PathboardError(f"cannot load {self.spec.id} weights from {self.weights.path} "
                                     f"({type(exc).__name__}: {exc}); re-download them or fix --weights") from exc
            kind, since = (SlideEncoder, 6) if is_slide_model(self.spec) else (EmbeddingModel, 1)
            self._model = expect(model, kind, self.spec, "model", "load()", since, "models")
        return self._model


def one_line(exc: Exception) -> str:
    line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return (f"{type(exc).__name__}: {line}; free space where the embedding cache lives (--cache-dir, "
                f"PATHBOARD_CACHE: {cache_root()}) or point it elsewhere; finished cells are stored")
    return line if isinstance(exc, PathboardError) else f"{type(exc).__name__}: {line}"


def pairs(p: Plan):
    """(model id, dataset id, cells) in plan order: one model at a time, so each is loaded once."""
    for model_id in dict.fromkeys(c.model.id for c in p.cells):
        model_cells = [c for c in p.cells if c.model.id == model_id]
        for dataset_id in dict.fromkeys(c.dataset.id for c in model_cells):
            yield model_id, dataset_id, [c for c in model_cells if c.dataset.id == dataset_id]


def pair_failed(summary: Summary, model_id: str, dataset_id: str, exc: Exception) -> None:
    """One broken model or dataset is one error line; the other cells go on."""
    summary.failed_pairs += 1
    summary.errors.append(f"{model_id} x {dataset_id}: {one_line(exc)}")
    print(f"error: {summary.errors[-1]}", file=sys.stderr)


@dataclass
class Embeddings:
    """What a model x dataset's cells read, embedded (or found in the cache), and what could not be read."""

    images: dict  # dataset id -> Embedded
    perturbed: dict  # (perturbation, seed) -> Embedded, of this dataset's images
    tiles: dict  # (tiling, which items) -> TileSet
    failed: dict  # item -> why
    #: a slide model's: (tiling, which items) -> ({item: its slide representation}, {item: it in the text space})
    slides: dict = field(default_factory=dict)


@dataclass
class CellOutput:
    """One scored cell, ready to store: its rows (one per variant), what it could not score, what it says.
    Picklable, so a distributed worker returns it to the driver, the only writer of the database."""

    entries: list
    failed: dict
    notes: list
    warnings: list
    #: wall seconds the task took to score it (its prompt encoding included)
    seconds: float = 0.0


def tiling_for(cell, p: Plan):
    """The cell's tiling, with the resolution assumed by --assume-mpp for slides without metadata."""
    tiling = cell.inputs.tiles
    if tiling is not None and cell.dataset.id in p.assume_mpp and tiling.fallback_mpp is None:
        tiling = dataclasses.replace(tiling, fallback_mpp=p.assume_mpp[cell.dataset.id],
                                     fallback_source="assumed with --assume-mpp")
    return tiling


def image_inputs(cells) -> list[tuple[str, str | None, int]]:
    """(dataset id, perturbation or None, seed) of every image embedding the cells read, each once."""
    dataset = cells[0].dataset.id
    clean = [(i, None, 0) for i in dict.fromkeys(i for c in cells for i in c.inputs.images)]
    shaken = [(dataset, name, c.inputs.perturbation_seed) for c in cells for name in c.inputs.perturbations]
    return list(dict.fromkeys(clean + shaken))


def tile_inputs(cells, p: Plan) -> list:
    """(tiling as run, which items, tiling as planned) of every tile set the cells read, each once."""
    return list(dict.fromkeys((tiling_for(c, p), c.inputs.tile_items, c.inputs.tiles) for c in cells
                              if c.inputs.tiles is not None))


def embed_dataset(cells, embedder, p: Plan) -> Embeddings:
    """Embed what this model x dataset's cells read, each thing once (cached); then find the near-duplicate
    groups of the datasets that declare them, from the images the embedding just decoded."""
    dataset = cells[0].dataset
    manifest = p.manifests[dataset.id]
    out = Embeddings({}, {}, {}, {})
    for other_id, perturbation, seed in image_inputs(cells):
        with stage("image embedding"):  # or reading them back from the cache
            if perturbation is None:
                out.images[other_id] = embedder.images(p.datasets[other_id], p.manifests[other_id])
            else:
                out.perturbed[(perturbation, seed)] = embedder.images(dataset, manifest, perturbation, seed)
    for other_id in dict.fromkeys([dataset.id, *out.images]):  # before any cell reads their groups
        if getattr(p.datasets[other_id], "near_duplicates", False):
            grouping.group_manifest(p.manifests[other_id], what=other_id, open_image=p.datasets[other_id].open_image)
    if dataset.id in out.images and out.images[dataset.id].failed:
        out.failed.update(out.images[dataset.id].failed)
    out.failed.update(getattr(manifest, "missing", None) or {})  # listed, then gone (a broken link): counted
    for tiling, items, planned in tile_inputs(cells, p):  # a slide in several sets is embedded once (cached)
        with stage("tile embedding"):
            out.tiles[(planned, items)] = embedder.slides(dataset, manifest, tiling, items)
        if hasattr(embedder, "slide_vectors"):  # a slide model: one embedding per slide, from those tiles
            out.slides[(planned, items)] = embedder.slide_vectors(out.tiles[(planned, items)], dataset.id)
        out.failed.update(out.tiles[(planned, items)].failed)  # with the slides a slide encoder could not encode
    return out


def make_embedder(spec, p: Plan, runtime, cache, batch_size: int, workers: int, made: dict, loader=None):
    """The embedder of ``spec``, made once per model id in ``made``. A slide model's reads its tiles through its
    patch encoder's embedder (the same one the patch encoder's own cells use, so the model loads once), or from
    the run's ``--features``. ``loader(spec, weights)`` makes the model loader (default: :class:`LazyModel`)."""
    from pathboard.core.embedding.embedder import Embedder
    from pathboard.core.embedding.slide_embedder import SlideEmbedder

    if spec.id in made:
        return made[spec.id]
    weights = p.weights[spec.id]
    lazy = loader(spec, weights) if loader else LazyModel(spec, weights, runtime)
    if spec.id in p.patch_encoders:
        encoder = p.patch_encoders[spec.id]
        patch = make_embedder(encoder, p, runtime, cache, batch_size, workers, made, loader) \
            if encoder.id in p.weights else None
        made[spec.id] = SlideEmbedder(spec, lazy, weights.fingerprint, runtime, cache, batch_size, workers,
                                      patch=patch, features=folders_of(p.features, encoder))
    else:
        made[spec.id] = Embedder(spec, lazy, weights.fingerprint, runtime, cache, batch_size, workers)
    return made[spec.id]


@dataclass
class CellFailure:
    """A cell whose task failed: the pair's other cells go on. ``line`` says why, once for every cell it
    failed alike (a plugin that breaks a contract names itself, not the cell). Picklable, as CellOutput."""

    model: str
    dataset: str
    task: str
    prompt_mode: str | None
    line: str


def score_cells(cells, embedder, p: Plan, embedded: Embeddings, artifacts: Path):
    """Score each cell on the embeddings (a pure function of them); yield its :class:`CellOutput`, or a
    :class:`CellFailure` when its task raised or returned something of the wrong shape."""
    from tqdm.auto import tqdm

    desc = f"{embedder.spec.id} x {cells[0].dataset.id}: scoring" if cells else ""
    for cell in tqdm(cells, desc=desc, unit="cell", disable=None, leave=False):
        try:
            with stage("scoring"):
                start = time.perf_counter()
                out = score_cell(cell, embedder, p, embedded, artifacts)
                out.seconds = time.perf_counter() - start
            yield out
        except Exception as exc:
            if os.environ.get("PATHBOARD_DEBUG"):
                raise
            line = str(exc) if isinstance(exc, ContractError) else \
                f"{cell.task.id} on {cell.model.id} x {cell.dataset.id}: {one_line(exc)}"
            yield CellFailure(cell.model.id, cell.dataset.id, cell.task.id, cell.prompt_mode, line)


def intervals_of(headline: list) -> dict:
    """What the headline's intervals rest on, for the cell's protocol: the units they resampled (groups or
    items; the fewest over the metrics), whether that is below MIN_UNITS, and per metric the share of resamples
    left out because the metric was undefined in them (only those that left any out)."""
    units = [u for u in map(interval_units, headline) if u]
    undefined = {m.name: round(float(m.undefined), 4) for m in headline if getattr(m, "undefined", 0.0) > 0}
    if not units and not undefined:
        return {}
    out: dict = {"undefined": undefined}
    if units:
        out.update(units=min(units), too_few=min(units) < MIN_UNITS)
    return out


def task_result(task, ctx: CellContext) -> TaskResult:
    """``task.score(ctx)``, checked: a TaskResult whose variants map to lists of Metric."""
    result = expect(task.score(ctx), TaskResult, task, "task", "score()", 2, "tasks")
    for variant, metrics in result.metrics.items():
        if not isinstance(metrics, list) or not all(isinstance(m, Metric) for m in metrics):
            wrong = next((m for m in metrics if not isinstance(m, Metric)), metrics) \
                if isinstance(metrics, list) else metrics
            raise broken(task, "task", f"score()'s variant {variant!r}", wrong, "a list of Metric", 2, "tasks")
    return result


def score_cell(cell, embedder, p: Plan, embedded: Embeddings, artifacts: Path) -> CellOutput:
    """Score one cell on the embeddings (a pure function of them)."""
    spec, dataset = embedder.spec, cell.dataset
    manifest = p.manifests[dataset.id]
    prompts = p.prompts.get(dataset.id)
    own = embedded.images.get(dataset.id)
    task, values = cell.task, cell.task.values
    others = MappingProxyType({i: (p.datasets[i], p.manifests[i], embedded.images[i])
                               for i in cell.inputs.images if i != dataset.id})
    tileset = embedded.tiles.get((cell.inputs.tiles, cell.inputs.tile_items))
    shaken = MappingProxyType({name: embedded.perturbed[(name, cell.inputs.perturbation_seed)]
                               for name in cell.inputs.perturbations})
    folder = artifacts / safe_name(spec.id) / safe_name(dataset.id)  # ids such as slides-csv:/data/a.csv
    representation, text = embedded.slides.get((cell.inputs.tiles, cell.inputs.tile_items), (None, None))
    ctx = CellContext(spec.id, dataset, manifest, cell.prompt_mode, prompts, embedder.texts, own,
                      MappingProxyType(dict(values)), others, tileset, folder,
                      getattr(spec.card, "context_length", 77), shaken, embedder.facts,
                      None if representation is None else MappingProxyType(representation),
                      None if text is None else MappingProxyType(text), embedder.device)
    result = task_result(task, ctx)
    warnings = [f"warning: {dataset.id}: skipped {item}: {reason}" for item, reason in result.failed.items()]
    warnings += [f"warning: {note}" for note in result.notes]
    notes = list(result.notes)
    task_options, options_hash = options_json(values)
    prompt_hash = prompts.hash(cell.prompt_mode, dataset.classes) if cell.prompt_mode else None
    task_protocol = dict(result.protocol)
    method = dict(embedder.identity)
    if spec.id in p.patch_encoders:  # the slide encoder's method: recorded with the model, as its preprocessing is,
        # so that its cells share the task's protocol with the patch models' and are compared with them, paired
        folder_used = folder_for(p, spec.id, dataset.id)
        method.update(pooling="slide-encoder", slide_encoder={
            "patch_encoder": p.patch_encoders[spec.id].id, "tiling": cell.inputs.tiles.key(),
            "tiles": f"TRIDENT features ({folder_used.encoder})" if folder_used else "embedded by pathboard"})
    assumed = _assumed_slides(tileset)
    if assumed:  # numbers that rest on an assumed resolution say so, and are a protocol of their own
        task_protocol["assumed_mpp"] = {"mpp": p.assume_mpp[dataset.id], "slides": assumed}
        note = (f"{dataset.id}: {assumed} slide(s) without resolution metadata tiled at an assumed "
                f"{p.assume_mpp[dataset.id]} µm/px (--assume-mpp)")
        notes.append(note)
        warnings.append(f"note: {note}")
    protocol, protocol_hash, default = protocol_of(
        prompt_hash, dataset.id in p.custom_prompts, values, {o.name: o.default for o in task.options},
        task_protocol, manifest.hash, method, intervals_of(result.metrics.get("", [])),
        p.pack.id if p.pack else None)
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
              "default_protocol": default, "cell_key": cell.key or None, "pack": p.pack.id if p.pack else None}
    entries = []
    for variant, metrics in result.metrics.items():
        row = {**common, "variant": variant}
        predictions = result.predictions.get(variant)
        stored = None if predictions is None else (
            predictions.y_true, predictions.y_pred, len(dataset.classes), bool(dataset.ordinal),
            list(predictions.items), None if predictions.groups is None else list(predictions.groups))
        artifacts_rows = [(a.item, a.kind, a.path) for a in result.artifacts] if variant == "" else ()
        entries.append((row, metrics, artifacts_rows, stored))
    return CellOutput(entries, dict(result.failed), notes, warnings)


def store_cell(store: Store, summary: Summary, dataset_id: str, out: CellOutput | CellFailure) -> None:
    """Store one scored cell (one short transaction) and say what it could not score; or count a failed
    cell against its task (one error line per distinct failure)."""
    if isinstance(out, CellFailure):
        summary.failed_cells.setdefault(out.task, []).append(
            f"{out.model} x {out.dataset}" + (f" ({out.prompt_mode})" if out.prompt_mode else ""))
        if out.line not in summary.errors:
            summary.errors.append(out.line)
            print(f"error: {out.line}", file=sys.stderr)
        return
    for line in out.warnings:
        if not line.startswith("note: ") or line[6:] not in summary.notes:
            print(line, file=sys.stderr)
    if out.failed:
        summary.failed_files.setdefault(dataset_id, {}).update(out.failed)
    summary.notes += [n for n in out.notes if n not in summary.notes]
    with stage("storing"):
        store.add_cells(summary.run_id, out.entries)
    summary.cells += [{**row, "metrics": {m.name: m for m in metrics}, "seconds": out.seconds if i == 0 else 0.0}
                      for i, (row, metrics, _, _) in enumerate(out.entries)]


def _assumed_slides(tileset) -> int:
    """How many of a tile set's slides were tiled at a resolution assumed with --assume-mpp."""
    if tileset is None:
        return 0
    return sum(str(tileset[path].info.get("mpp_source", "")).startswith("assumed") for path, _ in tileset.items())


def store_cost(store: Store, run_id: str, embedder, dataset_id: str, embedded: list, wall: float, peak,
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
