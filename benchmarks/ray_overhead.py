"""What does `pathboard run --executor ray` cost besides the forward pass? Overheads measured on one local node.

    python benchmarks/ray_overhead.py [--tasks 500] [--cpus-per-task 1] [--results 64] [--result-mib 1]
                                      [--cells 200] [--items 2000] [--variant-cells 10] [--variants 100]
                                      [--batches 3] [--data-root DATA_ROOT]

On a local Ray cluster it starts itself (``ray.init(num_cpus=2, include_dashboard=False)``), in one run:
  a. per-task overhead: ``--tasks`` no-op remote tasks, called as ``distributed.py`` calls its embed units
     (the plan's box, Settings, a Unit) and returning an embed unit's small dict, all submitted at once and
     gathered as the driver gathers them (``ray.wait`` in batches of 256, then ``ray.get`` per ref):
     tasks/s and ms/task, against the same calls as a plain Python loop;
  b. result bandwidth: ``--results`` tasks each returning a float32 array of ``--result-mib`` MiB (a scored
     cell with its predictions is of that order), gathered and read at the driver: MB/s (1 MB = 1e6 bytes);
  c. the driver's DuckDB writes: ``pathboard.core.store.database.Store`` in a temporary folder, ``start_run`` then one
     ``add_cells`` transaction per scored cell, as ``store_cell`` does: ``--cells`` zero-shot-shaped cells
     (one variant, 12 metrics, predictions of ``--items`` items) and ``--variant-cells`` few-shot-shaped ones
     (``--variants`` variants of 12 metrics each): cells/s, variant rows/s and metric rows/s;
  d. embedding throughput of one Ray task's CPU: a random-init open_clip ViT-B-32-quickgelu (QuiltNet-B-32's
     architecture, real size) through ``pathboard.adapters.openclip.OpenCLIPModel`` on 224 px tensors,
     batch 32, one warm-up batch then ``--batches`` timed, with ``torch.set_num_threads(1)``: tiles/s;
  e. decoding on one core (in-process, no DataLoader workers), when the real samples are found
     (``--data-root``, else ``PATHBOARD_DATA``, else ``../shared/data``): LC25000 224 px JPEG patches through
     ``ImageFiles`` and the tiles of ``slides/CMU-1-Small-Region.svs`` at 0.5 µm/px through ``SlideTiles``,
     both with the model's preprocessing: images/s, and the compressed bytes per tile on disk.
Then a summary block with the ratios. Default sizes take about 1-2 minutes on 2 cores. Everything runs on
one machine: (b) is the local object store, not a network, and (c) a local disk.
"""
import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--tasks", type=int, default=500, help="no-op tasks for the per-task overhead")
ap.add_argument("--cpus-per-task", type=float, default=1, help="num_cpus of each no-op task")
ap.add_argument("--results", type=int, default=64, help="tasks returning --result-mib each")
ap.add_argument("--result-mib", type=float, default=1.0)
ap.add_argument("--cells", type=int, default=200, help="zero-shot-shaped cells stored, one transaction each")
ap.add_argument("--items", type=int, default=2000, help="predictions per zero-shot-shaped cell")
ap.add_argument("--variant-cells", type=int, default=10, help="few-shot-shaped cells stored, one transaction each")
ap.add_argument("--variants", type=int, default=100, help="variants per few-shot-shaped cell")
ap.add_argument("--batches", type=int, default=3, help="timed forward batches of 32 (after one warm-up)")
ap.add_argument("--data-root", type=Path, default=None)
args = ap.parse_args()

os.environ.setdefault("OMP_NUM_THREADS", "1")
import ray  # noqa: E402
import torch  # noqa: E402

from pathboard.core.engine.distributed import Settings, Unit  # noqa: E402
from pathboard.core.science.metrics import Metric  # noqa: E402
from pathboard.core.store.database import Store  # noqa: E402

figures: dict[str, float] = {}


def line(text: str) -> None:
    print(text, flush=True)


line(f"host: {os.cpu_count()} CPU core(s), load average at start {os.getloadavg()[0]:.2f}; torch {torch.__version__}, "
     f"ray {ray.__version__}")

# -- a. per-task overhead --------------------------------------------------------------------------------------


def noop_unit(box, settings, unit, *after) -> dict:
    """What an embed unit returns, without embedding anything."""
    return {"images": 0, "tiles": 0, "seconds": 0.0, "forwards": 0, "failed": None, "peak": None, "memory_kind": "rss"}


def gather(refs: list) -> list:
    """As ``distributed.run`` gathers: ``ray.wait`` up to 256 at a time, then ``ray.get`` per ref."""
    out, pending = [], list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=min(len(pending), 256), timeout=1.0)
        out += [ray.get(ref) for ref in done]
    return out


t0 = time.perf_counter()
ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
figures["ray_init_s"] = time.perf_counter() - t0
line(f"ray.init(num_cpus=2): {figures['ray_init_s']:.2f} s; cluster CPUs {ray.cluster_resources().get('CPU', 0):.0f}")

settings = Settings("/shared/cache", "cpu", "fp32", 64, 1)
box = [ray.put({"a plan": list(range(1000))})]  # the plan's ObjectRef, boxed as distributed.py boxes it
units = [Unit("embed-shard", "quiltnet-b32", "nct-crc-he-100k", first=i * 4096) for i in range(args.tasks)]
remote = ray.remote(noop_unit).options(name="bench-noop", num_cpus=args.cpus_per_task, max_retries=3,
                                       retry_exceptions=False)

t0 = time.perf_counter()
gather([remote.remote(box, settings, u) for u in units[:8]])  # starts the worker processes
figures["warmup_s"] = time.perf_counter() - t0
line(f"a. warm-up: first 8 tasks (worker processes starting) {figures['warmup_s']:.2f} s")

t0 = time.perf_counter()
refs = [remote.remote(box, settings, u) for u in units]
submit = time.perf_counter() - t0
results = gather(refs)
wall = time.perf_counter() - t0
assert len(results) == args.tasks and results[0]["forwards"] == 0
figures["tasks_per_s"] = args.tasks / wall
figures["ms_per_task"] = 1000 * wall / args.tasks
line(f"a. {args.tasks} no-op tasks (num_cpus={args.cpus_per_task:g}): submit {submit:.2f} s, submit+gather "
     f"{wall:.2f} s -> {figures['tasks_per_s']:.0f} tasks/s, {figures['ms_per_task']:.2f} ms/task")

t0 = time.perf_counter()
local = [noop_unit(box, settings, u) for u in units]
local_s = time.perf_counter() - t0
figures["local_us_per_call"] = 1e6 * local_s / args.tasks
figures["ray_over_local"] = wall / local_s
line(f"a. the same {args.tasks} calls as a local loop: {local_s * 1000:.3f} ms -> {figures['local_us_per_call']:.2f} "
     f"µs/call; ray / local = {figures['ray_over_local']:.0f}x")

# -- b. result bandwidth ---------------------------------------------------------------------------------------


def sized_result(i: int, n: int) -> np.ndarray:
    return np.full(n, float(i), dtype=np.float32)


n_floats = int(args.result_mib * 2**20 // 4)
big = ray.remote(sized_result).options(name="bench-result", num_cpus=1)
gather([big.remote(0, n_floats) for _ in range(2)])  # warm
t0 = time.perf_counter()
arrays = gather([big.remote(i, n_floats) for i in range(args.results)])
checksum = sum(float(a.sum(dtype=np.float64)) for a in arrays)  # reads every byte at the driver
wall = time.perf_counter() - t0
total = sum(a.nbytes for a in arrays)
assert checksum == n_floats * sum(range(args.results))
figures["result_MB_per_s"] = total / 1e6 / wall
figures["result_ms_per_task"] = 1000 * wall / args.results
line(f"b. {args.results} tasks x {args.result_mib:g} MiB float32 result: {total / 1e6:.1f} MB in {wall:.2f} s -> "
     f"{figures['result_MB_per_s']:.0f} MB/s at the driver ({figures['result_ms_per_task']:.1f} ms/task)")
del arrays

# -- c. the driver's DuckDB writes -----------------------------------------------------------------------------

METRICS = ["accuracy", "balanced_accuracy", "weighted_f1", "macro_f1", "kappa", "mcc", "top2_accuracy",
           "f1/ADI", "f1/LYM", "f1/NORM", "f1/STR", "f1/TUM"]
rng = np.random.default_rng(0)


def cell_row(task: str, variant: str, i: int) -> dict:
    """The columns ``score_cells`` stores for a cell (its ``common`` dict and variant)."""
    options = json.dumps({"seed": 0}, sort_keys=True)
    return {"model": "quiltnet-b32", "dataset": f"dataset-{i % 31}", "task": task, "prompt_mode": "single",
            "weights_fingerprint": "f" * 64, "weights_origin": "hf-hub:wisdomik/QuiltNet-B-32", "prompt_hash": "p" * 64,
            "manifest_hash": "m" * 64, "embedding_key": "e" * 64, "n_items": args.items, "n_failed": 0,
            "device": "cuda", "precision": "bf16", "task_options": options, "options_hash": "o" * 64,
            "protocol": json.dumps({"prompts": "p" * 64, "options": {"seed": 0}, "manifest": "m" * 64}),
            "protocol_hash": "h" * 64, "default_protocol": True, "variant": variant}


def metrics() -> list:
    return [Metric(name, float(v), float(v) - 0.02, float(v) + 0.02, args.items) for name, v in
            zip(METRICS, rng.random(len(METRICS)))]


items = [f"NORM/NORM-TCGA-{i:08d}.png" for i in range(args.items)]
with tempfile.TemporaryDirectory(prefix="pathboard-ray-bench-") as tmp:
    store = Store(Path(tmp) / "bench.duckdb")
    run_id = store.start_run(command="benchmarks/ray_overhead.py", device="cuda", precision="bf16", batch_size=64)
    zero_shot = [[(cell_row("zeroshot", "", i), metrics(), (),
                   (rng.integers(0, 9, args.items), rng.integers(0, 9, args.items), 9, False, items, None))]
                 for i in range(args.cells)]
    t0 = time.perf_counter()
    for entries in zero_shot:
        store.add_cells(run_id, entries)
    wall = time.perf_counter() - t0
    figures["zs_cells_per_s"] = args.cells / wall
    figures["zs_ms_per_cell"] = 1000 * wall / args.cells
    line(f"c. {args.cells} zero-shot-shaped cells (1 variant, {len(METRICS)} metrics, {args.items} predictions), "
         f"one add_cells each: {wall:.2f} s -> {figures['zs_cells_per_s']:.1f} cells/s "
         f"({figures['zs_ms_per_cell']:.1f} ms/transaction), "
         f"{figures['zs_cells_per_s'] * len(METRICS):.0f} metric rows/s")
    few_shot = [[(cell_row("fewshot", f"prototype/k={1 + v // 10}/draw={v % 10}", i), metrics(), (), None)
                 for v in range(args.variants)] for i in range(args.variant_cells)]
    t0 = time.perf_counter()
    for entries in few_shot:
        store.add_cells(run_id, entries)
    wall = time.perf_counter() - t0
    rows = args.variant_cells * args.variants
    figures["fs_cells_per_s"] = args.variant_cells / wall
    figures["fs_ms_per_cell"] = 1000 * wall / args.variant_cells
    figures["variant_rows_per_s"] = rows / wall
    figures["metric_rows_per_s"] = rows * len(METRICS) / wall
    line(f"c. {args.variant_cells} few-shot-shaped cells ({args.variants} variants x {len(METRICS)} metrics), one "
         f"add_cells each: {wall:.2f} s -> {figures['fs_cells_per_s']:.2f} cells/s "
         f"({figures['fs_ms_per_cell']:.0f} ms/transaction), {figures['variant_rows_per_s']:.0f} variant rows/s, "
         f"{figures['metric_rows_per_s']:.0f} metric rows/s")
    stored = store.query("SELECT count(*) AS n FROM cells")["n"][0]
    assert stored == args.cells + rows and store.committed == stored, (stored, store.committed)
    figures["db_bytes"] = (Path(tmp) / "bench.duckdb").stat().st_size
    line(f"c. database after {stored} cell rows: {figures['db_bytes'] / 2**20:.1f} MiB")

ray.shutdown()

# -- d. embedding throughput of one task's CPU -----------------------------------------------------------------

import open_clip  # noqa: E402

from pathboard.adapters.openclip import OpenCLIPModel  # noqa: E402
from pathboard.core.interfaces.model import Runtime  # noqa: E402

torch.set_num_threads(1)
torch.manual_seed(0)
runtime = Runtime.create("cpu")
net, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32-quickgelu", device="cpu")
model = OpenCLIPModel("bench", "-", net.eval(), preprocess, None, runtime)
batch = torch.randn(32, 3, 224, 224)
model.encode_images(batch)  # warm-up
t0 = time.perf_counter()
for _ in range(args.batches):
    feats = model.encode_images(batch)
wall = time.perf_counter() - t0
assert feats.shape[0] == 32
figures["tiles_per_s_1cpu"] = 32 * args.batches / wall
figures["shard_embed_s"] = 4096 / figures["tiles_per_s_1cpu"]
line(f"d. ViT-B-32 forward, fp32, 1 torch thread, batch 32: {32 * args.batches} tiles in {wall:.2f} s -> "
     f"{figures['tiles_per_s_1cpu']:.1f} tiles/s per CPU ({figures['shard_embed_s']:.0f} s per 4096-row shard)")

# -- e. decoding on one core -----------------------------------------------------------------------------------

shared = Path(__file__).resolve().parents[1] / "../shared/data"
root = args.data_root or Path(os.environ.get("PATHBOARD_DATA") or shared)
jpegs = sorted((root / "lung_colon_image_set" / "lung_image_sets").glob("*/*.jpeg"))
svs = root / "slides" / "CMU-1-Small-Region.svs"
if jpegs:
    from pathboard.core.embedding.embedder import ImageFiles

    files = ImageFiles(root, [str(p.relative_to(root)) for p in jpegs[:300]], preprocess)
    t0 = time.perf_counter()
    decoded = [files[i] for i in range(len(files))]
    wall = time.perf_counter() - t0
    assert all(err is None for _, _, err, _ in decoded)
    figures["jpeg_per_s_1core"] = len(files) / wall
    figures["jpeg_bytes"] = float(np.mean([p.stat().st_size for p in jpegs[:300]]))
    line(f"e. decode+preprocess {len(files)} LC25000 224 px JPEGs on 1 core: {wall:.2f} s -> "
         f"{figures['jpeg_per_s_1core']:.0f} img/s; {figures['jpeg_bytes'] / 1e3:.1f} KB per file on disk")
else:
    line(f"e. no LC25000 sample under {root}: JPEG decoding not measured")
if svs.is_file():
    from pathboard.core.embedding.embedder import SlideTiles
    from pathboard.core.media.tiling import Tiling, open_slide, tile_grid

    slide = open_slide(svs)
    grid = tile_grid(slide, Tiling())
    tiles = SlideTiles(svs, grid, 224, preprocess)
    t0 = time.perf_counter()
    for i in range(len(tiles)):
        tiles[i]
    wall = time.perf_counter() - t0
    width, height = slide.dimensions
    figures["wsi_tiles_per_s_1core"] = len(tiles) / wall
    figures["wsi_bytes_per_tile"] = svs.stat().st_size / (width * height / grid.size0 ** 2)
    line(f"e. read+preprocess {len(tiles)} tissue tiles of {svs.name} ({width}x{height}, tile {grid.size0} level-0 px) "
         f"on 1 core: {wall:.2f} s -> {figures['wsi_tiles_per_s_1core']:.0f} tiles/s; file bytes per tile area "
         f"{figures['wsi_bytes_per_tile'] / 1e3:.1f} KB")
else:
    line(f"e. no {svs} here: slide tile reading not measured")

# -- summary ---------------------------------------------------------------------------------------------------

f = figures
line("")
line(f"summary (one run, {os.cpu_count()} cores, load average at end {os.getloadavg()[0]:.2f})")
line(f"  ray task overhead        {f['ms_per_task']:8.2f} ms/task   {f['tasks_per_s']:8.0f} tasks/s   "
     f"({f['ray_over_local']:.0f}x a local call)")
line(f"  ray result bandwidth     {f['result_MB_per_s']:8.0f} MB/s      "
     f"({args.result_mib:g} MiB results, local object store)")
line(f"  duckdb zero-shot cells   {f['zs_ms_per_cell']:8.1f} ms/cell   {f['zs_cells_per_s']:8.1f} cells/s")
line(f"  duckdb few-shot cells    {f['fs_ms_per_cell']:8.0f} ms/cell   {f['variant_rows_per_s']:8.0f} variant rows/s   "
     f"{f['metric_rows_per_s']:.0f} metric rows/s")
line(f"  embed ViT-B-32, 1 CPU    {f['tiles_per_s_1cpu']:8.1f} tiles/s   "
     f"{f['shard_embed_s']:8.0f} s per 4096-row shard")
if "jpeg_per_s_1core" in f:
    line(f"  decode 224 px JPEG       {f['jpeg_per_s_1core']:8.0f} img/s per core "
         f"({f['jpeg_bytes'] / 1e3:.1f} KB/file)")
if "wsi_tiles_per_s_1core" in f:
    line(f"  read WSI tiles (svs)     {f['wsi_tiles_per_s_1core']:8.0f} tiles/s per core "
         f"({f['wsi_bytes_per_tile'] / 1e3:.1f} KB/tile on disk)")
line(f"  ray overhead / CPU embedding time of one shard unit = {f['ms_per_task'] / 1000 / f['shard_embed_s']:.1e}")
line(f"  ray overhead / one batch of 32 tiles embedded here  = "
     f"{f['ms_per_task'] / 1000 / (32 / f['tiles_per_s_1cpu']):.1e}")
