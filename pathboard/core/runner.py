"""plan -> embed (cached) -> score -> store. The runner owns the loop; plugins own the science."""
from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pathboard
from pathboard.core import plugins
from pathboard.core.cache import EmbeddingCache
from pathboard.core.compare import compare_latest
from pathboard.core.dataset import data_root
from pathboard.core.embedder import Embedder
from pathboard.core.errors import PathboardError
from pathboard.core.model import Runtime
from pathboard.core.prompts import MODES, PromptSet
from pathboard.core.store import Store
from pathboard.core.task import CellContext
from pathboard.core.weights import Weights, cache_root, overrides

PACKAGES = ["torch", "torchvision", "open_clip_torch", "transformers", "numpy", "scikit-learn", "pillow", "duckdb"]


@dataclass
class RunConfig:
    models: str = "all"
    datasets: str = "all"
    tasks: str = "zeroshot"
    prompt_modes: str = "single,ensemble"
    data_root: str | None = None
    db: str = "pathboard.duckdb"
    cache_dir: str | None = None
    device: str | None = None
    precision: str = "fp32"
    batch_size: int = 64
    workers: int = 2
    weights: tuple[str, ...] = ()
    prompts: tuple[str, ...] = ()
    strict: bool = False  # a dataset of a group or "all" that is absent is an error, not a skip
    mpp: float = 0.5  # slide tasks: target resolution in µm/px ...
    magnification: float | None = None  # ... or as a magnification (10 / mpp), which wins when given
    tile_size: int = 224
    fewshot_methods: str = "prototype,linear-probe"  # task options: a task's configure(cfg) reads its own


@dataclass
class Cell:
    model: object
    dataset: object
    task: object
    prompt_mode: str | None


@dataclass
class Plan:
    cells: list[Cell]
    skipped: list[str]
    weights: dict[str, Weights]
    manifests: dict
    prompts: dict[str, PromptSet]
    root: Path | None


@dataclass
class Summary:
    run_id: str
    cells: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failed_files: dict = field(default_factory=dict)
    image_forwards: int = 0


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def select(kind: str, value: str) -> tuple[list, bool]:
    """Objects named by ``value`` ("all", ids, or for datasets a group, organ or level), and
    whether they were named explicitly (explicit names must work; members of "all" may be skipped)."""
    items = plugins.registry(kind)
    names = _split(value)
    if names == ["all"]:
        return list(items.values()), False
    chosen, explicit = [], True
    factories = plugins.registry("factory") if kind == "dataset" else {}
    for name in names:
        prefix, sep, rest = name.partition(":")
        if sep and prefix in factories:  # a parameterised dataset: folder:PATH, slides-csv:PATH, ...
            dataset = factories[prefix].build(rest)
            dataset.from_spec = True
            chosen.append(dataset)
            continue
        tagged = [d for d in items.values() if kind == "dataset" and name in d.groups]
        if name not in items and tagged:
            chosen += tagged
            explicit = False
        else:
            chosen.append(plugins.get(kind, name))
    return list({obj.id: obj for obj in chosen}.values()), explicit


def _prompt_overrides(entries) -> dict[str, PromptSet]:
    """``--prompts FILE`` (every dataset) or ``--prompts DATASET=FILE``; key "*" means every dataset."""
    found = {}
    for entry in entries:
        key, sep, path = entry.rpartition("=")
        found[key if sep else "*"] = PromptSet.load(path)
    return found


def plan(cfg: RunConfig) -> Plan:
    modes = _split(cfg.prompt_modes)
    for m in modes:
        if m not in MODES:
            raise PathboardError(f"unknown prompt mode {m!r}; choose from {', '.join(MODES)}")
    models, models_explicit = select("model", cfg.models)
    datasets, datasets_explicit = select("dataset", cfg.datasets)
    datasets_explicit = datasets_explicit or cfg.strict
    tasks, _ = select("task", cfg.tasks)
    tasks = [t.configure(cfg) if hasattr(t, "configure") else t for t in tasks]  # options, checked now
    skipped: list[str] = []

    user_weights = overrides(cfg.weights)
    weights = {}
    for m in models:
        override = user_weights.get(m.id)
        try:
            weights[m.id] = m.resolve(Weights(*override) if override else None)
        except PathboardError as exc:
            if models_explicit:
                raise
            skipped.append(f"{m.id}: {exc}")

    root, manifests = None, {}
    try:  # parameterised datasets (folder:PATH) carry their own path
        if any(not getattr(d, "from_spec", False) for d in datasets):
            root = data_root(cfg.data_root)
    except PathboardError as exc:
        if datasets_explicit:
            raise
        skipped.append(str(exc))
    for d in (d for d in datasets if root or getattr(d, "from_spec", False)):
        try:
            manifests[d.id] = d.manifest(root)
        except PathboardError as exc:
            if datasets_explicit:
                raise
            skipped.append(str(exc))

    custom = _prompt_overrides(cfg.prompts)
    prompts = {}
    for d in (d for d in datasets if d.id in manifests and d.classes):  # unlabelled sets have no prompts
        prompts[d.id] = custom.get(d.id) or custom.get("*") or d.prompts()
        prompts[d.id].prompts("single", d.classes)  # fail now, not after an hour of embedding

    cells = []
    for m in (m for m in models if m.id in weights):
        for d in (d for d in datasets if d.id in manifests):
            for t in tasks:
                missing = set(t.requires) - set(m.capabilities)
                reason = f"{m.id} lacks {', '.join(sorted(missing))}" if missing else t.supports(d)
                if reason:
                    skipped.append(f"{t.id} on {m.id} x {d.id}: {reason}")
                    continue
                cells += [Cell(m, d, t, mode) for mode in (modes if t.uses_prompts else [None])]
    return Plan(cells, skipped, weights, manifests, prompts, root)


class LazyModel:
    """Loads the model on first use only: a fully cached run never loads weights at all."""

    def __init__(self, spec, weights: Weights, runtime: Runtime):
        self.spec, self.weights, self.runtime, self._model = spec, weights, runtime, None

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


def execute(p: Plan, cfg: RunConfig, command: str = "") -> Summary:
    runtime = Runtime.create(cfg.device, cfg.precision)
    cache = EmbeddingCache(Path(cfg.cache_dir) if cfg.cache_dir else cache_root())
    store = Store(cfg.db)
    run_id = store.start_run(command=command, pathboard_version=pathboard.__version__, packages=_versions(),
                             host=platform.node(), device=runtime.device, precision=runtime.precision,
                             batch_size=cfg.batch_size, data_root=str(p.root) if p.root else None)
    summary = Summary(run_id, skipped=list(p.skipped))
    artifacts = Path(cfg.db).resolve().parent / "pathboard-artifacts" / run_id
    status = "failed"
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
                    _run_dataset(cells, embedder, p, store, summary, artifacts)
                except Exception as exc:  # one broken model or dataset must not lose the other cells
                    if os.environ.get("PATHBOARD_DEBUG"):
                        raise
                    line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    if not isinstance(exc, PathboardError):
                        line = f"{type(exc).__name__}: {line}"
                    summary.errors.append(f"{model_id} x {dataset_id}: {line}")
                    print(f"error: {summary.errors[-1]}", file=sys.stderr)
        status = "finished" if not summary.errors else "finished with errors"
        compare_latest(store)
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        summary.image_forwards = sum(e.image_forwards for e in embedders)
        store.finish_run(run_id, status, summary.image_forwards, summary.skipped + summary.errors,
                         summary.failed_files)
    return summary


def _run_dataset(cells, embedder: Embedder, p: Plan, store, summary, artifacts: Path):
    spec, dataset = embedder.spec, cells[0].dataset
    manifest = p.manifests[dataset.id]
    needed = dataset.level == "patch" and any(c.task.needs_images for c in cells)
    images = embedder.images(dataset, manifest) if needed else None
    if images is not None and images.failed:
        summary.failed_files[dataset.id] = images.failed

    def locate(other_id: str):
        other = plugins.get("dataset", other_id)
        if other_id not in p.manifests:
            p.manifests[other_id] = other.manifest(p.root)
        return other, p.manifests[other_id]

    prompts = p.prompts.get(dataset.id)
    for cell in cells:
        ctx = CellContext(spec.id, dataset, manifest, cell.prompt_mode, prompts, embedder, images, locate,
                          artifacts / spec.id / dataset.id)
        scored = cell.task.score(ctx)
        if ctx.failures:
            summary.failed_files.setdefault(dataset.id, {}).update(ctx.failures)
        common = {"model": spec.id, "dataset": dataset.id, "task": cell.task.id, "prompt_mode": cell.prompt_mode,
                  "weights_fingerprint": embedder.fingerprint, "weights_origin": p.weights[spec.id].origin,
                  "prompt_hash": prompts.hash(cell.prompt_mode, dataset.classes) if cell.prompt_mode else None,
                  "manifest_hash": manifest.hash, "embedding_key": images.key if images else None,
                  "n_items": len(manifest), "n_failed": len(images.failed) if images else len(ctx.failures),
                  "device": embedder.runtime.device, "precision": embedder.runtime.precision}
        entries = []
        for variant, metrics in (scored.items() if isinstance(scored, dict) else [("", scored)]):
            row = {**common, "variant": variant}
            predictions = None
            if variant in ctx.predictions:
                y_true, y_pred = ctx.predictions[variant]
                predictions = (y_true, y_pred, len(dataset.classes), bool(dataset.ordinal))
            entries.append((row, metrics, ctx.written if variant == "" else (), predictions))
            summary.cells.append({**row, "metrics": {m.name: m for m in metrics}})
        store.add_cells(summary.run_id, entries)  # one short transaction per scored cell
