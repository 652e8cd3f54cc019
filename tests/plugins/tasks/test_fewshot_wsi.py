"""Few-shot WSI classification on synthetic tile embeddings: patient-disjoint splits by the one split rule,
prototypes that are nearest class means of mean-pooled slides, an ABMIL that learns, reproducible draws."""
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest

from pathboard.core.engine import plugins
from pathboard.core.interfaces.dataset import Manifest, SlideDataset
from pathboard.core.interfaces.embeddings import SlideEmbedding, TileSet
from pathboard.core.interfaces.task import CellContext
from pathboard.core.science.metrics import classification_metrics, median_metrics
from pathboard.core.science.shots import draw_support
from pathboard.core.science.splits import evaluated_items, group_hash_split
from pathboard.plugins.tasks import fewshot_wsi
from pathboard.testing import check_task

DIM = 16


def slide_set(slides_per_patient, signal=1.0, tiles=24, seed=0, splits=None, eval_split=None, field="group",
              failed=()):
    """(dataset, manifest, tiles): ``slides_per_patient[c]`` lists, per patient of class c, how many
    slides it has. A slide's tiles: a quarter near its class centre (scaled by ``signal``), the rest
    shared background, all L2-normalised."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(slides_per_patient), DIM)) * 2
    paths, labels, meta, done = [], [], [], {}
    for c, patients in enumerate(slides_per_patient):
        for p, n in enumerate(patients):
            for s in range(n):
                path = f"c{c}/p{p}/slide{s}.svs"
                x = rng.normal(size=(tiles, DIM))
                x[: tiles // 4] += signal * centres[c]
                x /= np.linalg.norm(x, axis=1, keepdims=True)
                paths.append(path)
                labels.append(c)
                meta.append({field: f"patient-{c}-{p}"} if field else {})
                if path not in failed:
                    done[path] = (c, SlideEmbedding(x.astype(np.float32), np.zeros((tiles, 2), np.int64), {}))
    classes = [f"class{c}" for c in range(len(slides_per_patient))]
    splits = splits(paths) if splits else [None] * len(paths)
    dataset = SlideDataset(id="synthetic-wsi", folder="synthetic", classes=classes, eval_split=eval_split,
                           splits=tuple(sorted({s for s in splits if s})))
    manifest = Manifest(root=Path("."), paths=paths, labels=np.array(labels), splits=splits, hash="synthetic",
                        meta=meta)
    return dataset, manifest, TileSet(done, {p: "no tissue found" for p in failed})


def context(task, dataset, manifest, tiles, **options):
    values = task.configure(options).values
    return CellContext("synthetic-model", dataset, manifest, None, None, None, None,
                       MappingProxyType(dict(values)), tiles=tiles)


def task(**options):
    return plugins.get("task", "fewshot-wsi").configure(options)


def test_a_slides_patient_is_its_group_else_the_slide_itself():
    _, grouped, _ = slide_set([[2], [1]], field="group")
    _, plain, _ = slide_set([[2], [1]], field=None)
    assert list(fewshot_wsi.patients(grouped)) == ["patient-0-0", "patient-0-0", "patient-1-0"]
    assert list(fewshot_wsi.patients(plain)) == plain.paths
    # groups come from one place, the Record meta "group": a case or subject field alone is not a patient
    _, case_only, _ = slide_set([[2], [1]], field="case")
    assert list(fewshot_wsi.patients(case_only)) == case_only.paths


def test_the_split_is_few_shots_split():
    dataset, manifest, _ = slide_set([[3, 1, 2, 2, 1, 3, 2], [2, 2, 1, 1, 3, 1]])
    train, evaluated, _, _ = fewshot_wsi.patient_split(dataset, manifest)
    assert np.array_equal(train, group_hash_split(dataset.id, manifest, evaluated_items(dataset, manifest)))


def test_hash_split_is_patient_disjoint_stratified_and_stable():
    dataset, manifest, tiles = slide_set([[3, 1, 2, 2, 1, 3, 2], [2, 2, 1, 1, 3, 1]])
    train, evaluated, source, dropped = fewshot_wsi.patient_split(dataset, manifest)
    groups = np.array(fewshot_wsi.patients(manifest))
    assert source == "hash-split" and dropped == 0
    assert not (train & evaluated).any() and (train | evaluated).all()
    assert not set(groups[train]) & set(groups[evaluated])  # no patient on both sides
    for c, n_patients in enumerate((7, 6)):  # half of each class's patients (rounded down) train
        assert len(set(groups[train & (manifest.labels == c)])) == n_patients // 2
    again = fewshot_wsi.patient_split(dataset, manifest)
    assert (again[0] == train).all() and (again[1] == evaluated).all()
    # the scored cell reports the same pool
    result = task(methods="prototype").score(context(task(methods="prototype"), dataset, manifest, tiles))
    info = result["train=hash-split"]
    sizes = {m.name: m.value for m in info}
    assert (sizes["n_train"], sizes["n_eval"]) == (train.sum(), evaluated.sum())
    assert sizes["n_train_patients"] == 3 + 3 and sizes["n_eval_patients"] == 4 + 3


def test_official_split_leaves_out_training_slides_of_test_patients():
    def splits(paths):  # patient 0 of class 0 has its first slide in test, its second in train
        return ["test" if (p.startswith("c0/p0/") and p.endswith("slide0.svs")) or "/p1/" in p else "train"
                for p in paths]

    dataset, manifest, tiles = slide_set([[2, 1, 1, 1], [1, 1, 1, 1]], splits=splits, eval_split="test")
    train, evaluated, source, dropped = fewshot_wsi.patient_split(dataset, manifest)
    assert source == "official-split" and dropped == 1
    groups = np.array(fewshot_wsi.patients(manifest))
    assert "c0/p0/slide1.svs" not in {manifest.paths[i] for i in np.flatnonzero(train)}
    assert not set(groups[train]) & set(groups[evaluated])
    t = task(methods="prototype")
    result = t.score(context(t, dataset, manifest, tiles))
    assert "train=official-split" in result and any("left 1 training slide" in n for n in result.notes)


def test_prototype_is_nearest_class_mean_of_mean_pooled_slides():
    # weak signal, so that predictions vary between draws and are not all right
    dataset, manifest, tiles = slide_set([[1] * 20, [2] * 5 + [1] * 15, [1] * 18], signal=0.35, seed=3,
                                         failed=("c1/p7/slide0.svs",))
    t = task(methods="prototype", max_k=4)
    result = t.score(context(t, dataset, manifest, tiles))
    train, evaluated, _, _ = fewshot_wsi.patient_split(dataset, manifest)
    usable = np.array([p in tiles for p in manifest.paths])
    pool, test = np.flatnonzero(train & usable), np.flatnonzero(evaluated & usable)

    def pooled(i):
        v = tiles[manifest.paths[i]].embeddings.astype(np.float64).mean(axis=0)
        return v / np.linalg.norm(v)

    varied = set()
    for k in (1, 2, 4):
        for d in range(5):
            support = pool[draw_support(manifest.labels[pool], np.arange(3), k, d)]
            means = []
            for c in range(3):
                m = np.mean([pooled(i) for i in support if manifest.labels[i] == c], axis=0)
                means.append(m / np.linalg.norm(m))
            predicted = [int(np.argmax([pooled(i) @ m for m in means])) for i in test]
            expected = classification_metrics(manifest.labels[test], predicted, dataset.classes)
            got = {m.name: m.value for m in result[f"prototype/k={k}/draw={d}"]}
            for metric in expected:
                assert got[metric.name] == pytest.approx(metric.value), (k, d, metric.name)
            varied.add(round(got["balanced_accuracy"], 6))
    assert len(varied) > 1 and "prototype/k=8/median" not in result  # k capped by max_k (9 slides could give 8)
    assert result[""][0].n == len(test)


def test_abmil_learns_a_separable_case_and_draws_are_reproducible():
    dataset, manifest, tiles = slide_set([[1] * 8, [1] * 8], signal=1.5, seed=1)
    t = task(methods="abmil", max_k=4)
    first = t.score(context(t, dataset, manifest, tiles))
    assert set(first) == {"", "train=hash-split"} | {f"abmil/k={k}/{v}" for k in (1, 2, 4) for v in
                                                              ["median", *(f"draw={d}" for d in range(5))]}
    accuracy = {m.name: m for m in first["abmil/k=4/median"]}["balanced_accuracy"]
    assert accuracy.value > 0.85, accuracy  # chance is 0.5
    assert {m.name: m for m in first[""]}["balanced_accuracy"].value == pytest.approx(accuracy.value)
    again = t.score(context(t, dataset, manifest, tiles))
    assert {v: [(m.name, m.value) for m in ms] for v, ms in first.items()} == \
        {v: [(m.name, m.value) for m in ms] for v, ms in again.items()}


def test_abmil_predicts_on_the_run_s_device(monkeypatch):
    """The cell's device (the run's, ``ctx.device``) is where ABMIL's models classify the test slides."""
    dataset, manifest, tiles = slide_set([[1] * 4, [1] * 4], signal=1.5, seed=1)
    t = task(methods="abmil", max_k=2)
    seen = []
    classify = fewshot_wsi.abmil_classify

    def spy(models, test, device="cpu"):
        seen.append(device)
        return classify(models, test, "cpu")  # no GPU here: the CPU's answers, for the metrics

    monkeypatch.setattr(fewshot_wsi, "abmil_classify", spy)
    ctx = context(t, dataset, manifest, tiles)
    assert ctx.device == "cpu"  # the default: a context built without a run
    t.score(replace(ctx, device="cuda:1"))
    assert seen == ["cuda:1"]


def test_every_variant_with_all_methods_and_k_capped_by_the_smallest_class():
    dataset, manifest, tiles = slide_set([[1] * 6, [1] * 12, [1] * 40], seed=2)
    t = task()  # prototype, linear probe and ABMIL; class 0 has 3 training patients: k = 1, 2
    result = check_task(t, context(t, dataset, manifest, tiles))
    ks = (1, 2)
    expected = {f"{m}/k={k}/{v}" for m in fewshot_wsi.METHODS for k in ks
                for v in ["median", *(f"draw={d}" for d in range(5))]}
    assert set(result) == expected | {"", "train=hash-split"}
    assert {m.name: m.value for m in result["train=hash-split"]}["max_k"] == 2
    headline = {m.name: m.value for m in result[""]}
    for m in result["prototype/k=2/median"]:  # the headline: prototype at the largest k, median over draws
        assert headline[m.name] == pytest.approx(m.value)


def test_registered_task_applies_to_labelled_slide_sets_only_and_checks_two_training_classes():
    t = plugins.get("task", "fewshot-wsi")
    check_task(t)
    assert t.default is True and t.uses_prompts is False and t.requires == {"image"}
    assert t.supports(plugins.get("dataset", "tcga-nsclc")) is None
    assert "patch-level" in t.supports(plugins.get("dataset", "lc25000-lung"))
    assert "unlabelled" in t.supports(SlideDataset(id="unlabelled-wsi", folder="x"))
    zeroshot = plugins.get("task", "zeroshot-wsi")
    dataset, manifest, _ = slide_set([[1] * 4, [1] * 4])
    inputs = t.inputs(dataset, manifest)
    assert inputs.tiles == zeroshot.inputs(dataset, manifest).tiles and inputs.tile_items == "labelled"
    assert t.check(dataset, manifest) is None
    dataset, manifest, _ = slide_set([[1] * 4, [1]])  # class 1's only patient is evaluated
    assert "at least two classes (hash-split has 1)" in t.check(dataset, manifest)


def test_ebrains_slides_are_split_by_patient(atlas):
    """EBRAINS's group is its pat_id: two slides of one patient never sit on both sides (before the one split
    rule, fewshot-wsi read only ``case``/``subject`` fields and split EBRAINS slide by slide)."""
    from support.layouts import EBRAINS_HEADER, EBRAINS_ROWS, OTHER_GBM, TEST_GBM, write_csv

    rows = [(u, "patient_2" if u in (TEST_GBM, OTHER_GBM) else p, *rest) for u, p, *rest in EBRAINS_ROWS]
    write_csv(atlas / "DigitalBrainTumourAtlas/v1.0/annotation.csv", EBRAINS_HEADER, rows)
    dataset = plugins.get("dataset", "ebrains")
    manifest = dataset.manifest(atlas)
    train, evaluated, source, _ = fewshot_wsi.patient_split(dataset, manifest)
    sides = {train[i] for i, p in enumerate(manifest.paths) if TEST_GBM in p or OTHER_GBM in p}
    assert source == "hash-split" and len(sides) == 1
    assert list(fewshot_wsi.patients(manifest)).count("patient_2") == 2


def test_intervals_resample_patients_not_slides():
    """Four slides a patient are not four independent slides: every interval resamples patients."""
    dataset, manifest, tiles = slide_set([[4] * 12, [4] * 12], signal=0.3, seed=5)
    t = task(methods="prototype", max_k=2)
    result = t.score(context(t, dataset, manifest, tiles))
    train, evaluated, _, _ = fewshot_wsi.patient_split(dataset, manifest)
    pool, test = np.flatnonzero(train), np.flatnonzero(evaluated)
    patients = np.array(fewshot_wsi.patients(manifest))[test]
    assert result.protocol["bootstrap"] == f"cluster by group ({len(set(patients))} groups)"

    def pooled(i):
        v = tiles[manifest.paths[i]].embeddings.astype(np.float64).mean(axis=0)
        return v / np.linalg.norm(v)

    preds = []
    for d in range(5):  # the headline's draws: prototype at k = 2
        support = pool[draw_support(manifest.labels[pool], np.arange(2), 2, d)]
        means = [np.mean([pooled(i) for i in support if manifest.labels[i] == c], axis=0) for c in range(2)]
        preds.append(np.array([int(np.argmax([pooled(i) @ (m / np.linalg.norm(m)) for m in means])) for i in test]))
    y = manifest.labels[test]
    by_patient = {m.name: m for m in median_metrics(y, preds, dataset.classes, groups=patients)}
    by_slide = {m.name: m for m in median_metrics(y, preds, dataset.classes)}
    got = {m.name: m for m in result[""]}["balanced_accuracy"]
    want, narrow = by_patient["balanced_accuracy"], by_slide["balanced_accuracy"]
    assert (got.value, got.ci_low, got.ci_high) == pytest.approx((want.value, want.ci_low, want.ci_high))
    assert (want.ci_low, want.ci_high) != pytest.approx((narrow.ci_low, narrow.ci_high))  # not what slides give
    draw = {m.name: m for m in result["prototype/k=2/draw=0"]}["balanced_accuracy"]
    grouped = {m.name: m for m in classification_metrics(y, preds[0], dataset.classes, groups=patients)}
    assert (draw.ci_low, draw.ci_high) == pytest.approx((grouped["balanced_accuracy"].ci_low,
                                                        grouped["balanced_accuracy"].ci_high))


def test_probe_fits_that_stop_before_converging_are_a_note_of_the_cell(monkeypatch):
    from pathboard.core.science import linear_probe, logistic

    dataset, manifest, tiles = slide_set([[1] * 6, [1] * 6], signal=0.3)
    t = task(methods="linear-probe", max_k=2)
    assert not any("stopped before converging" in n for n in t.score(context(t, dataset, manifest, tiles)).notes)
    monkeypatch.setattr(linear_probe, "fit_logistic_many", lambda *a, **k: logistic.fit_logistic_many(*a, max_iter=1))
    notes = t.score(context(t, dataset, manifest, tiles)).notes
    assert any("fewshot-wsi on synthetic-wsi: " in n and " linear-probe fit(s) stopped before converging" in n
               for n in notes), notes
