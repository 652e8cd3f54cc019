"""Few-shot patch classification on frozen image embeddings, as in CONCH (Lu et al., Nature Medicine 2024).

With k labelled training images per class (k = 1, 2, 4, 8, 16, capped by the smallest class of the
training pool; and ``all``: the whole pool), two classifiers are fitted on the L2-normalised image
embeddings:

- ``prototype`` (``prototype_classifier``): each class is the re-normalised mean of its k embeddings; an
  image gets the class of highest cosine similarity (nearest class mean).
- ``linear-probe`` (``linear_probe_classifier``): scikit-learn's L2-regularised LogisticRegression (its
  objective, minimised by pathboard's own batched L-BFGS to every gradient entry <= 1e-6), its C chosen
  by stratified cross-validation *within the k-shot training set* (min(5, k) folds, balanced accuracy,
  ties to the smaller C; C = 1 at k = 1). The test items are never seen before prediction.

Training pool, in this order (recorded in the variant ``train=<source>``):

1. ``official-split``: the dataset's own ``"train"`` items, evaluated on the evaluated items
   (``evaluated_items``: its ``eval_split``, or without one every labelled item not in ``"train"``);
2. ``dataset:<id>``: the dataset named by ``train_from`` (e.g. CRC-VAL-HE-7K trains on NCT-CRC-HE-100K;
   its ``"train"`` items, or all of them), classes matched by name, embeddings from the same cache.
   The plan names it up front: if that dataset is not under the data root the cell is not run (an
   error when few-shot was asked for, a skip otherwise), saying so, rather than silently changing
   the protocol;
3. ``hash-split``: pathboard's one split rule (``group_hash_split``), a deterministic, stratified 50/50
   split of the evaluated items **by group**: items that share a group (Record meta ``"group"``: a
   patient, case, slide or near-duplicate cluster such as LC25000's rotated twins) go to the same side.

With an official split, training items whose group also has evaluated items are left out (a note says
how many), so support and test sets are group-disjoint in every case.

Each k is drawn 5 times (``DRAWS``, ``draw_support``), so the same seed gives identical draws.

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

from dataclasses import dataclass

import numpy as np

from pathboard.api import (
    DRAWS,
    K_MAX,
    SEED,
    CellContext,
    Inputs,
    Metric,
    Option,
    PathboardError,
    Task,
    TaskResult,
    bootstrap_label,
    classification_metrics,
    convergence_note,
    draw_support,
    evaluated_items,
    fewshot_headline,
    group_hash_split,
    hookimpl,
    iqr_metrics,
    item_groups,
    linear_probe_classifier,
    median_metrics,
    normalised,
    official_split,
    predict_all,
    probe_convergence,
    prototype_classifier,
    shot_counts,
    split_rule,
    with_spread,
)

METHODS = ("prototype", "linear-probe")


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


def training_role(dataset) -> str:
    return f"trains on {dataset.train_from}, its declared training set"


def split_of(dataset, manifest) -> tuple[str, np.ndarray | None, np.ndarray, int]:
    """(pool source, training mask or None when another dataset trains, evaluated mask, training items
    left out because their group is evaluated), from the labels, splits and groups alone."""
    official = official_split(dataset, manifest)
    if official is not None:
        return "official-split", *official
    evaluated = evaluated_items(dataset, manifest)
    if getattr(dataset, "train_from", None):
        return f"dataset:{dataset.train_from}", None, evaluated, 0
    train = group_hash_split(dataset.id, manifest, evaluated)
    return "hash-split", train, evaluated & ~train, 0


def training_pool(ctx: CellContext) -> tuple[Pool, np.ndarray]:
    """The training pool and the boolean mask of evaluated rows of ``ctx``'s dataset (readable items only)."""
    ds = ctx.dataset
    source, train, evaluated, dropped = split_of(ds, ctx.manifest)
    evaluated = evaluated & ctx.valid
    if source == "official-split":
        rows = np.flatnonzero(train & ctx.valid)
        notes = (f"fewshot on {ds.id}: {dropped} official training item(s) share a group with evaluated items and "
                 "are left out",) if dropped else ()
        split = "official split" + (", training items of evaluated groups left out"
                                    if item_groups(ctx.manifest) is not None else "")
        return Pool(ctx.image_embeddings, rows, ctx.labels[rows], source, split, notes), evaluated
    if train is None:
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
        return Pool(images.embeddings, rows, labels[rows], source,
                    f"training set {ds.train_from}, a different dataset"), evaluated
    rows = np.flatnonzero(train & ctx.valid)
    return Pool(ctx.image_embeddings, rows, ctx.labels[rows], source, split_rule(ctx.manifest)), evaluated


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

    def check(self, dataset, manifest):
        """Two classes to train on, from the labels alone (unreadable files may still remove some)."""
        source, train, _, _ = split_of(dataset, manifest)
        if train is None:
            return None  # the training set's own classes are checked when it is scored
        n = len(np.unique(np.asarray(manifest.labels)[train]))
        if n < 2:
            return f"few-shot needs training items of at least two classes ({source} has {n})"
        return None

    def inputs(self, dataset, manifest) -> Inputs:
        """Its own images; and the declared training set's, unless the dataset has its own train split."""
        images = {dataset.id: ""}
        if getattr(dataset, "train_from", None) and official_split(dataset, manifest) is None:
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

        with probe_convergence() as unconverged:
            for k in ks:
                for draw in range(self.draws):
                    picked = draw_support(pool.labels, classes, k, draw, self.seed)
                    order = np.argsort(pool.rows[picked], kind="stable")  # memory-mapped rows read in file order
                    fit((k, draw), normalised(pool.embeddings[pool.rows[picked][order]]), pool.labels[picked][order])
            fit(("all", 0), normalised(pool.embeddings[pool.rows]), pool.labels)  # pool rows are in file order
        notes += convergence_note(self.id, ctx.dataset.id, unconverged[0])
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
                    "headline": fewshot_headline(headline, ks[-1], self.draws),
                    "grouping": "Record meta 'group'" if item_groups(ctx.manifest) is not None else "none (items)",
                    "bootstrap": bootstrap_label(groups)}
        return TaskResult(out, notes=notes, protocol=protocol)


@hookimpl
def register_tasks(register):
    register(FewShot())
