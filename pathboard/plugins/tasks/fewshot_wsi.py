"""Few-shot slide classification on frozen tile embeddings.

With k labelled training slides per class (k = 1, 2, 4, ... up to ``max_k`` and the smallest class of
the training pool), three classifiers are fitted:

- ``prototype`` and ``linear-probe``: few-shot's (:mod:`pathboard.plugins.tasks.fewshot`) nearest
  class mean and cross-validated logistic regression, on slide embeddings: the mean of a slide's
  tile embeddings, L2-normalised;
- ``abmil``: gated attention-based MIL (Ilse et al., ICML 2018) over the tile embeddings:
  ``a = softmax(w . (tanh(V h) * sigmoid(U h)))`` over a slide's tiles (V, U: D -> 128), the slide is
  ``sum a_i h_i`` and a linear layer (D -> C) classifies it. Trained on the k-shot slides only with
  Adam (lr ``LR``, weight decay ``WEIGHT_DECAY``), one slide per step, ``max(MIN_STEPS, EPOCHS x
  slides)`` steps in a seeded order, each step reading at most ``TRAIN_TILES`` tiles of its slide
  (a seeded subsample; prediction reads every tile), on the CPU, seeded per draw (torch's global
  generator is restored afterwards).

The split is **patient-disjoint**: a slide's patient is its ``case`` (TCGA) or ``subject`` (GTEx)
record field, or else the slide itself. Training pool, recorded in the variant ``train=<source>``:

1. ``official-split``: the dataset's own ``"train"`` slides, evaluated on ``eval_split`` (or, without
   one, every labelled slide not in ``"train"``); training slides of a patient who also has a test
   slide are left out of the pool (with a note);
2. ``patient-hash-split``: otherwise, a deterministic, stratified 50/50 split of the patients of the
   evaluated slides: each patient takes the smallest label among its slides as its class, and within
   each class the patients ordered by sha256("<dataset id>\\n<patient>") train in their first half
   (rounded down), the rest are evaluated. No patient has slides on both sides.

Each k is drawn ``DRAWS`` times with few-shot's :func:`~pathboard.plugins.tasks.fewshot.draw_support`
(``numpy.random.default_rng((seed, k, draw))`` per class). Slides whose tiling failed are absent.

Variants as few-shot's: ``<method>/k=<k>/draw=<d>``; ``<method>/k=<k>/median`` (the spread over draws
in q1/q3, as few-shot's); ``""``: prototype (or the first method run) at the largest k, median over draws with
a bootstrap CI; ``train=<source>``: ``n_train`` and ``n_eval`` (slides), ``n_train_patients``,
``n_eval_patients`` and ``max_k``.

Options: ``methods``, ``max_k``, and the tiling (``mpp``/``magnification``/``tile_size``, shared with
zero-shot WSI, so the tiles are embedded once for both). It reads every labelled slide's tiles (the
training slides too, which zero-shot never tiles) and trains ABMIL once per draw, so it costs more
than zero-shot; ``--option fewshot-wsi.methods=prototype,linear-probe`` leaves ABMIL out.
"""
from __future__ import annotations

import hashlib

import numpy as np

from pathboard import hookimpl
from pathboard.core.errors import PathboardError
from pathboard.core.interfaces.options import Option
from pathboard.core.interfaces.task import CellContext, Inputs, Task, TaskResult
from pathboard.core.media.tiling import Tiling
from pathboard.core.science.metrics import SEED, Metric, classification_metrics, iqr_metrics, median_metrics, normalised
from pathboard.plugins.tasks.fewshot import (
    DRAWS,
    draw_support,
    has_official_split,
    linear_probe_classifier,
    predict_all,
    prototype_classifier,
    shot_counts,
)
from pathboard.plugins.tasks.zeroshot_wsi import TILING_OPTIONS, tiling_from

METHODS = ("prototype", "linear-probe", "abmil")
MAX_K = 16
#: record fields naming a slide's patient, in order (TCGA: case barcode; GTEx: subject)
PATIENT_FIELDS = ("case", "subject")
# ABMIL
HIDDEN = 128
LR = 1e-3
WEIGHT_DECAY = 1e-4
EPOCHS = 25
MIN_STEPS = 100
TRAIN_TILES = 512


def patients(manifest) -> list[str]:
    """The patient of every manifest row: its ``case`` or ``subject`` record field, else its path."""
    meta = list(getattr(manifest, "meta", None) or [])
    out = []
    for i, path in enumerate(manifest.paths):
        fields = meta[i] if i < len(meta) else {}
        out.append(next((str(fields[f]) for f in PATIENT_FIELDS if fields.get(f)), path))
    return out


def patient_hash_split(dataset_id: str, groups: list[str], labels: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Boolean train mask over the ``candidates`` rows, whole patients at a time: per class (a patient's
    smallest label), the first half of its patients ordered by sha256("<dataset id>\\n<patient>")."""
    labels = np.asarray(labels)
    group_class: dict[str, int] = {}
    for i in np.flatnonzero(candidates):
        group_class[groups[i]] = min(group_class.get(groups[i], int(labels[i])), int(labels[i]))
    training = set()
    for c in sorted(set(group_class.values())):
        members = sorted((g for g, gc in group_class.items() if gc == c),
                         key=lambda g: hashlib.sha256(f"{dataset_id}\n{g}".encode()).digest())
        training.update(members[: len(members) // 2])
    return candidates & np.array([g in training for g in groups], dtype=bool)


def patient_split(dataset, manifest) -> tuple[np.ndarray, np.ndarray, str, int]:
    """(training-pool mask, evaluated mask, source, slides dropped from the pool because their patient
    is evaluated) over the manifest rows, from the labels, splits and patients alone."""
    labels = np.asarray(manifest.labels)
    labelled = labels >= 0
    groups = patients(manifest)
    official = has_official_split(dataset, labelled, manifest.splits)
    if official is not None:
        train, evaluated = official
        tested = {groups[i] for i in np.flatnonzero(evaluated)}
        shared = train & np.array([g in tested for g in groups], dtype=bool)
        return train & ~shared, evaluated, "official-split", int(shared.sum())
    splits = np.array([s or "" for s in manifest.splits], dtype=object)
    split = getattr(dataset, "eval_split", None)
    is_eval = labelled & ((splits == split) if split else splits != "train")
    candidates = is_eval if is_eval.any() else labelled
    train = patient_hash_split(dataset.id, groups, labels, candidates)
    return train, candidates & ~train, "patient-hash-split", 0


def slide_embedding(tiles) -> np.ndarray:
    """[D]: the mean of a slide's tile embeddings, L2-normalised."""
    return normalised(np.asarray(tiles.embeddings, dtype=np.float32).mean(axis=0, keepdims=True))[0]


def torch_seed(seed: int, k: int, draw: int) -> int:
    return int(np.random.SeedSequence((seed, k, draw)).generate_state(1)[0])


def abmil_predict(support: list[np.ndarray], y: np.ndarray, classes: np.ndarray, test: list[np.ndarray],
                  seed: int) -> np.ndarray:
    """Class positions (into ``classes``) that a gated-attention MIL model trained on the ``support``
    bags ([T_i, D] tile embeddings, labels ``y``) predicts for the ``test`` bags."""
    import torch
    from torch import nn

    class GatedABMIL(nn.Module):
        def __init__(self, dim: int, n_classes: int):
            super().__init__()
            self.v = nn.Linear(dim, HIDDEN)
            self.u = nn.Linear(dim, HIDDEN)
            self.w = nn.Linear(HIDDEN, 1)
            self.head = nn.Linear(dim, n_classes)

        def forward(self, h):  # [T, D] -> [C]
            a = self.w(torch.tanh(self.v(h)) * torch.sigmoid(self.u(h))).squeeze(1)
            return self.head(torch.softmax(a, dim=0) @ h)

    target = torch.as_tensor(np.searchsorted(classes, y), dtype=torch.long)
    bags = [torch.from_numpy(np.ascontiguousarray(b, dtype=np.float32)) for b in support]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        model = GatedABMIL(bags[0].shape[1], len(classes))
        optimiser = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
        loss_fn = nn.CrossEntropyLoss()
        steps = max(MIN_STEPS, EPOCHS * len(bags))
        order: list[int] = []
        model.train()
        for _ in range(steps):
            if not order:
                order = torch.randperm(len(bags), generator=generator).tolist()
            i = order.pop()
            bag = bags[i]
            if len(bag) > TRAIN_TILES:
                bag = bag[torch.randperm(len(bag), generator=generator)[:TRAIN_TILES]]
            optimiser.zero_grad()
            loss = loss_fn(model(bag)[None], target[i : i + 1])
            loss.backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            return np.array([int(model(torch.from_numpy(np.ascontiguousarray(b, dtype=np.float32))).argmax())
                             for b in test], dtype=np.int64)


class FewShotWSI(Task):
    id = "fewshot-wsi"
    title = "Few-shot WSI classification (prototype, linear probe, ABMIL)"
    uses_prompts = False
    requires = frozenset({"image"})
    needs = frozenset({"slides", "labels"})
    options = (
        Option("methods", str, METHODS, "classifiers to fit: prototype, linear-probe and/or abmil",
               choices=METHODS, multiple=True),
        *TILING_OPTIONS,
        Option("max_k", int, MAX_K, "largest number of training slides per class", min=1),
    )
    draws: int = DRAWS
    seed: int = SEED

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(self.values["methods"])

    @property
    def tiling(self) -> Tiling:
        return tiling_from(self.values)

    def check(self, dataset, manifest):
        """Two classes with a labelled slide in the training pool (tiling failures may still remove some)."""
        train, evaluated, source, _ = patient_split(dataset, manifest)
        n = len(np.unique(np.asarray(manifest.labels)[train]))
        if n < 2:
            return f"few-shot WSI needs training slides of at least two classes ({source} has {n})"
        if not evaluated.any():
            return f"few-shot WSI has no labelled slide to evaluate ({source})"
        return None

    def inputs(self, dataset, manifest) -> Inputs:
        return Inputs(tiles=self.tiling, tile_items="labelled")

    def score(self, ctx: CellContext) -> TaskResult:
        train, evaluated, source, dropped = patient_split(ctx.dataset, ctx.manifest)
        paths, labels, groups = ctx.manifest.paths, np.asarray(ctx.labels), patients(ctx.manifest)
        tiled = {path for path, _ in ctx.tiles.labelled()}
        have = np.array([p in tiled for p in paths], dtype=bool)
        pool_rows, eval_rows = np.flatnonzero(train & have), np.flatnonzero(evaluated & have)
        if not len(eval_rows):
            raise PathboardError(f"{ctx.dataset.id}: no labelled, tiled test slide for few-shot WSI")
        pool_labels, y_true = labels[pool_rows], labels[eval_rows]
        classes, counts = np.unique(pool_labels, return_counts=True)
        if len(classes) < 2:
            raise PathboardError(f"{ctx.dataset.id}: few-shot WSI needs training slides of at least two classes "
                                 f"({source} has {len(classes)})")
        notes = []
        if dropped:
            notes.append(f"fewshot-wsi on {ctx.dataset.id}: left {dropped} training slide(s) out of the pool: "
                         "their patient has a test slide")
        missing = sorted(set(y_true) - set(classes))
        if missing:
            notes.append(f"fewshot-wsi on {ctx.dataset.id}: no training slide of class(es) "
                         f"{', '.join(ctx.class_names[c] for c in missing)}; they are never predicted")
        pool_x = np.stack([slide_embedding(ctx.tiles[paths[i]]) for i in pool_rows])
        eval_x = np.stack([slide_embedding(ctx.tiles[paths[i]]) for i in eval_rows])
        ks = shot_counts(min(int(counts.min()), int(self.values["max_k"])))
        linear = [m for m in self.methods if m != "abmil"]
        test_bags = [ctx.tiles[paths[i]].embeddings for i in eval_rows] if "abmil" in self.methods else []
        keys, weights, biases, preds = [], [], [], {}
        for k in ks:
            for draw in range(self.draws):
                picked = np.sort(draw_support(pool_labels, classes, k, draw, self.seed))
                x, y = pool_x[picked], pool_labels[picked]
                for method in linear:
                    if method == "prototype":
                        w, b = prototype_classifier(x, y, classes)
                    else:
                        w, b = linear_probe_classifier(x, y, classes, self.seed)
                    keys.append((method, k, draw))
                    weights.append(w)
                    biases.append(b)
                if "abmil" in self.methods:
                    bags = [ctx.tiles[paths[pool_rows[i]]].embeddings for i in picked]
                    preds[("abmil", k, draw)] = classes[abmil_predict(bags, y, classes, test_bags,
                                                                      torch_seed(self.seed, k, draw))]
        if keys:
            predicted = classes[predict_all(eval_x, np.arange(len(eval_x)), np.stack(weights), np.stack(biases))]
            preds.update(zip(keys, predicted))
        out: dict[str, list[Metric]] = {}
        for method in self.methods:
            for k in ks:
                draws = [classification_metrics(y_true, preds[(method, k, d)], ctx.class_names, ctx.ordinal)
                         for d in range(self.draws)]
                for d, metrics in enumerate(draws):
                    out[f"{method}/k={k}/draw={d}"] = metrics
                out[f"{method}/k={k}/median"] = iqr_metrics(draws)
        headline = "prototype" if "prototype" in self.methods else self.methods[0]
        out[""] = median_metrics(y_true, [preds[(headline, ks[-1], d)] for d in range(self.draws)],
                                 ctx.class_names, ctx.ordinal)
        n_eval = len(eval_rows)
        sizes = (("n_train", len(pool_rows)), ("n_eval", n_eval),
                 ("n_train_patients", len({groups[i] for i in pool_rows})),
                 ("n_eval_patients", len({groups[i] for i in eval_rows})), ("max_k", ks[-1]))
        out[f"train={source}"] = [Metric(name, float(v), float(v), float(v), n_eval) for name, v in sizes]
        return TaskResult(out, notes=notes)


@hookimpl
def register_tasks(register):
    register(FewShotWSI())
