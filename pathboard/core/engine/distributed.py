"""``pathboard run --executor ray``: the same plan, embedded and scored by tasks on a Ray cluster.

Work units, all named up front from the plan:

* **embed** a (model, dataset shard) of image embeddings, or a (model, slide) of tiles: asks Ray for
  ``--gpus-per-task`` GPUs (fractions share one) and ``--workers`` CPUs for decoding;
* **assemble** a model x dataset's published shards into its one cache entry (CPU), after its shards;
* **score** a model x dataset's cells on the cached embeddings (CPU), after what they read.

Workers write embeddings to the content-addressed cache, which must be a path every node sees (NFS,
Lustre, a shared volume), and return scored cells; the driver (this process) alone writes DuckDB. A task
whose worker dies is rerun by Ray (``--max-retries``): a shard is published with one rename and a cell is
stored only when its scoring task returns, so a killed worker loses and duplicates nothing.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from tqdm.auto import tqdm

from pathboard.core import timing
from pathboard.core.engine.steps import (
    LazyModel,
    Summary,
    embed_dataset,
    image_inputs,
    make_embedder,
    pair_failed,
    pairs,
    score_cells,
    store_cell,
    store_cost,
    tile_inputs,
)
from pathboard.core.errors import PathboardError, first_line
from pathboard.core.interfaces.model import Runtime
from pathboard.core.paths import limit_cpus

#: environment the workers need to find the same weights, data and cache as the driver
FORWARDED = ("PATHBOARD_", "HF_", "TRANSFORMERS_", "TORCH_HOME", "PYTHONPATH")


def _ray():
    try:
        import ray
    except ImportError:
        raise PathboardError('--executor ray needs Ray: pip install "pathboard[ray]"') from None
    return ray


def connect(cfg) -> Runtime:
    """Join (``--ray-address``) or start (none given) a Ray cluster; the runtime the workers embed with.

    ``--device`` defaults to CUDA when the cluster has GPUs; it is checked on the workers, not here (the
    driver need not have a GPU)."""
    ray = _ray()
    env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED)}
    if not ray.is_initialized():
        _reachable(cfg.ray_address)
        try:
            ray.init(address=cfg.ray_address, runtime_env={"env_vars": env}, include_dashboard=False,
                     logging_level=logging.WARNING, configure_logging=True, log_to_driver=True)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise PathboardError(f"cannot join the Ray cluster at {cfg.ray_address or 'a new local cluster'}: "
                                 f"{first_line(exc)}"
                                 "; start one with `ray start --head` or pass --ray-address HOST:PORT (a cluster "
                                 "with token authentication, Ray's default, also needs RAY_AUTH_MODE=token and its "
                                 "token here)") from None
    gpus = ray.cluster_resources().get("GPU", 0)
    device = cfg.device or ("cuda" if gpus else "cpu")
    if device.startswith("cuda") and not gpus:
        raise PathboardError(f"--device {device}: the Ray cluster has no GPUs (ray status shows its resources)")
    precision = cfg.precision
    if device == "cpu" and precision != "fp32":
        print(f"note: {precision} is not used on CPU; running in fp32", file=sys.stderr)
        precision = "fp32"
    return Runtime(device, precision, channels_last=device.startswith("cuda"))


def _reachable(address: str | None, timeout: float = 5.0) -> None:
    """A HOST:PORT that nothing answers on is one line now, not Ray's minutes of reconnecting."""
    if not address or "://" in address or address == "auto" or ":" not in address:
        return
    import socket

    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as exc:
        raise PathboardError(f"cannot join the Ray cluster at {address}: nothing answers there ({exc}); start one "
                             "with `ray start --head` and pass the address it prints") from None


@dataclass(frozen=True)
class Settings:
    """What every worker needs besides the plan: where the cache is and how to embed."""

    cache: str
    device: str
    precision: str
    batch_size: int
    workers: int
    threads: int | None = None


@dataclass(frozen=True)
class Unit:
    """One task: ``kind`` embed-shard, embed-slide, assemble or score, of ``model`` x ``dataset``."""

    kind: str
    model: str
    dataset: str
    perturbation: str | None = None
    seed: int = 0
    first: int = 0
    slide: str = ""
    tiling: object = None

    def __str__(self) -> str:
        what = {"embed-shard": f"rows {self.first}+", "embed-slide": self.slide}.get(self.kind, "")
        extra = f" ({self.perturbation})" if self.perturbation else ""
        return f"{self.kind} {self.model} x {self.dataset}{extra} {what}".strip()


# -- on the workers ----------------------------------------------------------------------------------------

_PLANS: dict = {}
_EMBEDDERS: dict = {}


def _plan(box):
    """The plan, fetched from the object store once per worker process (``box`` keeps Ray from
    resolving the reference before the task runs, so it is read once, not once per task)."""
    ray = _ray()
    ref = box[0]
    if ref.hex() not in _PLANS:
        _PLANS.clear()
        _PLANS[ref.hex()] = ray.get(ref)
    return _PLANS[ref.hex()]


def _embedder(p, settings: Settings, model_id: str, load_on: Runtime | None = None):
    """This worker's embedder of ``model_id`` (a worker that runs several units of a model loads it once)."""
    from pathboard.core.embedding.cache import EmbeddingCache

    key = (model_id, settings, load_on)
    # the run's one cache (near-duplicate groups, weight hashes, indexes: ``cache_root()``), and its threads
    os.environ["PATHBOARD_CACHE"] = settings.cache
    limit_cpus(settings.threads or int(os.environ.get("OMP_NUM_THREADS") or 0) or None)
    if settings.threads:  # else the CPUs Ray gave the task (it sets OMP_NUM_THREADS to them)
        import torch

        torch.set_num_threads(settings.threads)
    if key not in _EMBEDDERS:
        runtime = Runtime(settings.device, settings.precision, channels_last=settings.device.startswith("cuda"))
        if load_on is None:
            Runtime.create(settings.device, settings.precision)  # this worker can run it: one line if not
        # a run model, or the patch encoder of a slide model (its tiles are its units: shared by every slide model)
        spec = next((c.model for c in p.cells if c.model.id == model_id), None) or \
            next(e for e in p.patch_encoders.values() if e.id == model_id)
        made = _EMBEDDERS.setdefault((settings, load_on), {})  # a slide model and its patch encoder share one
        _EMBEDDERS[key] = make_embedder(spec, p, runtime, EmbeddingCache(Path(settings.cache)), settings.batch_size,
                                        settings.workers, made, lambda s, w: LazyModel(s, w, load_on or runtime))
    return _EMBEDDERS[key]


def embed_unit(box, settings: Settings, unit: Unit, *after) -> dict:
    """Embed one shard or slide, or assemble a dataset's shards; return what it cost."""
    from pathboard.core.engine.cost import PeakMemory

    p = _plan(box)
    embedder = _embedder(p, settings, unit.model)
    dataset, manifest = p.datasets[unit.dataset], p.manifests[unit.dataset]
    before = (embedder.images_embedded, embedder.tiles_embedded, embedder.embed_seconds, embedder.image_forwards)
    failed = None
    timing.take()
    with PeakMemory(settings.device) as peak, timing.stage("tile embedding" if unit.slide else "image embedding"):
        if unit.kind == "embed-shard":
            embedder.embed_shards(dataset, manifest, unit.perturbation, unit.seed, [unit.first])
        elif unit.kind == "assemble":
            try:
                embedder.assemble(dataset, manifest, unit.perturbation, unit.seed)
            except PathboardError as exc:
                raise PathboardError(f"{exc}; is the cache ({settings.cache}) on a filesystem every Ray node "
                                     "sees?") from None
        else:
            try:
                embedder.slide(dataset, manifest, unit.slide, unit.tiling)
            except (PathboardError, OSError) as exc:  # scoring reports it, as a local run does
                failed = first_line(exc)
    if embedder.load_model.loaded:
        embedder.facts()  # cached: scoring never loads the model for its logit scale
    after_ = (embedder.images_embedded, embedder.tiles_embedded, embedder.embed_seconds, embedder.image_forwards)
    images, tiles, seconds, forwards = (a - b for a, b in zip(after_, before))
    return {"images": images, "tiles": tiles, "seconds": seconds, "forwards": forwards, "failed": failed,
            "peak": peak.bytes if images or tiles else None, "memory_kind": peak.kind, "stages": timing.take()}


def score_unit(box, settings: Settings, model_id: str, dataset_id: str, artifacts: str, *after):
    """Score a model x dataset's cells on the cached embeddings, on a CPU worker: returns what the driver
    stores. Text embeddings not cached yet are computed here, with the model loaded on this worker's CPU
    unless it has the run's device."""
    p = _plan(box)
    try:
        Runtime.create(settings.device, settings.precision)
        load_on = None
    except PathboardError:
        load_on = Runtime("cpu", "fp32")
    embedder = _embedder(p, settings, model_id, load_on)
    cells = _cells(p, (model_id, dataset_id))
    timing.take()  # a worker process runs many tasks: count this one's stages only
    embedded = embed_dataset(cells, embedder, p)  # cache reads: every unit it waited for is in
    outputs = list(score_cells(cells, embedder, p, embedded, Path(artifacts)))
    return embedded.failed, outputs, timing.take()


# -- on the driver -----------------------------------------------------------------------------------------

class _NoModel:
    """The driver's embedders compute cache keys and read cached facts; they never load a model."""

    loaded = False

    def __call__(self):
        raise PathboardError("the Ray driver never loads a model; the embedding units do")


def plan_units(p, driver: dict) -> tuple[list[Unit], dict]:
    """Every embedding unit the plan still needs (cached shards and slides are none), each once, in plan
    order; and per model x dataset the units it planned first (its embedding cost)."""
    units, mine = {}, {}
    for model_id, dataset_id, cells in pairs(p):
        embedder = driver[model_id]
        needed = []
        for other_id, perturbation, seed in image_inputs(cells):
            dataset, manifest = p.datasets[other_id], p.manifests[other_id]
            shards = [Unit("embed-shard", model_id, other_id, perturbation, seed, first)
                      for first in embedder.pending_shards(dataset, manifest, perturbation, seed)]
            if shards:
                needed += shards + [Unit("assemble", model_id, other_id, perturbation, seed)]
        for tiling, items, _ in tile_inputs(cells, p):
            dataset, manifest = p.datasets[dataset_id], p.manifests[dataset_id]
            # a slide model's tiles are its patch encoder's: one unit per slide, whichever model asks for it
            owner = embedder.patch.spec.id if getattr(embedder, "patch", None) is not None and \
                not embedder.folder(dataset) else model_id
            needed += [Unit("embed-slide", owner, dataset_id, slide=path, tiling=tiling)
                       for path in embedder.pending_slides(dataset, manifest, tiling, items)]
        mine[(model_id, dataset_id)] = [u for u in needed if u not in units]
        units.update(dict.fromkeys(needed))
    return list(units), mine


def run(p, cfg, runtime: Runtime, cache, store, summary: Summary, artifacts: Path) -> None:
    """Submit every unit, then store each model x dataset's cells as its scoring task returns."""
    ray = _ray()
    settings = Settings(str(cache.root.parent.resolve()), runtime.device, runtime.precision, cfg.batch_size,
                        cfg.workers, cfg.threads)
    gpus = cfg.gpus_per_task if cfg.gpus_per_task is not None else (1.0 if runtime.device.startswith("cuda") else 0)
    retry = {"max_retries": cfg.max_retries, "retry_exceptions": False}
    embed = ray.remote(embed_unit).options(name="pathboard-embed", num_cpus=max(1, cfg.workers), num_gpus=gpus,
                                           **retry)
    assemble = ray.remote(embed_unit).options(name="pathboard-assemble", num_cpus=1, **retry)
    score = ray.remote(score_unit).options(name="pathboard-score", num_cpus=1, **retry)

    driver: dict = {}
    for _, _, cells in pairs(p):
        make_embedder(cells[0].model, p, runtime, cache, cfg.batch_size, cfg.workers, driver, lambda s, w: _NoModel())
    units, mine = plan_units(p, driver)
    box = [ray.put(p)]
    refs, shards = {}, {}  # unit -> ref; (model, dataset, perturbation, seed) -> refs of its shard units
    for unit in units:  # in plan order: one model after another, so a worker keeps its loaded model
        entry = (unit.model, unit.dataset, unit.perturbation, unit.seed)
        if unit.kind == "assemble":
            refs[unit] = assemble.remote(box, settings, unit, *shards.pop(entry, []))
        else:
            refs[unit] = embed.remote(box, settings, unit)
            if unit.kind == "embed-shard":
                shards.setdefault(entry, []).append(refs[unit])
    owner = {refs[u]: ("embed", str(u), pair) for pair, owned in mine.items() for u in owned}
    started = time.perf_counter()
    finished = {}  # (model, dataset) -> refs of its assembled images and embedded slides
    for unit in units:
        if unit.kind != "embed-shard":
            finished.setdefault((unit.model, unit.dataset), []).append(refs[unit])
    for pair in mine:  # scoring waits for the assembled images and the slides its cells read
        reads = dict.fromkeys([d for d, _, _ in image_inputs(_cells(p, pair))] + [pair[1]])
        embedders = [pair[0]] + ([p.patch_encoders[pair[0]].id] if pair[0] in p.patch_encoders else [])
        waits = [ref for d in reads for m in embedders for ref in finished.get((m, d), [])]  # a slide model: its
        # patch encoder's tiles too
        owner[score.remote(box, settings, *pair, str(artifacts), *waits)] = ("score", f"score {pair[0]} x {pair[1]}",
                                                                             pair)
    spent = {pair: [0, 0, 0.0, None, ""] for pair in mine}  # images, tiles, seconds, peak memory, its kind
    pending = list(owner)
    title = f"ray: {len(units)} embedding + {len(mine)} scoring unit(s)"
    with tqdm(total=len(pending), desc=title, unit="unit", disable=None) as bar:
        every = max(1, len(pending) // 10)  # without a terminal (a batch job's log): a line per tenth
        count = 0
        while pending:
            done, pending = ray.wait(pending, num_returns=min(len(pending), 256), timeout=1.0)
            with store.burst():  # what this wait returned is stored with the file held open: a transaction a cell
                for ref in done:
                    kind, label, pair = owner[ref]
                    bar.update(1)
                    bar.set_postfix_str(label[:60])
                    count += 1
                    if bar.disable and (count % every == 0 or count == len(owner)):
                        print(f"{title}: {count}/{len(owner)} done, last {label}", file=sys.stderr)
                    try:
                        result = ray.get(ref)
                    except Exception as exc:
                        if kind == "score":  # its own failure, or that of a unit it waited for: one line for the pair
                            pair_failed(summary, *pair, _cause(exc))
                        continue
                    if kind == "embed":
                        cost = spent[pair]
                        cost[0] += result["images"]
                        cost[1] += result["tiles"]
                        cost[2] += result["seconds"]
                        if result["peak"]:
                            cost[3], cost[4] = max(cost[3] or 0, result["peak"]), result["memory_kind"]
                        summary.image_forwards += result["forwards"]
                        timing.add(result["stages"])  # worker seconds, summed over tasks
                        continue
                    failed, outputs, stages = result
                    timing.add(stages)
                    if failed:
                        summary.failed_files.setdefault(pair[1], {}).update(failed)
                    for out in outputs:
                        store_cell(store, summary, pair[1], out)
                    images, tiles, seconds, peak, memory_kind = spent[pair]
                    summary.costs.append(store_cost(store, summary.run_id, driver[pair[0]], pair[1],
                                                    [images, tiles, seconds], time.perf_counter() - started,
                                                    SimpleNamespace(bytes=peak, kind=memory_kind), cfg.batch_size))


def _cells(p, pair) -> list:
    return next(cells for m, d, cells in pairs(p) if (m, d) == pair)


def _cause(exc: Exception) -> Exception:
    """The exception a task raised, not Ray's wrapper of it; a dead worker past its retries says so."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, Exception):
        return cause
    return PathboardError(f"a Ray task failed past its retries ({type(exc).__name__}: "
                          f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); raise --max-retries "
                          "or see `ray status`")
