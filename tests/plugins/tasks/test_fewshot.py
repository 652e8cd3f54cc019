"""Few-shot patch classification: the pool and split it uses, the probe fitted on training items only,
prototypes, declared training sets, and a tiny CLIP trained on real LC25000 patches."""
import numpy as np
import pytest
from support.trained import TRAIN_PER_CLASS

from pathboard import cli
from pathboard.adapters.openclip import OpenCLIPModel
from pathboard.core.engine import plugins
from pathboard.core.engine.plan import RunConfig, plan
from pathboard.core.engine.run import execute
from pathboard.core.errors import PathboardError
from pathboard.core.interfaces.dataset import ImageFolderDataset

LUNG = ["lung_aca", "lung_n", "lung_scc"]


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


@pytest.mark.slow
def test_prototypes_on_held_out_real_patches_beat_chance(tmp_path, trained_lung, fresh_cache):
    weights, held_out = trained_lung
    root = tmp_path / "data"
    for c, files in held_out.items():
        link(files, root / "lung_colon_image_set" / "lung_image_sets" / c)
    cfg = RunConfig(models="quiltnet-b32", weights=(f"quiltnet-b32={weights}",), datasets="lc25000-lung",
                    data_root=str(root), tasks="fewshot", db=str(tmp_path / "pb.duckdb"), workers=0)
    summary = execute(plan(cfg), cfg)
    out = variants(summary)
    # the headline is named wherever it is shown (the CLI's line here; the Overview and exports read the same)
    cell = next(c for c in summary.cells if c["variant"] == "")
    named = cli._headline(cell)  # LC25000's items have groups (near-duplicate clusters): resampled as groups
    assert named.startswith("  (prototype at k = 16 per class, median of 5 draws; 95% CI: bootstrap of that median "
                            "over ") and named.endswith(" groups (patients, slides or near-duplicate clusters))")
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


def test_unknown_method_fails_at_plan_time(tmp_path):
    with pytest.raises(PathboardError, match="^option fewshot.methods='[^']*': unknown value '[^']*'; choose from prototype, "
                                             "linear-probe$"):  # "unknown" once
        plan(RunConfig(models="quiltnet-b32", datasets="crc-val-he-7k", tasks="fewshot", options={"fewshot.methods": "knn"}))


@pytest.mark.slow
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
    cfg.rescore = True
    second = execute(plan(cfg), cfg)
    assert calls == [] and second.image_forwards == 0
    assert {v: m["balanced_accuracy"].value for v, m in variants(second).items() if "n_train" not in m} == \
           {v: m["balanced_accuracy"].value for v, m in out.items() if "n_train" not in m}


@pytest.mark.slow
def test_missing_training_dataset_is_named(tmp_path, tiny_hub, shared_data, fresh_cache):
    cfg = RunConfig(models="quiltnet-b32", datasets="crc-val-he-7k", data_root=str(shared_data), tasks="fewshot",
                    db=str(tmp_path / "pb.duckdb"), workers=0)
    summary = execute(plan(cfg), cfg)
    assert len(summary.errors) == 1
    assert "trains on nct-crc-he-100k, its declared training set, which is not available" in summary.errors[0]
