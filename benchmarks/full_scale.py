"""A dry run of the whole benchmark: everything pathboard does besides the forward pass, at the real sizes.

    python benchmarks/full_scale.py [--scale 0.01] [--models 3] [--gpu-img-s 2000] [--workers 1] [--keep DIR]

The whole benchmark is 15 models x (~1.09 x 10^6 patches in 12 sets of 5k-400k + 3,000 slides of ~10^4 tissue
tiles). That does not fit a 2-core machine, so this script builds it scaled down, runs it, and extrapolates:
  - 12 patch sets of the real sizes x ``--scale`` (4 classes, 64 px JPEGs, ``folder:`` sets), and three
    ``slides-csv:`` sets of pyramidal TIFFs at 0.5 µm/px, all tissue (half train, half test): ``--slides``
    slides of ``--tiles`` tiles, 3x as many slides, and as many slides of twice the tiles, so that slide
    scoring's growth with slides and with tiles can be told apart;
  - ``--models`` synthetic models, registered as a plugin is: a fixed random projection of the pixels (and
    of a hash of each prompt), so the forward pass costs almost nothing and what is timed is the rest;
  - ``pathboard run``'s own code (plan and execute, in this process) over every default task, patches and
    slides apart; each prints the run's stage seconds (:mod:`pathboard.core.timing`);
  - then each leaderboard view's script on the resulting database (Streamlit's AppTest, no browser).

Each stage is extrapolated to the full benchmark by what its cost grows with (printed beside it): items for
manifests and scoring, tiles for slide scoring, slides for tiling plans, models for loading and storing (the
datasets and tasks per model are the same at full size), models x items for the paired comparisons (each model's
bootstrap resamples are scored once per cell group; a pair only subtracts two models' resamples). Their sum is set
against the forward time at ``--gpu-img-s`` images/s on one GPU (an assumption: this machine has none), 4.7 x 10^8
forwards for the whole benchmark. The embedding stages are the forward's own (decoding and caching overlap it in the
DataLoader's workers) and are shown, not counted. Near-duplicate grouping does not run on ``folder:`` sets: its
figure comes from ``benchmarks/grouping.py`` (LC25000's 25,000 images, the only sets that group), and says so.
Few-shot's k-shot probe fits are counted per cell (they do not grow with the set); its k = all probe is timed apart,
and measured again on synthetic pools of 8,000-128,000 items (the dry run's pools share one solver run, the real
ones do not) and fitted as c x items^g. Few-shot WSI's ABMIL and mean pooling are timed apart too: training per step
(its steps stop growing at k = 16, which the dry run's few slides never reach, so a fit per slide would run on),
prediction per model and tile, pooling per tile (a per-tile term fitted over three small sets extrapolates noise);
the rest of the task is fitted as a + b x slides. The prediction is counted two ways: on this CPU core, and on the
GPU, where a GPU run predicts (``CellContext.device``), at ``--gpu-abmil-ms`` per 10^4-tile bag for a cell's 25
models (an assumption; ``benchmarks/abmil_device.py`` measures it on a machine with one). Goals (issue 24): the
non-forward share <= 5% at 2,000 img/s; every view loads in <= 2 s.
"""
from __future__ import annotations

import argparse
import atexit
import csv
import logging
import os
import shutil
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--scale", type=float, default=0.01, help="fraction of the real patch sets built")
ap.add_argument("--slides", type=int, default=6, help="slides of the smallest slide set (the sets: S, 3S, S)")
ap.add_argument("--tiles", type=int, default=576, help="tissue tiles a slide (the sets: t, t, 2t)")
ap.add_argument("--models", type=int, default=3, help="synthetic models run (the real benchmark has 15)")
ap.add_argument("--gpu-img-s", type=float, default=2000.0, help="assumed forward throughput of one GPU")
ap.add_argument("--gpu-abmil-ms", type=float, default=5.0,
                help="assumed milliseconds for 25 ABMIL models' pass over one 10^4-tile bag on that GPU: ~65 GFLOP "
                     "at ~25 TFLOP/s, and copying the bag's 20 MB")
ap.add_argument("--workers", type=int, default=1, help="decoding processes")
ap.add_argument("--keep", type=Path, default=None, help="build and keep everything in this folder")
args = ap.parse_args()

#: the real benchmark's patch sets (items), 5k-400k, ~1.09 x 10^6 in all
PATCH_SETS = [5_000, 7_180, 10_000, 15_000, 25_000, 30_000, 50_000, 100_000, 100_000, 150_000, 200_000, 400_000]
SLIDES, TILES, MODELS = 3_000, 10_000, 15
FORWARDS = MODELS * (sum(PATCH_SETS) + SLIDES * TILES)
#: ABMIL models a few-shot WSI cell trains (k = 1, 2, 4, 8, 16 x 5 draws), each run over every test slide's tiles
#: (half the slides)
ABMIL_MODELS, TEST_SLIDES = 25, SLIDES // 2
#: grouping on the full LC25000 (15,000 lung + 10,000 colon images) from benchmarks/grouping.py's first run of
#: 15,000 LC25000-size files (`time: grouping` 15.0 s: reading, hashing, candidates), linear in images
GROUPING_S = 15.0 * 25_000 / 15_000
CLASSES = ["alpha", "beta", "gamma", "delta"]
#: embedding width (CONCH, PLIP, QuiltNet and BiomedCLIP embed in 512 dimensions); the synthetic model reads images
#: at SIDE x SIDE
DIM, SIDE = 512, 16


# -- the synthetic model: a plugin like any other --------------------------------------------------------------

from pathboard.api import EmbeddingModel, ModelCard, ModelSpec, Weights, hookimpl  # noqa: E402


def preprocess(img):  # module level: picklable for the DataLoader's workers
    import torch

    return torch.from_numpy(np.asarray(img.convert("RGB").resize((SIDE, SIDE)), dtype=np.float32).transpose(2, 0, 1)
                            / 255.0)


class Projection(EmbeddingModel):
    def __init__(self, id: str, seed: int):
        import torch

        self.id, self.fingerprint, self.preprocess = id, f"synthetic-{seed}", preprocess
        self.matrix = torch.from_numpy(np.random.default_rng(seed).normal(size=(3 * SIDE * SIDE, DIM))
                                       .astype(np.float32))
        self.seed = seed

    @property
    def logit_scale(self) -> float:
        return 100.0

    def encode_images(self, batch):
        import torch

        return torch.nn.functional.normalize(batch.flatten(1) @ self.matrix, dim=-1)

    def encode_texts(self, texts):
        import torch

        rows = [np.random.default_rng([self.seed, zlib.crc32(t.encode())]).normal(size=DIM) for t in texts]
        return torch.nn.functional.normalize(torch.from_numpy(np.asarray(rows, dtype=np.float32)), dim=-1)


@dataclass
class ProjectionSpec(ModelSpec):
    seed: int = 0
    folder: str = ""

    def resolve(self, override=None) -> Weights:
        path = Path(self.folder) / f"{self.id}.seed"
        path.write_text(str(self.seed))
        return Weights(path, "synthetic")

    def load(self, weights, runtime):
        return Projection(self.id, self.seed)


class SyntheticModels:
    def __init__(self, folder: Path, n: int):
        self.specs = [ProjectionSpec(f"synthetic-{i}", ModelCard(title=f"random projection {i}"), seed=i,
                                     folder=str(folder)) for i in range(n)]

    @hookimpl
    def register_models(self, register):
        for spec in self.specs:
            register(spec)


# -- synthetic data at the real sizes x scale ------------------------------------------------------------------


def patch_sets(root: Path, rng) -> list[str]:
    ids = []
    for i, size in enumerate(PATCH_SETS):
        n = max(len(CLASSES) * 4, round(size * args.scale))
        folder = root / f"patches-{i:02d}-{size}"
        for cls in CLASSES:
            (folder / cls).mkdir(parents=True, exist_ok=True)
        for j in range(n):
            cls = CLASSES[j % len(CLASSES)]
            tone = np.array([60 + 40 * CLASSES.index(cls), 90, 160], dtype=np.int16)
            pixels = np.clip(tone + rng.integers(-60, 60, (64, 64, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / cls / f"{j:07d}.jpg", quality=85)
        ids.append(f"folder:{folder}")
    return ids


def slide_set(root: Path, rng, slides: int, tiles: int, name: str) -> tuple[str, int]:
    import tifffile

    side = int(np.ceil(np.sqrt(tiles))) * 224  # at 0.5 µm/px a 224 px tile is one tile of the default tiling
    rows = []
    for i in range(slides):
        path = root / name / f"slide-{i:05d}.tif"
        path.parent.mkdir(parents=True, exist_ok=True)
        cls = CLASSES[i % 2]
        img = np.clip(np.array([150 + 30 * (i % 2), 80, 170]) + rng.integers(-50, 50, (side, side, 3)), 0, 255)
        img = img.astype(np.uint8)
        with tifffile.TiffWriter(path) as tw:
            for level in range(3):
                tw.write(img[::2**level, ::2**level], tile=(256, 256), photometric="rgb", compression="zlib",
                         subfiletype=1 if level else 0, resolution=(1e4 / 0.5 * 2**-level,) * 2,
                         resolutionunit="CENTIMETER")
        rows.append([str(path.relative_to(root)), cls, "train" if i % 4 < 2 else "test"])
    table = root / f"{name}.csv"
    with open(table, "w", newline="") as fh:
        csv.writer(fh).writerows([["slide_path", "label", "split"], *rows])
    return f"slides-csv:{table.resolve()}", (side // 224) ** 2


# -- run -------------------------------------------------------------------------------------------------------


def run(models: str, datasets: str, db: Path, cache: Path) -> tuple[dict[str, float], list[dict]]:
    from pathboard.core.engine.plan import RunConfig, plan
    from pathboard.core.engine.run import execute

    cfg = RunConfig(models=models, datasets=datasets, db=str(db), cache_dir=str(cache), device="cpu",
                    workers=args.workers, batch_size=256)
    start = time.perf_counter()
    summary = execute(plan(cfg), cfg)
    if summary.errors:
        sys.exit(f"the dry run failed: {summary.errors[:3]}")
    print(f"  {len(summary.cells)} cell rows stored in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return summary.seconds, [c for c in summary.cells if c["seconds"]]


#: "train" / "predict" / "pool" -> (model, dataset) -> [seconds, work] of few-shot WSI's ABMIL and mean pooling in
#: that cell: training steps (``abmil_fit``), models x tiles of the test slides (``abmil_classify``), tiles pooled
#: into slide embeddings (``CellContext.slide_matrix``)
ABMIL: dict[str, dict[tuple[str, str], list[float]]] = {"train": {}, "predict": {}, "pool": {}}


def time_abmil() -> None:
    """Time few-shot WSI's ABMIL apart from the rest of its cells. Training grows with its steps, which stop growing
    at k = 16 (the dry run's few slides never get there, so a fit per slide would run on), and prediction with models
    x test tiles, which the dry run's small slides barely show; a GPU run predicts on the GPU."""
    from pathboard.core.interfaces.task import CellContext
    from pathboard.core.science import abmil
    from pathboard.plugins.tasks import fewshot_wsi

    fit_one, classify, score, cell = fewshot_wsi.abmil_fit, fewshot_wsi.abmil_classify, fewshot_wsi.FewShotWSI.score, \
        [("", "")]
    pool = CellContext.slide_matrix

    def timed(kind, work, call):
        start = time.perf_counter()
        out = call()
        spent = ABMIL[kind].setdefault(cell[0], [0.0, 0.0])
        spent[0] += time.perf_counter() - start
        spent[1] += work
        return out

    def fitted(support, y, classes, seed):
        steps = max(abmil.MIN_STEPS, abmil.EPOCHS * len(support))
        return timed("train", steps, lambda: fit_one(support, y, classes, seed))

    def predicted(models, test, device="cpu"):
        return timed("predict", len(models) * sum(len(bag) for bag in test), lambda: classify(models, test, device))

    def pooled(self, paths):  # few-shot WSI's only work that grows with tiles besides ABMIL
        if cell[0] != (self.model_id, self.dataset.id) or self.slides is not None:
            return pool(self, paths)
        return timed("pool", sum(len(self.tiles[p].embeddings) for p in paths), lambda: pool(self, paths))

    def scored(self, ctx):
        cell[0] = (ctx.model_id, ctx.dataset.id)
        try:
            return score(self, ctx)
        finally:
            cell[0] = ("", "")

    fewshot_wsi.abmil_fit, fewshot_wsi.abmil_classify, fewshot_wsi.FewShotWSI.score = fitted, predicted, scored
    CellContext.slide_matrix = pooled


#: (model, dataset) -> [(seconds, support items)] of few-shot's linear-probe fits in that cell, in order: the k-shot
#: draws', then k = all's (the whole pool)
PROBES: dict[tuple[str, str], list[tuple[float, int]]] = {}
#: pool sizes at which the k = all probe is timed apart (the dry run's pools are far smaller than the real ones)
PROBE_SIZES = (8_000, 32_000, 128_000)


def time_probes() -> None:
    """Time few-shot's linear-probe fits apart from the rest of its cells. The k-shot draws' (<= 16 items a class)
    cost the same whatever the set's size. The k = all fit's pool is the whole training pool: the dry run's pools
    (<= ~1,000 items) fit one solver run, the real ones (up to ~200,000) do not, and the cost per item differs."""
    from pathboard.plugins.tasks import fewshot

    probe, score, cell = fewshot.linear_probe_classifier, fewshot.FewShot.score, [("", "")]

    def timed(x, y, classes, seed):
        start = time.perf_counter()
        out = probe(x, y, classes, seed)
        PROBES.setdefault(cell[0], []).append((time.perf_counter() - start, len(x)))
        return out

    def scored(self, ctx):
        cell[0] = (ctx.model_id, ctx.dataset.id)
        return score(self, ctx)

    fewshot.linear_probe_classifier, fewshot.FewShot.score = timed, scored


def probe_at_size() -> tuple[list[float], float, float]:
    """(seconds at each of :data:`PROBE_SIZES`, c, g): the k = all probe (``linear_probe_classifier``, one thread) on
    pools of those sizes, L2-normalised as few-shot fits them: DIM-dimensional, len(CLASSES) Gaussian classes a
    linear probe fits to ~94% of the pool; and seconds = c x items^g fitted through them."""
    from threadpoolctl import threadpool_limits

    from pathboard.api import linear_probe_classifier

    rng = np.random.default_rng(1)
    centres = rng.normal(size=(len(CLASSES), DIM)) * 0.12
    seconds = []
    for n in PROBE_SIZES:
        y = rng.integers(0, len(CLASSES), n)
        x = (centres[y] + rng.normal(size=(n, DIM))).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        with threadpool_limits(1):  # one core's seconds (the probe uses every BLAS thread for large pools)
            start = time.perf_counter()
            linear_probe_classifier(x, y, np.arange(len(CLASSES)), 0)
            seconds.append(time.perf_counter() - start)
    g, log_c = np.polyfit(np.log(PROBE_SIZES), np.log(seconds), 1)
    return seconds, float(np.exp(log_c)), float(g)


def abmil_steps(n_classes: int) -> int:
    """Training steps of a full-size few-shot WSI cell's ABMIL models: k = 1, 2, 4, 8, 16 x 5 draws, each
    ``max(MIN_STEPS, EPOCHS x k x classes)``."""
    from pathboard.core.science import abmil
    from pathboard.plugins.tasks.fewshot_wsi import DRAWS, MAX_K, shot_counts

    return DRAWS * sum(max(abmil.MIN_STEPS, abmil.EPOCHS * k * n_classes) for k in shot_counts(MAX_K))


def fit(cells: list[dict], sizes) -> dict[tuple, np.ndarray]:
    """Per task and prompt mode, the coefficients (>= 0) of scoring seconds = a + b . sizes(cell), by
    non-negative least squares over the cells."""
    from scipy.optimize import nnls

    out = {}
    for key in dict.fromkeys((c["task"], c["prompt_mode"]) for c in cells):
        mine = [c for c in cells if (c["task"], c["prompt_mode"]) == key]
        x = np.array([[1.0, *sizes(c)] for c in mine])
        scale = x.max(axis=0)  # conditioning: the columns differ by orders of magnitude
        out[key] = nnls(x / scale, np.array([c["seconds"] for c in mine]))[0] / scale
    return out


def main() -> None:
    work = args.keep or Path(tempfile.mkdtemp(prefix="pathboard-full-scale-"))
    if args.keep is None:  # a few GB of synthetic data and cache: kept only when asked
        atexit.register(shutil.rmtree, work, True)
    data, weights = work / "data", work / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    os.environ["PATHBOARD_CACHE"] = str(work / "cache")
    # what the tasks import on first use (1-2 s once per process) would land on whichever cell came first and
    # skew the per-item fits: imported before any clock runs
    import scipy.optimize  # noqa: F401
    import skimage.filters  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import sklearn.model_selection  # noqa: F401

    from pathboard.core.engine import plugins

    plugins.plugin_manager().register(SyntheticModels(weights, args.models), name="benchmark:synthetic-models")
    plugins.registry.cache_clear()
    time_abmil()
    time_probes()
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    patches = patch_sets(data, rng)
    # three slide sets: S slides of t tiles, 3S of t, S of 2t: scoring's growth with slides and with tiles apart.
    # Not scaled down below 576 tiles a slide: few-shot WSI trains on at most 512 tiles of a slide a step
    # (abmil.TRAIN_TILES), so only slides past that grow as real ones (10^4 tiles) do
    s, t = args.slides, args.tiles
    sets = [slide_set(data, rng, n, tiles, name) for n, tiles, name in
            ((s, t, "slides-a"), (3 * s, t, "slides-b"), (s, 2 * t, "slides-c"))]
    tiles_of = {f"{i}": tiles for i, tiles in sets}  # dataset id -> tiles per slide
    slides, tiles = 5 * s, f"{min(tiles_of.values())}-{max(tiles_of.values())}"
    n_patches = sum(len(list(Path(p[7:]).rglob("*.jpg"))) for p in patches)
    print(f"built {n_patches:,} patches in {len(patches)} sets and {slides} slides of {tiles} tiles in "
          f"{time.perf_counter() - start:.0f} s under {work}", file=sys.stderr)
    models = ",".join(f"synthetic-{i}" for i in range(args.models))
    db = work / "pb.duckdb"
    print("patch sets:", file=sys.stderr)
    patch_s, patch_cells = run(models, ",".join(patches), db, work / "cache")
    print("slides:", file=sys.stderr)
    slide_s, slide_cells = run(models, ",".join(tiles_of), db, work / "cache")

    for c in slide_cells:  # the rest of few-shot WSI is fitted below; its ABMIL is counted apart
        if c["task"] == "fewshot-wsi":
            c["seconds"] -= sum(ABMIL[kind].get((c["model"], c["dataset"]), [0.0])[0] for kind in ABMIL)
    for c in patch_cells:  # the rest of few-shot is fitted below; its probe fits are counted apart
        if c["task"] == "fewshot":
            c["seconds"] -= sum(spent for spent, _ in PROBES.get((c["model"], c["dataset"]), []))
    k_all_fits = [fits[-1] for fits in PROBES.values()]  # each cell's last: k = all
    probe_s, probe_items = (sum(fit[i] for fit in k_all_fits) for i in (0, 1))
    shots_s = sum(spent for fits in PROBES.values() for spent, _ in fits[:-1])
    # the same per cell at any size, once k reaches 16 (5 k x 5 draws): from the cells whose pools reach it
    full_k = [fits[:-1] for fits in PROBES.values() if len(fits) - 1 == 25] or [f[:-1] for f in PROBES.values()]
    per_cell = sum(spent for fits in full_k for spent, _ in fits) / max(len(full_k), 1)
    k_shot = per_cell * MODELS * len(PATCH_SETS)
    pooled = probe_items / sum(c["n_items"] for c in patch_cells if c["task"] == "fewshot")  # pool / set
    print("timing the k = all probe at " + ", ".join(f"{n:,}" for n in PROBE_SIZES) + " items ...", file=sys.stderr)
    sized_s, probe_c, probe_g = probe_at_size()
    k_all = MODELS * sum(probe_c * (pooled * n) ** probe_g for n in PATCH_SETS)
    (trained_s, steps), (predicted_s, model_tiles) = (
        [sum(v[i] for v in ABMIL[kind].values()) for i in (0, 1)] for kind in ("train", "predict"))
    # the full benchmark's slides as one set per model, as the fits below take them
    abmil_train = trained_s / max(steps, 1) * MODELS * abmil_steps(len(CLASSES))
    abmil_cpu = predicted_s / max(model_tiles, 1) * MODELS * TEST_SLIDES * ABMIL_MODELS * TILES
    abmil_gpu = MODELS * TEST_SLIDES * args.gpu_abmil_ms / 1e3

    m = MODELS / args.models
    items = sum(PATCH_SETS) / n_patches
    slide_n = SLIDES / slides
    # scoring: a + b x items per cell of each task, fitted over the 12 sets (slides: a + b x tiles, over the two)
    per_patch = fit(patch_cells, lambda c: [c["n_items"]])
    per_slide = fit(slide_cells, lambda c: [c["n_items"], c["n_items"] * tiles_of[c["dataset"]]])
    # few-shot WSI's work that grows with tiles (ABMIL, pooling) is counted apart: the rest is a + b x slides (a
    # per-tile term fitted over three small sets would extrapolate tens of ms of noise to thousands of seconds)
    wsi = [c for c in slide_cells if c["task"] == "fewshot-wsi"]
    if wsi:
        per_slide[("fewshot-wsi", wsi[0]["prompt_mode"])] = np.append(fit(wsi, lambda c: [c["n_items"]])[
            ("fewshot-wsi", wsi[0]["prompt_mode"])], 0.0)
    pool_s, pool_tiles = (sum(v[i] for v in ABMIL["pool"].values()) for i in (0, 1))
    pooling = pool_s / max(pool_tiles, 1) * MODELS * SLIDES * TILES  # every slide pooled once a cell
    scoring = MODELS * (sum(a * len(PATCH_SETS) + b * sum(PATCH_SETS) for a, b in per_patch.values())
                        + sum(a + b * SLIDES + c * SLIDES * TILES for a, b, c in per_slide.values()))
    # stage -> (grows with, factor for the patch run, factor for the slide run)
    growth = {"manifests": ("items", items, slide_n), "tiling plans": ("slides (once: cached)", 0, slide_n),
              "model load": ("models", m, m), "prompt encoding": ("models x datasets", m, m),
              "scoring": ("a + b x items per cell, fitted per task", 0, 0),
              "storing": ("models", m, m), "comparisons": ("models x items", m * items, m * slide_n),
              "rankings": ("models", m, m)}
    forward_s = FORWARDS / args.gpu_img_s
    print(f"\nscale {args.scale:g}: {n_patches:,} patches, {slides} slides x {tiles} tiles, {args.models} models "
          f"(full: {sum(PATCH_SETS):,} patches, {SLIDES:,} x {TILES:,} tiles, {MODELS} models)")
    print(f"{'stage':<16}{'measured s':>11}{'x patches':>11}{'x slides':>10}{'full s':>10}  grows with")
    total = 0.0
    for stage, (grows, fp, fs) in growth.items():
        a, b = patch_s.get(stage, 0.0), slide_s.get(stage, 0.0)
        full = scoring if stage == "scoring" else a * fp + b * fs
        total += full
        factors = f"{'fitted':>11}{'fitted':>10}" if stage == "scoring" else f"{fp:11.0f}{fs:10.0f}"
        print(f"{stage:<16}{a + b:11.2f}{factors}{full:10.0f}  {grows}")
    total += GROUPING_S
    print(f"{'grouping':<16}{'-':>11}{'':>11}{'':>10}{GROUPING_S:10.0f}  images (benchmarks/grouping.py: "
          f"LC25000's 25,000; not run here)")
    for stage in ("image embedding", "tile embedding"):
        print(f"{stage:<16}{patch_s.get(stage, 0.0) + slide_s.get(stage, 0.0):11.2f}  the forward's own stage: "
              "decoding and caching overlap it; not counted")
    total += abmil_train
    print("of scoring's measured seconds, counted apart: few-shot's linear-probe fits, and few-shot WSI's ABMIL and "
          "pooling:")
    total += k_shot + k_all + pooling
    print(f"{'WSI pooling':<16}{pool_s:11.2f}{'':>11}{'':>10}{pooling:10.0f}  tiles "
          f"({pool_s / max(pool_tiles, 1) * 1e9:.0f} ns a tile: few-shot WSI's mean of each slide's tiles; full: "
          f"{MODELS} x {SLIDES:,} x {TILES:,})")
    print(f"{'k-shot probes':<16}{shots_s:11.2f}{'':>11}{'':>10}{k_shot:10.0f}  cells ({per_cell:.2f} s a cell of k = "
          f"1-16 x 5 draws, {len(full_k)} cells; <= 16 items a class whatever the set's size)")
    print(f"{'k = all probe':<16}{probe_s:11.2f}{'':>11}{'':>10}{k_all:10.0f}  c x pool^g per set: "
          + ", ".join(f"{s:.1f} s at {n:,}" for s, n in zip(sized_s, PROBE_SIZES))
          + f" items (g = {probe_g:.2f}, one core; here {probe_s / max(probe_items, 1) * 1e3:.2f} ms/item in pools "
          f"of <= {max((fit[1] for fit in k_all_fits), default=0):,}); pools {pooled:.0%} of each set")
    print(f"{'ABMIL trains':<16}{trained_s:11.2f}{'':>11}{'':>10}{abmil_train:10.0f}  steps "
          f"({trained_s / max(steps, 1) * 1e3:.1f} ms a step of <= 512 tiles; full: {MODELS} x "
          f"{abmil_steps(len(CLASSES)):,} steps: k = 1-16 x 5 draws, {len(CLASSES)} classes)")
    print(f"{'ABMIL predicts':<16}{predicted_s:11.2f}{'':>11}{'':>10}{abmil_cpu:10.0f}  models x test tiles "
          f"({predicted_s / max(model_tiles, 1) * 1e9:.0f} ns per model a tile, this CPU core; full: {MODELS} x "
          f"{TEST_SLIDES:,} slides x {ABMIL_MODELS} x {TILES:,})")
    print(f"{'  on the GPU':<16}{'-':>11}{'':>11}{'':>10}{abmil_gpu:10.0f}  a GPU run predicts on its device: "
          f"{args.gpu_abmil_ms:g} ms a bag for {ABMIL_MODELS} models (assumed; not measured here)")
    print("scoring seconds per cell, fitted: a + b x items (slides: a + b x slides + c x tiles; few-shot without "
          "its probe fits, few-shot WSI without ABMIL):")
    fitted = {**per_patch, **{(f"{t} (slides)", mo): v for (t, mo), v in per_slide.items()}}
    for (task, mode), (a, b, *c) in fitted.items():
        print(f"  {task + (' ' + mode if mode else ''):<34} a {a:7.3f} s  b {b * 1e3:8.3f} ms/item"
              + (f"  c {c[0] * 1e6:8.2f} µs/tile" if c else ""))
    print(f"non-forward, full benchmark, against the forward's {forward_s:,.0f} s ({FORWARDS:.2e} forwards at "
          f"{args.gpu_img_s:,.0f} img/s, assumed); goal <= 5%:")
    for where, abmil in (("ABMIL predicting on the GPU, as a GPU run does (assumed rate)", abmil_gpu),
                         ("everything on one CPU core", abmil_cpu)):
        share = (total + abmil) / forward_s
        print(f"  {where}: {total + abmil:,.0f} s, {share:.1%}: {'met' if share <= 0.05 else 'NOT met'}")

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from leaderboard_render import script_times

    logging.disable(logging.WARNING)
    times = script_times(db)
    slowest = max(times.values())
    print("leaderboard views on this database, each view's script (AppTest, no browser), first / cached:")
    for view in dict.fromkeys(v for v, _ in times):
        print(f"  {view:<24}{times[view, True]:6.2f} s / {times[view, False]:5.2f} s")
    print(f"slowest view script {slowest:.2f} s; goal <= 2 s a view: {'met' if slowest <= 2 else 'NOT met'} "
          "(a browser adds Streamlit's page shell, ~0.7-0.9 s here: benchmarks/leaderboard_render.py)")


if __name__ == "__main__":
    main()
