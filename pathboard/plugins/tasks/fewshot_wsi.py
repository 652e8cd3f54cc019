"""Few-shot slide classification on frozen tile embeddings.

With k labelled training slides per class (k = 1, 2, 4, ... up to ``max_k`` and the smallest class of
the training pool), three classifiers are fitted:

- ``prototype`` and ``linear-probe``: few-shot's nearest class mean (``prototype_classifier``) and
  cross-validated logistic regression (``linear_probe_classifier``), on slide embeddings: the mean of a
  slide's tile embeddings, L2-normalised;
- ``abmil``: gated attention-based MIL over the tile embeddings (``abmil_fit``; Ilse et al., ICML 2018),
  trained on the k-shot slides only (on the CPU), seeded per draw; ``abmil_classify`` reads each test slide once
  for all of a cell's models, on the run's device (``ctx.device``: a GPU's pass over a slide's tiles is almost
  free, against ~12 ms per model per 10^4 tiles on a CPU core).

The split is **patient-disjoint**, by pathboard's one split rule: a slide's group (Record meta ``"group"``)
is its patient (TCGA: the case; GTEx: the donor; EBRAINS: ``pat_id``), or the slide itself. Training pool,
recorded in the variant ``train=<source>``:

1. ``official-split``: the dataset's own ``"train"`` slides, evaluated on the evaluated slides
   (``evaluated_items``); training slides of a patient who also has an evaluated slide are left out of the
   pool (with a note);
2. ``hash-split``: otherwise ``group_hash_split``, a deterministic, stratified 50/50 split of the patients
   of the evaluated slides (each patient under its most frequent class). No patient has slides on both sides.

Each k is drawn ``DRAWS`` times with few-shot's ``draw_support``. Slides whose tiling failed are absent.

Variants as few-shot's: ``<method>/k=<k>/draw=<d>``; ``<method>/k=<k>/median`` (the spread over draws
in q1/q3, as few-shot's); ``""``: prototype (or the first method run) at the largest k, median over draws with
a bootstrap CI. Every interval resamples patients (the Record meta "group"), not slides: a patient's slides
are not independent; without groups, slides. ``train=<source>``: ``n_train`` and ``n_eval`` (slides),
``n_train_patients``, ``n_eval_patients`` and ``max_k``.

Slide models (TITAN, PRISM) fit the prototype and linear probe on their own slide embeddings; ABMIL, which
trains on tiles, is left out for them with a note.

Options: ``methods``, ``max_k``, and the slide tasks' tiling (shared with zero-shot WSI, so the tiles are
embedded once for both). It reads every labelled slide's tiles (the training slides too, which zero-shot
never tiles) and trains ABMIL once per draw, so it costs more than zero-shot;
``--option fewshot-wsi.methods=prototype,linear-probe`` leaves ABMIL out.
"""
from __future__ import annotations

import numpy as np

from pathboard.api import (
    DRAWS,
    SEED,
    CellContext,
    Inputs,
    Metric,
    Option,
    PathboardError,
    SlideTask,
    TaskResult,
    abmil_classify,
    abmil_fit,
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
    official_split,
    predict_all,
    probe_convergence,
    prototype_classifier,
    shot_counts,
    torch_seed,
)

METHODS = ("prototype", "linear-probe", "abmil")
MAX_K = 16


def patient_split(dataset, manifest) -> tuple[np.ndarray, np.ndarray, str, int]:
    """(training-pool mask, evaluated mask, source, slides dropped from the pool because their patient
    is evaluated) over the manifest rows, from the labels, splits and groups alone."""
    official = official_split(dataset, manifest)
    if official is not None:
        train, evaluated, dropped = official
        return train, evaluated, "official-split", dropped
    evaluated = evaluated_items(dataset, manifest)
    train = group_hash_split(dataset.id, manifest, evaluated)
    return train, evaluated & ~train, "hash-split", 0


def patients(manifest) -> np.ndarray:
    """Every slide's patient: its group, or the slide itself."""
    groups = item_groups(manifest)
    return groups if groups is not None else np.asarray(manifest.paths, dtype=object)


class FewShotWSI(SlideTask):
    id = "fewshot-wsi"
    title = "Few-shot WSI classification (prototype, linear probe, ABMIL)"
    uses_prompts = False
    requires = frozenset({"image"})
    slide_level = True
    options = (
        Option("methods", str, METHODS, "classifiers to fit: prototype, linear-probe and/or abmil",
               choices=METHODS, multiple=True),
        *SlideTask.options,
        Option("max_k", int, MAX_K, "largest number of training slides per class", min=1),
    )
    draws: int = DRAWS
    seed: int = SEED

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(self.values["methods"])

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
        methods = self.methods
        if ctx.slides is not None and "abmil" in methods:  # a slide model: its slide embeddings, no bag of tiles
            if len(methods) == 1:
                raise PathboardError(f"{ctx.model_id} is a slide encoder: ABMIL trains on tiles; choose "
                                     "--option fewshot-wsi.methods=prototype,linear-probe")
            methods = tuple(m for m in methods if m != "abmil")
            notes.append(f"fewshot-wsi on {ctx.dataset.id}: {ctx.model_id} is a slide encoder; ABMIL trains on "
                         "tiles, so only the probes on its slide embeddings are fitted")
        pool_x = ctx.slide_matrix([paths[i] for i in pool_rows])  # a slide model's own, or the mean of tiles
        eval_x = ctx.slide_matrix([paths[i] for i in eval_rows])
        ks = shot_counts(min(int(counts.min()), int(self.values["max_k"])))
        linear = [m for m in methods if m != "abmil"]
        keys, weights, biases, preds, mil = [], [], [], {}, {}
        stopped = 0  # probe fits that stopped before converging
        for k in ks:
            for draw in range(self.draws):
                picked = np.sort(draw_support(pool_labels, classes, k, draw, self.seed))
                x, y = pool_x[picked], pool_labels[picked]
                for method in linear:
                    if method == "prototype":
                        w, b = prototype_classifier(x, y, classes)
                    else:
                        with probe_convergence() as unconverged:
                            w, b = linear_probe_classifier(x, y, classes, self.seed)
                        stopped += unconverged[0]
                    keys.append((method, k, draw))
                    weights.append(w)
                    biases.append(b)
                if "abmil" in methods:
                    bags = [ctx.tiles[paths[pool_rows[i]]].embeddings for i in picked]
                    mil[("abmil", k, draw)] = abmil_fit(bags, y, classes, torch_seed(self.seed, k, draw))
        notes += convergence_note(self.id, ctx.dataset.id, stopped)
        if mil:  # every test slide's tiles read once for all the k and draws' models
            test_bags = [ctx.tiles[paths[i]].embeddings for i in eval_rows]
            preds.update(zip(mil, classes[abmil_classify(list(mil.values()), test_bags, ctx.device)]))
        if keys:
            predicted = classes[predict_all(eval_x, np.arange(len(eval_x)), np.stack(weights), np.stack(biases))]
            preds.update(zip(keys, predicted))
        out: dict[str, list[Metric]] = {}
        by_patient = item_groups(ctx.manifest, eval_rows)  # a patient's slides are resampled together
        for method in methods:
            for k in ks:
                draws = [classification_metrics(y_true, preds[(method, k, d)], ctx.class_names, ctx.ordinal,
                                                groups=by_patient) for d in range(self.draws)]
                for d, metrics in enumerate(draws):
                    out[f"{method}/k={k}/draw={d}"] = metrics
                out[f"{method}/k={k}/median"] = iqr_metrics(draws)
        headline = "prototype" if "prototype" in methods else methods[0]
        out[""] = median_metrics(y_true, [preds[(headline, ks[-1], d)] for d in range(self.draws)],
                                 ctx.class_names, ctx.ordinal, groups=by_patient)
        n_eval = len(eval_rows)
        sizes = (("n_train", len(pool_rows)), ("n_eval", n_eval),
                 ("n_train_patients", len({groups[i] for i in pool_rows})),
                 ("n_eval_patients", len({groups[i] for i in eval_rows})), ("max_k", ks[-1]))
        out[f"train={source}"] = [Metric(name, float(v), float(v), float(v), n_eval) for name, v in sizes]
        protocol = {"headline": fewshot_headline(headline, ks[-1], self.draws, int(self.values["max_k"]), "class"),
                    "bootstrap": bootstrap_label(by_patient), "headline_k": ks[-1], "draws": self.draws}
        return TaskResult(out, notes=notes, protocol=protocol)


@hookimpl
def register_tasks(register):
    register(FewShotWSI())
