"""Few-shot classification: a tiny CLIP trained here on real LC25000 patches, scored on other patches."""
import numpy as np
import pytest
from test_trained_zero_shot import TRAIN_PER_CLASS, train_tiny_clip

from pathboard.adapters.openclip import OpenCLIPModel
from pathboard.core.embedding.embedder import Embedded
from pathboard.core.engine import plugins
from pathboard.core.engine.plan import RunConfig, plan
from pathboard.core.engine.run import execute
from pathboard.core.errors import PathboardError
from pathboard.core.interfaces.dataset import ImageFolderDataset, Manifest
from pathboard.core.interfaces.task import CellContext
from pathboard.plugins.tasks import fewshot

LUNG = ["lung_aca", "lung_n", "lung_scc"]
TRAIN_STEPS = 120  # fixed, so the result does not depend on how loaded the machine is


@pytest.fixture(scope="session")
def trained_lung(tmp_path_factory, shared_data):
    """(weights, held-out files per class): a tiny CLIP trained on the first TRAIN_PER_CLASS patches of
    each class; the held-out patches were never seen in training. Trained once per session."""
    out = tmp_path_factory.getbasetemp() / "trained-lung"
    lung = plugins.get("dataset", "lc25000-lung")
    base = shared_data / lung.folder
    files = {c: sorted((base / c).iterdir()) for c in lung.classes}
    if not (out / "weights" / "open_clip_pytorch_model.bin").is_file():
        captions = [p[0] for p in lung.prompts().prompts("single", lung.classes).values()]
        train_tiny_clip(out / "weights", [files[c][:TRAIN_PER_CLASS] for c in lung.classes], captions,
                        steps=TRAIN_STEPS)
    return out / "weights", {c: files[c][TRAIN_PER_CLASS:] for c in lung.classes}


def link(files, folder):
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        (folder / f.name).symlink_to(f)


def count_forwards(monkeypatch):
    calls = []
    original = OpenCLIPModel.encode_images

    def counted(self, batch):
        calls.append(len(batch))
        return original(self, batch)

    monkeypatch.setattr(OpenCLIPModel, "encode_images", counted)
    return calls


def variants(summary):
    return {c["variant"]: c["metrics"] for c in summary.cells}


def test_prototypes_on_held_out_real_patches_beat_chance(tmp_path, trained_lung, fresh_cache):
    weights, held_out = trained_lung
    root = tmp_path / "data"
    for c, files in held_out.items():
        link(files, root / "lung_colon_image_set" / "lung_image_sets" / c)
    cfg = RunConfig(models="quiltnet-b32", weights=(f"quiltnet-b32={weights}",), datasets="lc25000-lung",
                    data_root=str(root), tasks="fewshot", db=str(tmp_path / "pb.duckdb"), workers=0)
    out = variants(execute(plan(cfg), cfg))
    # lc25000 has no official split: pathboard's hash split, half of each class's near-duplicate groups train
    info = out["train=hash-split"]
    n_held = 3 * (200 - TRAIN_PER_CLASS)
    n_train, n_eval = info["n_train"].value, info["n_eval"].value
    assert n_train + n_eval == n_held and abs(n_train - n_held / 2) <= 6  # groups, not items, are halved
    # few-shot is at most 16 per class (issue 10): the curve stops at 16, "all" is its own variant
    assert info["max_k"].value == 16
    ks = [1, 2, 4, 8, 16]
    expected = {f"{m}/k={k}/{d}" for m in ("prototype", "linear-probe") for k in ks
                for d in [*(f"draw={i}" for i in range(5)), "median"]}
    assert set(out) == expected | {"prototype/k=all", "linear-probe/k=all", "", "train=hash-split"}
    headline = out[""]["balanced_accuracy"]
    median = out["prototype/k=16/median"]["balanced_accuracy"]
    print(f"few-shot k=16 balanced accuracy: prototype {headline.value:.3f}, "
          f"linear probe {out['linear-probe/k=16/median']['balanced_accuracy'].value:.3f}, "
          f"prototype k=1 {out['prototype/k=1/median']['balanced_accuracy'].value:.3f}")
    assert headline.value > 0.6 and headline.n == n_eval  # chance is 1/3
    assert out["linear-probe/k=16/median"]["balanced_accuracy"].value > 0.5
    assert median.q1 <= median.value <= median.q3 and np.isnan(median.ci_low)  # spread over draws: q1/q3 only
    assert headline.q1 == median.q1 and headline.q3 == median.q3
    assert headline.value == pytest.approx(median.value)
    assert headline.ci_low <= headline.value <= headline.ci_high and headline.ci_high - headline.ci_low > 0
    draws = [out[f"prototype/k=16/draw={i}"]["balanced_accuracy"].value for i in range(5)]
    assert (median.q1, median.q3) == pytest.approx(tuple(np.percentile(draws, [25, 75])))
    assert {"recall/lung_aca", "cohen_kappa", "weighted_f1", "accuracy"} <= set(out[""])


def test_draws_are_reproducible_from_the_seed():
    labels = np.repeat([0, 1, 2], [7, 12, 9])
    classes = np.array([0, 1, 2])
    a = fewshot.draw_support(labels, classes, 4, draw=2, seed=0)
    assert np.array_equal(a, fewshot.draw_support(labels, classes, 4, draw=2, seed=0))
    assert not np.array_equal(a, fewshot.draw_support(labels, classes, 4, draw=3, seed=0))
    assert not np.array_equal(a, fewshot.draw_support(labels, classes, 4, draw=2, seed=1))
    assert len(set(a)) == 12 and np.array_equal(np.bincount(labels[a]), [4, 4, 4])
    assert fewshot.shot_counts(7) == [1, 2, 4] and fewshot.shot_counts(16) == [1, 2, 4, 8, 16]


def test_hash_split_is_deterministic_stratified_and_half():
    paths = [f"c{c}/img{i}.png" for c in range(3) for i in range(11)]
    labels = np.repeat([0, 1, 2], 11)
    everything = np.ones(33, dtype=bool)
    train = fewshot.hash_split("ds", paths, labels, everything)
    assert np.array_equal(train, fewshot.hash_split("ds", list(paths), labels, everything))
    assert np.array_equal(np.bincount(labels[train]), [5, 5, 5])
    # adding an item moves at most that class's boundary: earlier decisions mostly stay
    more = fewshot.hash_split("ds", paths + ["c0/new.png"], np.append(labels, 0), np.ones(34, dtype=bool))
    assert (more[:33] == train).sum() >= 31


def synthetic_context(n_per_class=(30, 30, 30), d=16, seed=0, spread=(1.0, 1.0, 1.0)):
    """Embeddings around one centre per class (noise ``spread`` per class), an official train/test
    split, and no model at all."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(n_per_class), d)) * 3
    labels = np.repeat(np.arange(len(n_per_class)), n_per_class)
    x = (centres[labels] + rng.normal(size=(len(labels), d)) * np.asarray(spread)[labels, None]).astype(np.float32)
    splits = ["train" if i % 3 else "test" for i in range(len(labels))]
    dataset = ImageFolderDataset(id="synthetic", folder="x", classes=["a", "b", "c"][: len(n_per_class)],
                                 splits=("train", "test"), eval_split="test")
    manifest = Manifest(root=None, paths=[f"{i}.png" for i in range(len(labels))], labels=labels, splits=splits,
                        hash="h")
    images = Embedded(x, np.ones(len(labels), dtype=bool), {}, "key")
    return CellContext("m", dataset, manifest, None, None, None, images), x / np.linalg.norm(x, axis=1, keepdims=True)


def test_linear_probe_selection_and_fit_see_only_training_items(monkeypatch):
    from sklearn.linear_model import LogisticRegression

    ctx, xn = synthetic_context()
    train = np.array([s == "train" for s in ctx.splits])
    seen, chosen = [], []
    fit = LogisticRegression.fit

    def spy(self, X, y, *args, **kwargs):
        seen.append((np.asarray(X), np.asarray(y)))
        return fit(self, X, y, *args, **kwargs)

    select = fewshot.select_c
    monkeypatch.setattr(LogisticRegression, "fit", spy)
    monkeypatch.setattr(fewshot, "select_c", lambda x, y, seed: chosen.append(len(y)) or select(x, y, seed))
    task = fewshot.FewShot().configure({"methods": "linear-probe"})
    out = task.score(ctx)
    assert seen and chosen
    train_rows, test_rows = {r.tobytes() for r in xn[train]}, {r.tobytes() for r in xn[~train]}
    for X, _ in seen:
        rows = {r.tobytes() for r in X.astype(np.float32)}
        assert rows <= train_rows and not rows & test_rows
    assert sorted(set(chosen)) == [3 * k for k in fewshot.shot_counts(16)] + [3 * 20]  # k <= 16, and all 20 per class
    metrics = {v: {m.name: m for m in ms} for v, ms in out.items()}
    assert metrics["train=official-split"]["n_eval"].value == 30
    assert not any(v.startswith("prototype") for v in out)
    assert metrics[""]["balanced_accuracy"].value > 0.9  # separable: the probe's headline


def test_prototype_is_the_nearest_class_mean():
    # overlapping classes of unequal spread: the class means have unequal norms, so cosine to the
    # re-normalised mean and the raw dot product with the mean disagree
    ctx, xn = synthetic_context(n_per_class=(12, 15, 9), seed=5, d=4, spread=(0.5, 6.0, 2.0))
    out = fewshot.FewShot().configure({"methods": "prototype"}).score(ctx)
    train = np.array([s == "train" for s in ctx.splits])
    rows, labels = np.flatnonzero(train), ctx.labels[train]
    for k, draw in [(1, 0), (2, 1), (4, 3), (4, 4)]:
        support = rows[fewshot.draw_support(labels, np.array([0, 1, 2]), k, draw)]
        means = np.stack([xn[support][ctx.labels[support] == c].mean(axis=0) for c in range(3)])
        means /= np.linalg.norm(means, axis=1, keepdims=True)
        predicted = (xn[~train] @ means.T).argmax(axis=1)
        accuracy = {m.name: m.value for m in out[f"prototype/k={k}/draw={draw}"]}["accuracy"]
        assert accuracy == pytest.approx(np.mean(predicted == ctx.labels[~train]))
    assert set(out) >= {"prototype/k=4/median", "train=official-split"} and "prototype/k=8/draw=0" not in out


def test_unknown_method_fails_at_plan_time(tmp_path):
    with pytest.raises(PathboardError, match="unknown few-shot method"):
        plan(RunConfig(models="quiltnet-b32", datasets="crc-val-he-7k", tasks="fewshot", options={"fewshot.methods": "knn"}))


def test_train_from_another_dataset_then_cached(tmp_path, trained_lung, fresh_cache, monkeypatch):
    weights, held_out = trained_lung
    root = tmp_path / "data"
    for c, files in held_out.items():  # trains on the tiny CLIP's own training images, tests on unseen ones
        link(sorted(set(files[0].parent.iterdir()) - set(files))[:64], root / "fx-train" / c)
        link(files, root / "fx-test" / c)
    registry = plugins.registry("dataset")
    monkeypatch.setitem(registry, "fx-lung-train", ImageFolderDataset(
        id="fx-lung-train", folder="fx-train", classes=LUNG, prompt_file="lc25000-lung.json", split="train",
        splits=("train",)))
    monkeypatch.setitem(registry, "fx-lung-test", ImageFolderDataset(  # classes in another order
        id="fx-lung-test", folder="fx-test", classes=LUNG[::-1], prompt_file="lc25000-lung.json", split="test",
        splits=("test",), train_from="fx-lung-train"))
    calls = count_forwards(monkeypatch)
    cfg = RunConfig(models="quiltnet-b32", weights=(f"quiltnet-b32={weights}",), datasets="fx-lung-test",
                    data_root=str(root), tasks="fewshot", options={"fewshot.methods": "prototype"},
                    db=str(tmp_path / "pb.duckdb"), workers=0, batch_size=32)
    first = execute(plan(cfg), cfg)
    assert sum(calls) == 3 * 64 + 240 and not first.errors  # both datasets embedded once
    out = variants(first)
    info = out["train=dataset:fx-lung-train"]
    assert (info["n_train"].value, info["n_eval"].value, info["max_k"].value) == (3 * 64, 240, 16)  # k <= 16
    assert out[""]["balanced_accuracy"].value > 0.6
    calls.clear()
    second = execute(plan(cfg), cfg)
    assert calls == [] and second.image_forwards == 0
    assert {v: m["balanced_accuracy"].value for v, m in variants(second).items() if "n_train" not in m} == \
           {v: m["balanced_accuracy"].value for v, m in out.items() if "n_train" not in m}


def test_missing_training_dataset_is_named(tmp_path, tiny_hub, shared_data, fresh_cache):
    cfg = RunConfig(models="quiltnet-b32", datasets="crc-val-he-7k", data_root=str(shared_data), tasks="fewshot",
                    db=str(tmp_path / "pb.duckdb"), workers=0)
    summary = execute(plan(cfg), cfg)
    assert len(summary.errors) == 1
    assert "trains on nct-crc-he-100k, its declared training set, which is not available" in summary.errors[0]


def test_the_cv_shortcuts_equal_scikit_learn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(0)
    for n_classes in (2, 3, 5):
        x, y = rng.normal(size=(60, 8)), rng.integers(0, n_classes, 60)
        model = LogisticRegression().fit(x, y)
        xt, yt = rng.normal(size=(40, 8)), rng.integers(0, n_classes, 40)
        assert np.array_equal(fewshot._predict(model, xt), model.predict(xt))
        assert fewshot.balanced_accuracy(yt, model.predict(xt)) == balanced_accuracy_score(yt, model.predict(xt))


def test_support_and_test_sets_are_group_disjoint():
    from pathboard.core.embedding.embedder import Embedded
    from pathboard.core.interfaces.dataset import Manifest
    from pathboard.core.interfaces.task import CellContext

    rng = np.random.default_rng(3)
    n = 90
    labels = np.repeat([0, 1, 2], 30)
    groups = [f"patient{i // 3}" for i in range(n)]  # three items per patient (rotated twins, one slide, ...)
    paths = [f"{i}.png" for i in range(n)]
    train = fewshot.hash_split("ds", paths, labels, np.ones(n, dtype=bool), groups)
    assert {groups[i] for i in np.flatnonzero(train)}.isdisjoint({groups[i] for i in np.flatnonzero(~train)})
    assert 0 < train.sum() < n
    # an official split whose train items share a patient with test items: those are left out
    splits = ["test" if i % 3 == 0 else "train" for i in range(n)]  # every patient has a test item
    dataset = ImageFolderDataset(id="g", folder="g", classes=["a", "b", "c"], splits=("train", "test"),
                                 eval_split="test")
    manifest = Manifest(root=None, paths=paths, labels=labels, splits=splits, hash="h",
                        meta=[{"group": g} for g in groups[:60]] + [{"group": f"own{i}"} for i in range(60, n)])
    x = rng.normal(size=(n, 8)).astype(np.float32)
    ctx = CellContext("m", dataset, manifest, None, None, None, Embedded(x, np.ones(n, dtype=bool), {}, "k"))
    pool, eval_mask = fewshot.training_pool(ctx)
    assert set(pool.rows.tolist()) == set(range(60, n)) - set(np.flatnonzero(eval_mask).tolist())
    assert pool.notes and "share a group with evaluated items" in pool.notes[0]
