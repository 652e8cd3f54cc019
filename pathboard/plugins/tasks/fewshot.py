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
   The plan names it up front: if that dataset is not under the data root the cell is not run (an
   error when few-shot was asked for, a skip otherwise), saying so, rather than silently changing
   the protocol;
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

import hashlib
from dataclasses import dataclass

import numpy as np

from pathboard import hookimpl
from pathboard.core.errors import PathboardError
from pathboard.core.metrics import SEED, Metric, classification_metrics, iqr_metrics, median_metrics, normalised
from pathboard.core.options import Option
from pathboard.core.task import CellContext, Inputs, Task, TaskResult

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


def hash_split(dataset_id: str, paths: list[str], labels: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Boolean train mask over ``candidates`` rows: per class, the first half by sha256(id, path)."""
    train = np.zeros(len(paths), dtype=bool)
    for c in np.unique(labels[candidates]):
        rows = np.flatnonzero(candidates & (labels == c))
        order = sorted(rows, key=lambda i: hashlib.sha256(f"{dataset_id}\n{paths[i]}".encode()).digest())
        train[order[: len(order) // 2]] = True
    return train


def has_official_split(dataset, labelled: np.ndarray, splits) -> tuple[np.ndarray, np.ndarray] | None:
    """(train rows, evaluated rows) of the dataset's own split among ``labelled`` rows, or None."""
    splits = np.array([s or "" for s in splits], dtype=object)
    is_train = splits == "train"
    is_eval = labelled & ((splits == dataset.eval_split) if getattr(dataset, "eval_split", None) else ~is_train)
    if (labelled & is_train).any() and is_eval.any():
        return labelled & is_train, is_eval
    return None


def training_role(dataset) -> str:
    return f"trains on {dataset.train_from}, its declared training set"


def training_pool(ctx: CellContext) -> tuple[Pool, np.ndarray]:
    """The training pool and the boolean mask of evaluated rows of ``ctx``'s dataset."""
    ds = ctx.dataset
    labelled = ctx.evaluated(None)
    official = has_official_split(ds, labelled, ctx.splits)
    if official is not None:
        rows = np.flatnonzero(official[0])
        return Pool(ctx.image_embeddings, rows, ctx.labels[rows], "official-split"), official[1]
    splits = np.array([s or "" for s in ctx.splits], dtype=object)
    is_eval = labelled & ((splits == ds.eval_split) if getattr(ds, "eval_split", None) else splits != "train")
    if getattr(ds, "train_from", None):
        if ds.train_from not in ctx.others:
            raise PathboardError(f"few-shot on {ds.id} {training_role(ds)}, which is not available")
        other, manifest, images = ctx.others[ds.train_from]
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
    return normalised(means), np.zeros(len(classes), dtype=np.float32)


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
        x = normalised(embeddings[rows[start : start + CHUNK]])
        out[:, start : start + len(x)] = (x @ flat_w + flat_b).reshape(len(x), m, c).argmax(axis=2).T
    return out


class FewShot(Task):
    id = "fewshot"
    title = "Few-shot patch classification (prototype, linear probe)"
    uses_prompts = False
    requires = frozenset({"image"})
    needs = frozenset({"patches", "labels"})  # any labelled patch dataset: a training pool always exists
    options = (Option("methods", str, METHODS, "classifiers to fit: prototype and/or linear-probe (alias "
                      "--fewshot-methods)", choices=METHODS, multiple=True),)
    draws: int = DRAWS
    seed: int = SEED

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(self.values["methods"])

    def configure(self, values) -> FewShot:
        try:
            return super().configure(values)
        except PathboardError as exc:  # keep the message users know
            raise PathboardError(f"unknown few-shot method(s): {exc}") from None

    def check(self, dataset, manifest):
        """Two classes to train on, from the labels alone (unreadable files may still remove some)."""
        labelled = np.asarray(manifest.labels) >= 0
        official = has_official_split(dataset, labelled, manifest.splits)
        if official is not None:
            source, train = "official-split", official[0]
        elif getattr(dataset, "train_from", None):
            return None  # the training set's own classes are checked when it is scored
        else:
            splits = np.array([s or "" for s in manifest.splits], dtype=object)
            is_eval = labelled & ((splits == dataset.eval_split) if getattr(dataset, "eval_split", None)
                                  else splits != "train")
            candidates = is_eval if is_eval.any() else labelled
            source, train = "hash-split", hash_split(dataset.id, manifest.paths, manifest.labels, candidates)
        n = len(np.unique(np.asarray(manifest.labels)[train]))
        if n < 2:
            return f"few-shot needs training items of at least two classes ({source} has {n})"
        return None

    def inputs(self, dataset, manifest) -> Inputs:
        """Its own images; and the declared training set's, unless the dataset has its own train split."""
        images = {dataset.id: ""}
        if getattr(dataset, "train_from", None) and has_official_split(dataset, manifest.labels >= 0,
                                                                      manifest.splits) is None:
            images[dataset.train_from] = training_role(dataset)
        return Inputs(images=images)

    def score(self, ctx: CellContext) -> TaskResult:
        pool, eval_mask = training_pool(ctx)
        eval_rows = np.flatnonzero(eval_mask)
        if not len(eval_rows):
            raise PathboardError(f"{ctx.dataset.id}: no labelled, readable test items for few-shot")
        classes, counts = np.unique(pool.labels, return_counts=True)
        missing = sorted(set(ctx.labels[eval_rows]) - set(classes))
        notes = []
        if missing:
            notes.append(f"fewshot on {ctx.dataset.id}: no training item of class(es) "
                         f"{', '.join(ctx.class_names[c] for c in missing)}; they are never predicted")
        if len(classes) < 2:
            raise PathboardError(f"{ctx.dataset.id}: few-shot needs training items of at least two classes "
                                 f"({pool.source} has {len(classes)})")
        ks = shot_counts(counts.min())
        keys, weights, biases = [], [], []
        for k in ks:
            for draw in range(self.draws):
                picked = draw_support(pool.labels, classes, k, draw, self.seed)
                order = np.argsort(pool.rows[picked], kind="stable")  # memory-mapped rows read in file order
                x = normalised(pool.embeddings[pool.rows[picked][order]])
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
        return TaskResult(out, notes=notes)


@hookimpl
def register_tasks(register):
    register(FewShot())
