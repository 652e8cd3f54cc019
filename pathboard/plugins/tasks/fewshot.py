"""Few-shot patch classification on frozen image embeddings, as in CONCH (Lu et al., Nature Medicine 2024).

With k labelled training images per class (k = 1, 2, 4, 8, 16, capped by the smallest class of the
training pool; and ``all``: the whole pool), two classifiers are fitted on the L2-normalised image
embeddings:

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
   ``eval_split`` items, or every labelled item), **by group**: items that share a group (Record meta
   ``"group"``: a patient, case, slide or near-duplicate cluster such as LC25000's rotated twins) go to
   the same side. Each group counts under its most frequent class; within each class, groups ordered by
   sha256("<dataset id>\\n<group>"), the first half (rounded down) trains and the rest is evaluated. An
   item without a group is its own group, so a dataset without groups splits item by item.

With an official split, training items whose group also has evaluated items are left out (a note says
how many), so support and test sets are group-disjoint in every case.

Each k is drawn 5 times (``DRAWS``), each draw from ``numpy.random.default_rng((seed, k, draw))`` per
class in class order, so the same seed gives identical draws.

Results (variants of one cell; metrics as zero-shot's ``classification_metrics``):

- ``<method>/k=<k>/draw=<d>``: one draw (point values; no CI);
- ``<method>/k=<k>/median``: value = median over the draws; the spread over draws (25th/75th
  percentiles) is in the ``q1``/``q3`` columns, never in the CI columns;
- ``<method>/k=all``: one classifier fitted on the whole pool, with a 95% bootstrap CI;
- ``""`` (headline): prototype (or, if not run, the first method run) at k = 16 per class, or the
  largest k <= 16 the pool holds, median over draws; its CI is a 95% bootstrap CI of that median (the
  draws' predictions rescored on the same 1,000 resamples of the test items, median taken per
  resample), q1/q3 the spread over draws;
- ``train=<source>``: ``n_train`` (training pool), ``n_eval`` (test items) and ``max_k``.

The pool, the grouping and the split rule are stored in the cell's protocol.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import numpy as np

from pathboard import hookimpl
from pathboard.core.errors import PathboardError
from pathboard.core.interfaces.options import Option
from pathboard.core.interfaces.task import CellContext, Inputs, Task, TaskResult, item_groups
from pathboard.core.science.metrics import (
    SEED,
    Metric,
    bootstrap_label,
    classification_metrics,
    iqr_metrics,
    median_metrics,
    normalised,
)

METHODS = ("prototype", "linear-probe")
DRAWS = 5
K_MAX = 16  # few-shot is at most 16 per class; "all" is its own variant
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
    #: how support and test sets were kept apart (stored in the cell's protocol)
    split: str = ""
    notes: tuple[str, ...] = ()


def all_groups(manifest) -> np.ndarray | None:
    """Every item's group (:func:`~pathboard.core.interfaces.task.item_groups` of the whole manifest), or None."""
    return item_groups(manifest, np.ones(len(manifest.paths), dtype=bool))


def hash_split(dataset_id: str, paths: list[str], labels: np.ndarray, candidates: np.ndarray,
               groups=None) -> np.ndarray:
    """Boolean train mask over ``candidates`` rows: per class, the first half of its groups by
    sha256(id, group) (a group counts under its most frequent class; without groups each item is one)."""
    keys = groups if groups is not None else paths
    members: dict[str, list[int]] = {}
    for i in np.flatnonzero(candidates):
        members.setdefault(keys[i], []).append(i)
    by_class: dict[int, list[str]] = {}
    for key, rows in members.items():
        values, counts = np.unique(labels[rows], return_counts=True)
        by_class.setdefault(int(values[counts.argmax()]), []).append(key)  # ties: the smaller class
    train = np.zeros(len(paths), dtype=bool)
    for c in sorted(by_class):
        order = sorted(by_class[c], key=lambda g: hashlib.sha256(f"{dataset_id}\n{g}".encode()).digest())
        for key in order[: len(order) // 2]:
            train[members[key]] = True
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
    groups = all_groups(ctx.manifest)
    official = has_official_split(ds, labelled, ctx.splits)
    if official is not None:
        train, is_eval = official
        notes = ()
        if groups is not None:  # a patient with items on both sides would leak into the support set
            tested = {groups[i] for i in np.flatnonzero(is_eval)}
            shared = train & np.array([g in tested for g in groups], dtype=bool)
            if shared.any():
                notes = (f"fewshot on {ds.id}: {int(shared.sum())} official training item(s) share a group with "
                         f"evaluated items and are left out",)
            train = train & ~shared
        rows = np.flatnonzero(train)
        split = "official split" + (", training items of evaluated groups left out" if groups is not None else "")
        return Pool(ctx.image_embeddings, rows, ctx.labels[rows], "official-split", split, notes), is_eval
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
        pool = Pool(images.embeddings, rows, labels[rows], f"dataset:{ds.train_from}",
                    f"training set {ds.train_from}, a different dataset")
        return pool, is_eval if is_eval.any() else labelled
    candidates = is_eval if is_eval.any() else labelled
    train = hash_split(ds.id, ctx.manifest.paths, ctx.labels, candidates, groups)
    rows = np.flatnonzero(train)
    split = ("50/50 by group (sha256 of dataset id and group), stratified by each group's majority class"
             if groups is not None else "50/50 by item (sha256 of dataset id and path), stratified by class")
    return Pool(ctx.image_embeddings, rows, ctx.labels[rows], "hash-split", split), candidates & ~train


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


def _predict(model, x: np.ndarray) -> np.ndarray:
    """``model.predict(x)`` without scikit-learn's per-call input validation (the CV calls it hundreds of
    times on tiny folds): the class of the largest decision value."""
    scores = x @ model.coef_.T + model.intercept_
    if scores.shape[1] == 1:
        return model.classes_[(scores[:, 0] > 0).astype(np.int64)]
    return model.classes_[scores.argmax(axis=1)]


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """scikit-learn's balanced_accuracy_score: the mean recall over the classes present in ``y_true``."""
    classes = np.unique(y_true)
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in classes]))


def select_c(x: np.ndarray, y: np.ndarray, seed: int = SEED) -> float:
    """C by stratified cross-validation within the training set (balanced accuracy; ties: smaller C)."""
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
            fold_scores.append(balanced_accuracy(y[held], _predict(model, x[held])))
        scores.append(np.mean(fold_scores))
    return float(C_GRID[int(np.argmax(scores))])  # argmax takes the first (smallest C) of equal scores


def linear_probe_classifier(x: np.ndarray, y: np.ndarray, classes: np.ndarray,
                            seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """([C, D], [C]) of a logistic regression fitted on (x, y), C chosen on (x, y) only."""
    from threadpoolctl import threadpool_limits

    x = np.asarray(x, dtype=np.float64)  # scikit-learn >= 1.9 would fit float32 input in float32
    # small fits are dominated by BLAS thread start-up (15x slower on a busy 2-core machine): one thread
    with threadpool_limits(1 if x.size < SMALL_FIT else None):
        model = _logistic(select_c(x, y, seed)).fit(x, y)
    assert list(model.classes_) == list(classes)
    if len(classes) == 2:  # one decision function: class 1 when w.x + b > 0
        return (np.vstack([np.zeros_like(model.coef_[0]), model.coef_[0]]).astype(np.float32),
                np.array([0.0, model.intercept_[0]], dtype=np.float32))
    return model.coef_.astype(np.float32), model.intercept_.astype(np.float32)


def with_spread(metric: Metric, spread: Metric | None) -> Metric:
    """``metric`` (a headline median with its bootstrap CI) carrying the draws' q1/q3 of ``spread``."""
    return metric if spread is None else dataclasses.replace(metric, q1=spread.q1, q3=spread.q3)


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
            source, train = "hash-split", hash_split(dataset.id, manifest.paths, manifest.labels, candidates,
                                                     all_groups(manifest))
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
        notes = list(pool.notes)
        if missing:
            notes.append(f"fewshot on {ctx.dataset.id}: no training item of class(es) "
                         f"{', '.join(ctx.class_names[c] for c in missing)}; they are never predicted")
        if len(classes) < 2:
            raise PathboardError(f"{ctx.dataset.id}: few-shot needs training items of at least two classes "
                                 f"({pool.source} has {len(classes)})")
        ks = shot_counts(min(int(counts.min()), K_MAX))
        keys, weights, biases = [], [], []

        def fit(key, x, y):
            for method in self.methods:
                w, b = (prototype_classifier(x, y, classes) if method == "prototype"
                        else linear_probe_classifier(x, y, classes, self.seed))
                keys.append((method, *key))
                weights.append(w)
                biases.append(b)

        for k in ks:
            for draw in range(self.draws):
                picked = draw_support(pool.labels, classes, k, draw, self.seed)
                order = np.argsort(pool.rows[picked], kind="stable")  # memory-mapped rows read in file order
                fit((k, draw), normalised(pool.embeddings[pool.rows[picked][order]]), pool.labels[picked][order])
        fit(("all", 0), normalised(pool.embeddings[pool.rows]), pool.labels)  # pool rows are in file order
        predicted = classes[predict_all(ctx.image_embeddings, eval_rows, np.stack(weights), np.stack(biases))]
        y_true = ctx.labels[eval_rows]
        groups = item_groups(ctx.manifest, eval_rows)  # intervals resample patients/slides where items have them
        out: dict[str, list[Metric]] = {}
        preds = dict(zip(keys, predicted))
        for method in self.methods:
            for k in ks:  # the curve: point values per draw (a CI per draw would cost more than the fits)
                draws = [classification_metrics(y_true, preds[(method, k, d)], ctx.class_names, ctx.ordinal,
                                                n_boot=0) for d in range(self.draws)]
                for d, metrics in enumerate(draws):
                    out[f"{method}/k={k}/draw={d}"] = metrics
                out[f"{method}/k={k}/median"] = iqr_metrics(draws)
            out[f"{method}/k=all"] = classification_metrics(y_true, preds[(method, "all", 0)], ctx.class_names,
                                                            ctx.ordinal, groups=groups)
        headline = self.methods[0] if "prototype" not in self.methods else "prototype"
        draws = [preds[(headline, ks[-1], d)] for d in range(self.draws)]
        spread = {m.name: m for m in out[f"{headline}/k={ks[-1]}/median"]}
        out[""] = [with_spread(m, spread.get(m.name))
                   for m in median_metrics(y_true, draws, ctx.class_names, ctx.ordinal, groups=groups)]
        n_eval = len(eval_rows)
        out[f"train={pool.source}"] = [Metric(name, float(v), float(v), float(v), n_eval) for name, v in
                                       (("n_train", len(pool.rows)), ("n_eval", n_eval), ("max_k", ks[-1]))]
        protocol = {"pool": pool.source, "split": pool.split, "n_train": len(pool.rows), "n_eval": n_eval,
                    "k": [*ks, "all"], "headline_k": ks[-1], "draws": self.draws, "seed": self.seed,
                    "grouping": "Record meta 'group'" if all_groups(ctx.manifest) is not None else "none (items)",
                    "bootstrap": bootstrap_label(groups)}
        return TaskResult(out, notes=notes, protocol=protocol)


@hookimpl
def register_tasks(register):
    register(FewShot())
