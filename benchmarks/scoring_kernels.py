"""The scoring kernels the dry run (``full_scale.py``) spends its time in, each against the way it was done before,
in one run: the ratios behind docs/scaling.md's "what moved them".

    python benchmarks/scoring_kernels.py [DATA_ROOT] [--repeats 5]

  - the linear probe's loss evaluation (``logistic._loss_grad``, 36 problems of 4,000 items) against the same
    formula over (problems, items, outputs), as it was written before;
  - a k = all linear probe's cross-validation (``linear_probe.cross_validated``, 16,000 items x 512 dimensions,
    9 classes, more than one solver run shares): each run holding one fold's problems on its own items, the whole
    pool fitted at the chosen C only, and the decision values written as (outputs, items), against runs of
    consecutive problems on every item, the whole pool at every C, and the product as (items, outputs);
  - bootstrap confusion matrices (``metrics.confusion_matrices``, 100 resamples of 20,000 items, 4 classes): one
    gather and one ``bincount`` a resample against two gathers and one ``bincount`` over offset cell numbers;
  - the paired comparisons of 15 models on one dataset's 20,000 items (``compare.compare_cells``): the resamples
    drawn once for all the models, against once a model (both with the new confusion matrices);
  - zero-shot's calibration metrics on 20,000 items and 4 classes (1,000 resamples) with the bootstrap's AUROC from
    running totals against binning each resample's weights by distinct score, as before;
  - ABMIL's prediction of 25 models over 12 bags of 10^4 tiles: each bag read once for all of them, against once
    per model;
  - a heatmap of 9,690 tiles over CMU-1-Small-Region: the tiles painted a row at a time against a square at a
    time, and the whole heatmap with the slide's thumbnail cached as raw pixels against as a PNG (the cache still
    reads a PNG an earlier release wrote). Each old way gives the same numbers or pixels; the script checks it.
Medians of ``--repeats``, alternated.
"""
import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("data_root", type=Path, nargs="?", default=Path(__file__).resolve().parents[2] / "shared" / "data")
ap.add_argument("--repeats", type=int, default=5)
args = ap.parse_args()
os.environ["PATHBOARD_CACHE"] = tempfile.mkdtemp(prefix="pathboard-kernels-")

from pathboard.core.media import figures, tiling  # noqa: E402
from pathboard.core.science import calibration, compare, linear_probe, logistic, metrics  # noqa: E402


def versus(name: str, old, new, unit: str = "ms", repeats: int | None = None) -> None:
    """Time ``old`` and ``new`` alternately; print their medians and the ratio."""
    a, b = [], []
    for _ in range(repeats or args.repeats):
        for f, out in ((old, a), (new, b)):
            start = time.perf_counter()
            f()
            out.append(time.perf_counter() - start)
    scale = 1e3 if unit == "ms" else 1.0
    ta, tb = statistics.median(a) * scale, statistics.median(b) * scale
    print(f"{name:<62} before {ta:8.2f} {unit}  now {tb:8.2f} {unit}  {ta / tb:5.2f}x")


def plain_loss_grad(theta, zb, y, onehot, s, l2):
    """The loss as it was written before: decision values transposed to (problems, items, outputs)."""
    j, outputs, p = theta.shape
    z = (zb @ theta.reshape(j * outputs, p).T).reshape(len(zb), j, outputs).transpose(1, 0, 2)
    top = z.max(axis=2, keepdims=True)
    e = np.exp(z - top)
    total = e.sum(axis=2, keepdims=True)
    loss = (np.log(total) + top)[:, :, 0] - np.take_along_axis(z, y[None, :, None], axis=2)[:, :, 0]
    err = e / total - onehot
    w = theta[:, :, :-1]
    grad = ((err * s[:, :, None]).transpose(0, 2, 1).reshape(j * outputs, -1) @ zb).reshape(j, outputs, p)
    grad[:, :, :-1] += l2[:, None, None] * w
    return (s * loss).sum(axis=1) + 0.5 * l2 * np.einsum("jkp,jkp->j", w, w), grad


def loss() -> None:
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    n, p, j = 4000, 257, 36
    zb = np.hstack([rng.normal(size=(n, p - 1)), np.ones((n, 1))])
    for outputs in (4, 9):
        theta, y = rng.normal(size=(j, outputs, p)) * 0.05, rng.integers(0, outputs, n)
        onehot, s, l2 = np.eye(outputs)[y], np.full((j, n), 1.0 / n), np.full(j, 1e-4)
        call = (theta, zb, y, onehot, s, l2)
        old, new = plain_loss_grad(*call), logistic._loss_grad(*call)
        assert all(np.allclose(a, b, rtol=1e-12, atol=1e-15) for a, b in zip(old, new))
        with threadpool_limits(1):  # as the probe fits such sets
            versus(f"probe loss, {j} problems x {n:,} items x {outputs} classes",
                   lambda call=call: plain_loss_grad(*call), lambda call=call: logistic._loss_grad(*call))


def probe() -> None:
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    n, d, k = 16_000, 512, 9
    y = rng.integers(0, k, n)
    x = (rng.normal(size=(k, d))[y] * 0.17 + rng.normal(size=(n, d))).astype(np.float32)  # train accuracy ~0.99
    runs, tall, together = logistic._runs, logistic.TALL, linear_probe.one_run

    def consecutive(problems, items, outputs, parameters):
        size = logistic.per_run(items, outputs, parameters)
        return [list(range(i, min(i + size, len(problems)))) for i in range(0, len(problems), size)]

    def before():
        logistic._runs, logistic.TALL, linear_probe.one_run = consecutive, n + 1, lambda *a: True
        try:
            return linear_probe.cross_validated(x, y)
        finally:
            logistic._runs, logistic.TALL, linear_probe.one_run = runs, tall, together

    with threadpool_limits(1):  # one CPU per scoring task
        (c_old, w_old), (c_new, w_new) = before(), linear_probe.cross_validated(x, y)
        # the same C, and weights a rounding apart: the products' kernels may round differently
        assert c_old == c_new and np.allclose(w_old, w_new, rtol=0, atol=1e-9 * np.abs(w_old).max())
        versus(f"k = all probe cross-validation, {n:,} items x {d} dims x {k} classes", before,
               lambda: linear_probe.cross_validated(x, y), unit="s", repeats=min(args.repeats, 3))


def offset_confusions(y_true, y_pred, k, idx=None, counts=None):
    """The bootstrap's confusion matrices as they were: two gathers and one bincount over offset cell numbers."""
    b = idx.shape[0]
    codes = y_true[idx] * k + y_pred[idx] + (np.arange(b) * k * k)[:, None]
    return np.bincount(codes.ravel(), minlength=b * k * k).reshape(b, k, k)


def confusions() -> None:
    import pandas as pd

    rng = np.random.default_rng(0)
    n, k = 20_000, 4
    y = rng.integers(0, k, n)
    idx = rng.integers(0, n, (100, n))
    pred = np.where(rng.random(n) < 0.8, y, rng.integers(0, k, n))
    assert np.array_equal(offset_confusions(y, pred, k, idx), metrics.confusion_matrices(y, pred, k, idx))
    versus(f"bootstrap confusion matrices, 100 resamples x {n:,} items", lambda: offset_confusions(y, pred, k, idx),
           lambda: metrics.confusion_matrices(y, pred, k, idx))
    items = [f"img/{i:07d}.jpg" for i in range(n)]
    frame = pd.DataFrame([{"cell_id": f"c{m}", "model": f"m{m:02d}", "dataset": "d", "task": "zeroshot", "variant": "",
                           "prompt_mode": "single", "protocol_hash": "h", "n_classes": k, "ordinal": False,
                           "y_true": y, "items": items, "groups": None,
                           "y_pred": np.where(rng.random(n) < 0.8, y, rng.integers(0, k, n))} for m in range(15)])
    together = compare._score_together

    def per_model():
        compare._score_together = lambda scored, group: None
        try:
            return compare.compare_cells(frame)
        finally:
            compare._score_together = together

    assert per_model() == compare.compare_cells(frame)
    versus(f"paired comparisons, 15 models x {n:,} items", per_model, lambda: compare.compare_cells(frame), unit="s",
           repeats=min(args.repeats, 3))


def binned_auc(w, ranks, n_ranks, positive):
    """The bootstrap's AUROC as it was: each resample's weights binned by distinct score, positives and negatives."""
    b = w.shape[0]
    codes = (ranks[None, :] + (np.arange(b) * n_ranks)[:, None]).ravel()
    pos, neg = (np.bincount(codes, weights=(w * m).ravel(), minlength=b * n_ranks).reshape(b, n_ranks)
                for m in (positive, ~positive))
    below = np.cumsum(neg, axis=1) - neg
    den = pos.sum(1) * neg.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, (pos * (below + 0.5 * neg)).sum(1) / den, np.nan)


def auroc() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    y = rng.integers(0, 4, n)
    logits = 100 * (rng.normal(size=(n, 4)) * 0.05 + np.eye(4)[y] * 0.03)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    ranking, weighted = calibration._ranking, calibration._weighted_auc

    def before():
        calibration._ranking = lambda scores, positive: (*np.unique(scores, return_inverse=True), positive)
        calibration._weighted_auc = lambda w, u, inv, pos: binned_auc(w, inv.ravel(), len(u), pos)
        try:
            return calibration.calibration_metrics(y, probs, list("abcd"))
        finally:
            calibration._ranking, calibration._weighted_auc = ranking, weighted

    def now():
        return calibration.calibration_metrics(y, probs, list("abcd"))

    assert [(m.value, m.ci_low, m.ci_high) for m in before()] == [(m.value, m.ci_low, m.ci_high) for m in now()]
    versus(f"calibration metrics (AUROC bootstrap), {n:,} items x 4 classes", before, now)


def abmil() -> None:
    import torch

    from pathboard.core.science.abmil import GatedABMIL, abmil_classify

    torch.set_num_threads(1)  # a scoring task's one CPU
    rng = np.random.default_rng(0)
    tiles, dim, n = 10_000, 256, 12
    folder = Path(os.environ["PATHBOARD_CACHE"])
    np.save(folder / "bags.npy", rng.normal(size=(n * tiles, dim)).astype(np.float32))
    cached = np.load(folder / "bags.npy", mmap_mode="r")  # read-only, memory-mapped: as the cache hands them over
    bags = [cached[i * tiles:(i + 1) * tiles] for i in range(n)]
    torch.manual_seed(0)
    models = [GatedABMIL(dim, 2).eval() for _ in range(25)]
    assert np.array_equal(np.stack([abmil_classify([m], bags)[0] for m in models]), abmil_classify(models, bags))
    versus(f"ABMIL prediction, 25 models x {n} bags of {tiles:,} tiles", lambda: [abmil_classify([m], bags)
                                                                               for m in models],
           lambda: abmil_classify(models, bags), unit="s")


def heatmap() -> None:
    svs = args.data_root / "slides" / "CMU-1-Small-Region.svs"
    size0 = 26
    grid = np.stack(np.meshgrid(np.arange(0, 2220 - size0, size0), np.arange(0, 2967 - size0, size0)), -1)
    coords = grid.reshape(-1, 2)  # row-major, as tile_grid lists them
    values = np.random.default_rng(0).random(len(coords))
    thumb, dimensions = tiling.thumbnail(svs)
    scale = thumb.size[0] / dimensions[0]
    x0, y0 = (coords[:, 0] * scale).astype(np.int64), (coords[:, 1] * scale).astype(np.int64)
    side = max(1, round(size0 * scale))
    colours = np.round(figures.heat_colour(values) * 255).astype(np.uint8)
    shape = (thumb.size[1], thumb.size[0], 4)

    def squares():
        layer = np.zeros(shape, dtype=np.uint8)
        for x, y, colour in zip(x0, y0, colours):
            layer[y:y + side, x:x + side, :3] = colour
            layer[y:y + side, x:x + side, 3] = figures.ALPHA
        return layer

    def rows():
        layer = np.zeros(shape, dtype=np.uint8)
        figures.paint_squares(layer, x0, y0, side, colours)
        return layer

    assert np.array_equal(squares(), rows())
    versus(f"heatmap painting, {len(coords):,} tiles", squares, rows)

    (saved,) = (Path(os.environ["PATHBOARD_CACHE"]) / "thumbnails").glob("*.npy")
    png = saved.with_suffix(".png")
    out = Path(os.environ["PATHBOARD_CACHE"]) / "heatmap.jpg"

    thumb.save(png, "PNG", compress_level=1)  # as the cache wrote it before
    png.rename(png.with_suffix(".keep"))  # the PNG waits beside the .npy; each draw sees one of them
    png_kept = png.with_suffix(".keep")

    def with_png():
        tiling._RECENT.clear()
        saved.rename(saved.with_suffix(".off"))
        png_kept.rename(png)
        try:
            figures.heatmap(svs, coords, size0, values, out)
        finally:
            png.rename(png_kept)
            saved.with_suffix(".off").rename(saved)

    def with_npy():
        tiling._RECENT.clear()
        figures.heatmap(svs, coords, size0, values, out)

    versus(f"heatmap, {len(coords):,} tiles, thumbnail cached as PNG -> as .npy", with_png, with_npy)


loss()
probe()
confusions()
auroc()
abmil()
heatmap()
