"""Few-shot patch classification on frozen image embeddings, as in CONCH (Lu et al., Nature Medicine 2024).

With k labelled training images per class (k = 1, 2, 4, ... up to the smallest class of the training
pool), two classifiers are fitted on the L2-normalised image embeddings:

- ``prototype``: each class is the re-normalised mean of its k embeddings; an image gets the class of
  highest cosine similarity (nearest class mean).
- ``linear-probe``: scikit-learn's L2-regularised LogisticRegression (lbfgs). Its inverse
  regularisation C is chosen by stratified cross-validation *within the k-shot training set*
  (min(5, k) folds, balanced accuracy, grid ``C_GRID``, ties to the smaller C); with k = 1 there is
  nothing to cross-validate and C = ``DEFAULT_C`` (scikit-learn's default). The test items are never
  seen before prediction.

Training pool, in this order (recorded in the variant ``train=<source>``):

1. ``official-split``: the dataset's own ``"train"`` items, evaluated on ``eval_split`` (or, without
   one, every labelled item not in ``"train"``);
2. ``dataset:<id>``: the dataset named by ``train_from`` (e.g. CRC-VAL-HE-7K trains on NCT-CRC-HE-100K;
   its ``"train"`` items, or all of them), classes matched by name, embeddings from the same cache.
   If that dataset is not under the data root the cell fails, saying so, rather than silently
   changing the protocol;
3. ``hash-split``: pathboard's own deterministic, stratified 50/50 split of the evaluated items (the
   ``eval_split`` items, or every labelled item): within each class, items ordered by
   sha256("<dataset id>\\n<path>"), the first half (rounded down) trains and the rest is evaluated.

Each k is drawn 5 times (``DRAWS``), each draw from ``numpy.random.default_rng((seed, k, draw))`` per
class in class order, so the same seed gives identical draws.

Results (variants of one cell; metrics as zero-shot's ``classification_metrics``, 95% bootstrap CIs):

- ``<method>/k=<k>/draw=<d>``: one draw;
- ``<method>/k=<k>/median``: value = median over the draws; **ci_low/ci_high = the 25th/75th
  percentiles over the draws (the IQR), not a confidence interval**;
- ``""`` (headline): prototype (or, if not run, the first method run) at the largest k, median over
  draws; its CI is a 95% bootstrap CI of that median (the draws' predictions rescored on the same
  1,000 resamples of the test items, median taken per resample);
- ``train=<source>``: ``n_train`` (training pool), ``n_eval`` (test items) and ``max_k``.
"""
from __future__ import annotations

import copy
import hashlib
import sys
import warnings
from dataclasses import dataclass

import numpy as np

from pathboard import hookimpl
from pathboard.core.errors import PathboardError
from pathboard.core.metrics import (N_BOOT, SEED, Metric, bootstrap_indices, classification_metrics,
                                    confusion_matrices, scores_from_confusion)
from pathboard.core.task import CellContext, Task

METHODS = ("prototype", "linear-probe")
DRAWS = 5
C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
DEFAULT_C = 1.0
FOLDS = 5
MAX_ITER = 1000
CHUNK = 4096
SMALL_FIT = 2_000_000  # support-set entries (items x dims) below which fits run on one BLAS thread


@dataclass
class Pool:
    """The training pool: rows of ``embeddings`` (possibly another dataset's) and their labels, as
    indices into the evaluated dataset's classes."""

    embeddings: np.ndarray
    rows: np.ndarray
    labels: np.ndarray
    source: str


def _normalised(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def hash_split(dataset_id: str, paths: list[str], labels: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Boolean train mask over ``candidates`` rows: per class, the first half by sha256(id, path)."""
    train = np.zeros(len(paths), dtype=bool)
    for c in np.unique(labels[candidates]):
        rows = np.flatnonzero(candidates & (labels == c))
        order = sorted(rows, key=lambda i: hashlib.sha256(f"{dataset_id}\n{paths[i]}".encode()).digest())
        train[order[: len(order) // 2]] = True
    return train


def training_pool(ctx: CellContext) -> tuple[Pool, np.ndarray]:
    """The training pool and the boolean mask of evaluated rows of ``ctx``'s dataset."""
    ds = ctx.dataset
    labelled = ctx.evaluated(None)
    splits = np.array([s or "" for s in ctx.splits], dtype=object)
    is_train = splits == "train"
    is_eval = labelled & ((splits == ds.eval_split) if getattr(ds, "eval_split", None) else ~is_train)
    if (labelled & is_train).any() and is_eval.any():
        rows = np.flatnonzero(labelled & is_train)
        return Pool(ctx.image_embeddings, rows, ctx.labels[rows], "official-split"), is_eval
    if getattr(ds, "train_from", None):
        try:
            other, manifest = ctx.locate(ds.train_from)
            images = ctx.embedder.images(other, manifest)
        except PathboardError as exc:
            raise PathboardError(f"few-shot on {ds.id} trains on {ds.train_from}, its declared training set, "
                                 f"which is not available: {exc}") from None
        mapping = np.array([ds.classes.index(c) if c in ds.classes else -1 for c in other.classes] + [-1])
        labels = mapping[manifest.labels]  # -1 (unlabelled) maps to the trailing -1
        other_train = np.array([s == "train" for s in manifest.splits], dtype=bool)
        usable = images.valid & (labels >= 0) & (other_train if other_train.any() else True)
        rows = np.flatnonzero(usable)
        if not len(rows):
            raise PathboardError(f"few-shot on {ds.id}: {ds.train_from} has no readable item of {ds.id}'s classes")
        pool = Pool(images.embeddings, rows, labels[rows], f"dataset:{ds.train_from}")
        return pool, is_eval if is_eval.any() else labelled
    candidates = is_eval if is_eval.any() else labelled
    train = hash_split(ds.id, ctx.manifest.paths, ctx.labels, candidates)
    rows = np.flatnonzero(train)
    return Pool(ctx.image_embeddings, rows, ctx.labels[rows], "hash-split"), candidates & ~train


def shot_counts(max_k: int) -> list[int]:
    """1, 2, 4, ... up to ``max_k``."""
    return [2**i for i in range(max(0, int(max_k)).bit_length())]


def draw_support(labels: np.ndarray, classes: np.ndarray, k: int, draw: int, seed: int = SEED) -> np.ndarray:
    """Positions (into ``labels``) of k items per class of ``classes``: draw ``draw`` of shot k."""
    rng = np.random.default_rng((seed, k, draw))
    return np.concatenate([rng.choice(np.flatnonzero(labels == c), size=k, replace=False) for c in classes])


def prototype_classifier(x: np.ndarray, y: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([C, D], [C]): the re-normalised mean embedding of each class; scores are cosine similarities."""
    means = np.stack([x[y == c].mean(axis=0) for c in classes])
    return _normalised(means), np.zeros(len(classes), dtype=np.float32)


def _logistic(C: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=MAX_ITER)


def select_c(x: np.ndarray, y: np.ndarray, seed: int = SEED) -> float:
    """C by stratified cross-validation within the training set (balanced accuracy; ties: smaller C)."""
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold

    k = min(np.unique(y, return_counts=True)[1]) if len(y) else 0
    if k < 2:
        return DEFAULT_C
    folds = list(StratifiedKFold(n_splits=min(FOLDS, k), shuffle=True, random_state=seed).split(x, y))
    scores = []
    for C in C_GRID:
        fold_scores = []
        for fit, held in folds:
            model = _logistic(C).fit(x[fit], y[fit])
            fold_scores.append(balanced_accuracy_score(y[held], model.predict(x[held])))
        scores.append(np.mean(fold_scores))
    return float(C_GRID[int(np.argmax(scores))])  # argmax takes the first (smallest C) of equal scores


def linear_probe_classifier(x: np.ndarray, y: np.ndarray, classes: np.ndarray,
                            seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """([C, D], [C]) of a logistic regression fitted on (x, y), C chosen on (x, y) only."""
    from threadpoolctl import threadpool_limits

    # small fits are dominated by BLAS thread start-up (15x slower on a busy 2-core machine): one thread
    with threadpool_limits(1 if x.size < SMALL_FIT else None):
        model = _logistic(select_c(x, y, seed)).fit(x, y)
    assert list(model.classes_) == list(classes)
    if len(classes) == 2:  # one decision function: class 1 when w.x + b > 0
        return (np.vstack([np.zeros_like(model.coef_[0]), model.coef_[0]]).astype(np.float32),
                np.array([0.0, model.intercept_[0]], dtype=np.float32))
    return model.coef_.astype(np.float32), model.intercept_.astype(np.float32)


def predict_all(embeddings, rows: np.ndarray, weights: np.ndarray, biases: np.ndarray) -> np.ndarray:
    """[M, len(rows)] class positions predicted by M linear classifiers ([M, C, D], [M, C]) for the
    L2-normalised embeddings of ``rows``, streamed in chunks."""
    m, c, d = weights.shape
    flat_w, flat_b = weights.reshape(m * c, d).T, biases.reshape(m * c)
    out = np.empty((m, len(rows)), dtype=np.int64)
    for start in range(0, len(rows), CHUNK):
        x = _normalised(embeddings[rows[start : start + CHUNK]])
        out[:, start : start + len(x)] = (x @ flat_w + flat_b).reshape(len(x), m, c).argmax(axis=2).T
    return out


def median_metrics(y_true, preds: list[np.ndarray], class_names: list[str], ordinal: bool = False,
                   n_boot: int = N_BOOT, seed: int = SEED) -> list[Metric]:
    """Per metric, the median over draws, with a 95% bootstrap CI of that median (every draw rescored on
    the same resamples of the test items, the median taken per resample)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    preds = [np.asarray(p, dtype=np.int64) for p in preds]
    k, n, present = len(class_names), len(y_true), np.unique(y_true)

    def scored(idx):  # name -> [draws, resamples]
        draws = [scores_from_confusion(confusion_matrices(y_true, p, k, idx), present, ordinal) for p in preds]
        return {name: np.stack([d[name] for d in draws]) for name in draws[0]}

    point = scored(np.arange(n)[None, :])
    boot: dict[str, list] = {name: [] for name in point}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # all-NaN medians (a class absent from a resample)
        for idx in bootstrap_indices(n, n_boot, seed):
            for name, values in scored(idx).items():
                boot[name].append(np.nanmedian(values, axis=0))
    out = []
    for name, values in point.items():
        samples = np.concatenate(boot[name]) if boot[name] else np.array([])
        samples = samples[np.isfinite(samples)]
        low, high = np.percentile(samples, [2.5, 97.5]) if len(samples) else (np.nan, np.nan)
        label = f"recall/{class_names[int(name.split('/')[1])]}" if name.startswith("recall/") else name
        out.append(Metric(label, float(np.median(values[:, 0])), float(low), float(high), n))
    return out


def iqr_metrics(draws: list[list[Metric]]) -> list[Metric]:
    """Per metric: the median over draws, ci_low/ci_high = its 25th/75th percentiles."""
    out = []
    for i, first in enumerate(draws[0]):
        values = [d[i].value for d in draws]
        q25, q50, q75 = np.percentile(values, [25, 50, 75])
        out.append(Metric(first.name, float(q50), float(q25), float(q75), first.n))
    return out


class FewShot(Task):
    id = "fewshot"
    title = "Few-shot patch classification (prototype, linear probe)"
    uses_prompts = False
    requires = frozenset({"image"})
    methods: tuple[str, ...] = METHODS
    draws: int = DRAWS
    seed: int = SEED

    def configure(self, cfg) -> "FewShot":
        """A copy using ``cfg.fewshot_methods`` (comma-separated); unknown names fail at plan time."""
        value = getattr(cfg, "fewshot_methods", None) or ",".join(METHODS)
        methods = tuple(dict.fromkeys(m.strip() for m in value.split(",") if m.strip()))
        bad = [m for m in methods if m not in METHODS]
        if bad or not methods:
            raise PathboardError(f"unknown few-shot method(s) {', '.join(bad) or '(none given)'}; "
                                 f"choose from {', '.join(METHODS)}")
        task = copy.copy(self)
        task.methods = methods
        return task

    def supports(self, dataset):
        if getattr(dataset, "level", "patch") != "patch":
            return (f"{dataset.id} is slide-level; fewshot scores patches (slide-level few-shot with an ABMIL "
                    f"head is not implemented)")
        if not getattr(dataset, "classes", None):
            return f"{dataset.id} has no classes; fewshot needs a labelled dataset"
        return None  # any labelled patch dataset: it need not declare the task

    def score(self, ctx: CellContext):
        pool, eval_mask = training_pool(ctx)
        eval_rows = np.flatnonzero(eval_mask)
        if not len(eval_rows):
            raise PathboardError(f"{ctx.dataset.id}: no labelled, readable test items for few-shot")
        classes, counts = np.unique(pool.labels, return_counts=True)
        missing = sorted(set(ctx.labels[eval_rows]) - set(classes))
        if missing:
            print(f"warning: fewshot on {ctx.dataset.id}: no training item of class(es) "
                  f"{', '.join(ctx.class_names[c] for c in missing)}; they are never predicted", file=sys.stderr)
        if len(classes) < 2:
            raise PathboardError(f"{ctx.dataset.id}: few-shot needs training items of at least two classes "
                                 f"({pool.source} has {len(classes)})")
        ks = shot_counts(counts.min())
        keys, weights, biases = [], [], []
        for k in ks:
            for draw in range(self.draws):
                picked = draw_support(pool.labels, classes, k, draw, self.seed)
                order = np.argsort(pool.rows[picked], kind="stable")  # memory-mapped rows read in file order
                x = _normalised(pool.embeddings[pool.rows[picked][order]])
                y = pool.labels[picked][order]
                for method in self.methods:
                    if method == "prototype":
                        w, b = prototype_classifier(x, y, classes)
                    else:
                        w, b = linear_probe_classifier(x, y, classes, self.seed)
                    keys.append((method, k, draw))
                    weights.append(w)
                    biases.append(b)
        predicted = classes[predict_all(ctx.image_embeddings, eval_rows, np.stack(weights), np.stack(biases))]
        y_true = ctx.labels[eval_rows]
        out: dict[str, list[Metric]] = {}
        preds = dict(zip(keys, predicted))
        for method in self.methods:
            for k in ks:
                draws = [classification_metrics(y_true, preds[(method, k, d)], ctx.class_names, ctx.ordinal)
                         for d in range(self.draws)]
                for d, metrics in enumerate(draws):
                    out[f"{method}/k={k}/draw={d}"] = metrics
                out[f"{method}/k={k}/median"] = iqr_metrics(draws)
        headline = self.methods[0] if "prototype" not in self.methods else "prototype"
        out[""] = median_metrics(y_true, [preds[(headline, ks[-1], d)] for d in range(self.draws)],
                                 ctx.class_names, ctx.ordinal)
        n_eval = len(eval_rows)
        out[f"train={pool.source}"] = [Metric(name, float(v), float(v), float(v), n_eval) for name, v in
                                       (("n_train", len(pool.rows)), ("n_eval", n_eval), ("max_k", ks[-1]))]
        return out


@hookimpl
def register_tasks(register):
    register(FewShot())
