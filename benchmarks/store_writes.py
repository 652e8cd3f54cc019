"""What storing results costs the driver, the one process that writes the database.

    python benchmarks/store_writes.py [--cells 400] [--items 2000] [--fewshot-cells 40] [--variants 100]
                                      [--comparisons 30000] [--per-burst 32] [--repeats 5]

In a temporary folder, ``pathboard.core.store.Store`` stores, as the Ray driver does (one transaction per
cell; the cells of every scoring unit that one ``ray.wait`` returned in one :meth:`Store.burst`):
  a. ``--cells`` zero-shot-shaped cells: 1 variant, 12 metrics, predictions of ``--items`` items (15 models' cells
     a dataset, each dataset's cells naming its items and their true labels);
  b. ``--fewshot-cells`` few-shot-shaped cells: ``--variants`` variants of 12 metrics each;
  c. ``--comparisons`` paired-comparison rows, replaced in one transaction as every run ends;
then d. times the leaderboard's main read (``queries.load_measured``) on the result, median of ``--repeats``.
Each figure is printed beside its goal (issue 24): >= 100 zero-shot cells/s, >= 50,000 result rows/s.
A warm-up cell first (the schema), and a warm-up Arrow insert (importing pyarrow, and pandas, which DuckDB
loads to read Arrow), so the figures are of a running driver.
"""
import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from pathboard.core.science.metrics import Metric
from pathboard.core.store import Store, queries
from pathboard.core.store.database import ARROW_ROWS

ap = argparse.ArgumentParser()
ap.add_argument("--cells", type=int, default=400, help="zero-shot-shaped cells")
ap.add_argument("--items", type=int, default=2000, help="predictions per zero-shot-shaped cell")
ap.add_argument("--fewshot-cells", type=int, default=40, help="few-shot-shaped cells")
ap.add_argument("--variants", type=int, default=100, help="variants per few-shot-shaped cell")
ap.add_argument("--comparisons", type=int, default=30000, help="paired-comparison rows")
ap.add_argument("--per-burst", type=int, default=32, help="cells stored in one burst (what one ray.wait returned)")
ap.add_argument("--repeats", type=int, default=5)
args = ap.parse_args()

METRICS = ["accuracy", "balanced_accuracy", "weighted_f1", "macro_f1", "cohen_kappa", "auroc", "ece", "brier",
           "recall/ADI", "recall/LYM", "recall/NORM", "recall/TUM"]
rng = np.random.default_rng(0)


def row(task: str, variant: str, i: int) -> dict:
    """The columns score_cell stores for a cell."""
    return {"model": f"model-{i % 15}", "dataset": f"dataset-{i // 15 % 35}", "task": task, "prompt_mode": "single",
            "weights_fingerprint": "f" * 64, "weights_origin": "hf-hub:org/model", "prompt_hash": "p" * 64,
            "manifest_hash": "m" * 64, "embedding_key": "e" * 64, "n_items": args.items, "n_failed": 0,
            "device": "cuda", "precision": "bf16", "task_options": json.dumps({"seed": 0}), "options_hash": "o" * 64,
            "protocol": json.dumps({"prompts": "p" * 64}), "protocol_hash": "h" * 64, "default_protocol": True,
            "cell_key": f"k{i}", "pack": None, "variant": variant}


def metrics() -> list:
    return [Metric(name, float(v), float(v) - 0.02, float(v) + 0.02, args.items) for name, v in
            zip(METRICS, rng.random(len(METRICS)))]


def store_units(store: Store, run_id: str, cells: list, per_burst: int | None = None) -> float:
    """Store ``cells`` (each a list of add_cells entries), ``per_burst`` (``--per-burst``) per burst; seconds."""
    per_burst = per_burst or args.per_burst
    start = time.perf_counter()
    for first in range(0, len(cells), per_burst):
        with store.burst():
            for entries in cells[first:first + per_burst]:
                store.add_cells(run_id, entries)
    return time.perf_counter() - start


def items(i: int) -> list[str]:
    """The item ids of cell ``i``'s dataset: every model's cell of one dataset names the same ones, as in a run."""
    return [f"dataset-{i // 15 % 35}/TUM/TUM-TCGA-{j:08d}.tif" for j in range(args.items)]


def truth(i: int) -> np.ndarray:
    """The true labels of cell ``i``'s dataset's items (the same for every model's cell, as in a run)."""
    return np.random.default_rng(i // 15 % 35).integers(0, 9, args.items)


with tempfile.TemporaryDirectory(prefix="pathboard-store-bench-") as tmp:
    store = Store(Path(tmp) / "bench.duckdb")
    run_id = store.start_run(command="benchmarks/store_writes.py", device="cuda", precision="bf16", batch_size=64)
    store_units(store, run_id, [[(row("fewshot", f"warm/{v}", -1), metrics(), (), None) for v in range(100)]])
    store.replace_comparisons([["a", "b", "m", "n", "d", "t", "", "", "x", 0.0, 0.0, 0.0, 1, False, 1.0, 1.0, 1, ""]]
                              * ARROW_ROWS)  # the Arrow path once; replaced below

    zero_shot = [[(row("zeroshot", "", i), metrics(), (),
                   (truth(i), rng.integers(0, 9, args.items), 9, False, items(i), None))]
                 for i in range(args.cells)]
    alone = zero_shot[:len(zero_shot) // 4]  # the file opened and closed for every cell, as before bursts
    wall = store_units(store, run_id, alone, per_burst=1)
    print(f"a. {len(alone)} zero-shot cells (12 metrics, {args.items} predictions each), the file opened for each: "
          f"{wall:.2f} s -> {len(alone) / wall:.0f} cells/s ({1000 * wall / len(alone):.1f} ms/cell)")
    before = len(alone) / wall
    wall = store_units(store, run_id, zero_shot[len(alone):])
    zs = (len(zero_shot) - len(alone)) / wall
    print(f"a. {len(zero_shot) - len(alone)} more, {args.per_burst} per burst: {wall:.2f} s -> {zs:.0f} cells/s "
          f"({1000 / zs:.1f} ms/cell, {zs / before:.1f}x); goal >= 100: {'met' if zs >= 100 else 'NOT met'}")

    few_shot = [[(row("fewshot", f"prototype/k={1 + v // 5}/draw={v % 5}", i), metrics(), (), None)
                 for v in range(args.variants)] for i in range(args.fewshot_cells)]
    wall = store_units(store, run_id, few_shot)
    rows = args.fewshot_cells * args.variants * len(METRICS)
    rate = rows / wall
    print(f"b. {args.fewshot_cells} few-shot cells ({args.variants} variants x {len(METRICS)} metrics): "
          f"{wall:.2f} s -> {rate:,.0f} result rows/s ({1000 * wall / args.fewshot_cells:.1f} ms/cell); "
          "goal >= 50,000: "
          f"{'met' if rate >= 50_000 else 'NOT met'}")

    comparisons = [[f"a{i}", f"b{i}", "model-1", "model-2", f"dataset-{i % 35}", "zeroshot", "", "single",
                    METRICS[i % len(METRICS)], float(d), float(d) - 0.05, float(d) + 0.05, args.items, bool(d > 0.03),
                    0.04, 0.2, None, "h" * 64] for i, d in enumerate(rng.normal(0, 0.05, args.comparisons))]
    start = time.perf_counter()
    store.replace_comparisons(comparisons)
    wall = time.perf_counter() - start
    print(f"c. {args.comparisons:,} paired comparisons replaced in one transaction: {wall:.2f} s -> "
          f"{args.comparisons / wall:,.0f} rows/s")

    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        frame = queries.load_measured(store.path)
        times.append(time.perf_counter() - start)
    print(f"d. the leaderboard's read ({len(frame):,} newest result rows) (queries.load_measured): median "
          f"{statistics.median(times):.2f} s over {args.repeats} (min {min(times):.2f}, max {max(times):.2f})")
