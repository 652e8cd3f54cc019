"""Intervals that respect clustering, and significance corrected for many comparisons.

The cluster bootstrap is checked against a plain Python loop that draws groups from the same
generator; the Holm adjustment against a hand-computed example (and statsmodels, when installed);
and without groups every number must stay as it was (``test_pinned_numbers.py`` pins the stored ones).
"""
from __future__ import annotations

import warnings
from types import MappingProxyType, SimpleNamespace

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score

from pathboard.core.interfaces.task import CellContext, Metric, Predictions, item_groups
from pathboard.core.science.compare import (
    bootstrap_p_value,
    compare_latest,
    holm,
    paired_bootstrap,
    paired_difference,
)
from pathboard.core.science.metrics import (
    bootstrap_counts,
    bootstrap_indices,
    bootstrap_label,
    classification_metrics,
    confusion_matrices,
    median_metrics,
    scores_from_confusion,
)
from pathboard.core.store.database import Store


def clustered(n_groups=50, per_group=40, seed=0, k=3):
    """Items whose correctness is shared within a group (each group has its own accuracy)."""
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"patient-{i:03d}" for i in range(n_groups)], per_group)
    accuracy = np.repeat(rng.uniform(0.2, 1.0, n_groups), per_group)
    y_true = rng.integers(0, k, len(groups))
    correct = rng.random(len(groups)) < accuracy
    y_pred = np.where(correct, y_true, (y_true + 1 + rng.integers(0, k - 1, len(groups))) % k)
    return y_true, y_pred, groups


def loop_resamples(groups, n_boot, seed):
    """The reference: resample r draws G groups with replacement, rng.integers(0, G, G), and takes
    every item of each drawn group. Groups numbered in the sorted order of their labels."""
    labels = sorted(set(groups))
    members = {g: [i for i, x in enumerate(groups) if x == g] for g in labels}
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_boot):
        drawn = rng.integers(0, len(labels), size=len(labels))
        out.append(np.array([i for d in drawn for i in members[labels[d]]], dtype=np.int64))
    return out


# (a) the cluster bootstrap equals a plain loop over resampled groups ------------------------------------

def test_cluster_bootstrap_ci_equals_a_plain_loop_over_groups():
    y_true, y_pred, groups = clustered(n_groups=30, per_group=7, seed=1)
    # shuffle, and give groups unequal sizes: the resamples must not depend on the items' order
    rng = np.random.default_rng(5)
    order = rng.permutation(len(groups))[: len(groups) - 23]
    y_true, y_pred, groups = y_true[order], y_pred[order], groups[order]
    n_boot, seed = 300, 7
    metrics = {m.name: m for m in classification_metrics(y_true, y_pred, list("abc"), n_boot=n_boot, seed=seed,
                                                         groups=groups)}
    resamples = loop_resamples(list(groups), n_boot, seed)
    accuracy = [np.mean(y_true[idx] == y_pred[idx]) for idx in resamples]
    low, high = np.percentile(accuracy, [2.5, 97.5])
    assert metrics["accuracy"].ci_low == pytest.approx(low, abs=1e-12)
    assert metrics["accuracy"].ci_high == pytest.approx(high, abs=1e-12)
    assert metrics["accuracy"].value == pytest.approx(np.mean(y_true == y_pred))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        balanced = [balanced_accuracy_score(y_true[idx], y_pred[idx]) for idx in resamples]
    assert (metrics["balanced_accuracy"].ci_low, metrics["balanced_accuracy"].ci_high) == pytest.approx(
        tuple(np.percentile(balanced, [2.5, 97.5])), abs=1e-12)


def test_ragged_indices_and_counts_are_the_same_resamples():
    y_true, y_pred, groups = clustered(n_groups=12, per_group=5, seed=2)
    groups = groups.copy()
    groups[:3] = ["lonely-a", "lonely-b", "lonely-c"]  # unequal group sizes
    reference = loop_resamples(list(groups), 45, 3)
    ragged = [i for chunk in bootstrap_indices(len(groups), 45, 3, chunk=10, groups=groups) for i in chunk]
    counts = np.concatenate(list(bootstrap_counts(len(groups), 45, 3, chunk=10, groups=groups)))
    assert len(ragged) == len(reference) == len(counts) == 45
    assert {len(i) for i in ragged} != {len(groups)}  # resamples vary in length
    for got, want, count in zip(ragged, reference, counts):
        assert sorted(got) == sorted(want)
        assert np.array_equal(count, np.bincount(want, minlength=len(groups)))
    # weighted confusion matrices = scikit-learn on the ragged resample
    cms = confusion_matrices(y_true, y_pred, 3, counts=counts)
    scores = scores_from_confusion(cms, np.unique(y_true), ordinal=True)
    for b, idx in enumerate(reference[:10]):
        assert cms[b].sum() == len(idx)
        assert scores["cohen_kappa"][b] == pytest.approx(cohen_kappa_score(y_true[idx], y_pred[idx], labels=range(3)))
        assert scores["quadratic_kappa"][b] == pytest.approx(
            cohen_kappa_score(y_true[idx], y_pred[idx], labels=range(3), weights="quadratic"))
    # the chunk size does not change the resamples
    again = np.concatenate(list(bootstrap_counts(len(groups), 45, 3, chunk=7, groups=groups)))
    assert np.array_equal(again, counts)


def test_cluster_paired_difference_equals_a_plain_loop():
    y_true, good, groups = clustered(n_groups=25, per_group=6, seed=3)
    rng = np.random.default_rng(9)
    poor = np.where(rng.random(len(y_true)) < 0.5, y_true, rng.integers(0, 3, len(y_true)))
    n_boot = 200
    got = paired_bootstrap(y_true, good, poor, 3, False, n_boot=n_boot, seed=4, groups=groups)["accuracy"]
    diffs = np.array([np.mean(good[i] == y_true[i]) - np.mean(poor[i] == y_true[i])
                      for i in loop_resamples(list(groups), n_boot, 4)])
    assert got.diff == pytest.approx(np.mean(good == y_true) - np.mean(poor == y_true))
    assert (got.ci_low, got.ci_high) == pytest.approx(tuple(np.percentile(diffs, [2.5, 97.5])), abs=1e-12)
    p = 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0))
    assert got.p_value == pytest.approx(min(1, max(1 / (n_boot + 1), p)))
    # the same resamples for both models: mirrored, and identical predictions never differ
    back = paired_bootstrap(y_true, poor, good, 3, False, n_boot=n_boot, seed=4, groups=groups)["accuracy"]
    assert (back.diff, back.ci_low, back.ci_high) == pytest.approx((-got.diff, -got.ci_high, -got.ci_low))
    assert back.p_value == got.p_value
    same = paired_bootstrap(y_true, good, good, 3, False, groups=groups)["accuracy"]
    assert same == (0.0, 0.0, 0.0, 1.0)
    assert paired_difference(y_true, good, poor, 3, False, n_boot, 4, groups)["accuracy"] == tuple(got[:3])


def test_median_metrics_resample_groups():
    y_true, y_pred, groups = clustered(n_groups=40, per_group=30, seed=4)
    rng = np.random.default_rng(0)
    other = np.where(rng.random(len(y_true)) < 0.9, y_pred, y_true)
    items = {m.name: m for m in median_metrics(y_true, [y_pred, other, y_pred], list("abc"))}
    cluster = {m.name: m for m in median_metrics(y_true, [y_pred, other, y_pred], list("abc"), groups=groups)}
    assert cluster["accuracy"].value == items["accuracy"].value
    assert cluster["accuracy"].ci_high - cluster["accuracy"].ci_low > \
        2 * (items["accuracy"].ci_high - items["accuracy"].ci_low)


# (b) on clustered data the cluster CI is clearly wider ------------------------------------------------

def test_cluster_ci_is_clearly_wider_on_clustered_items():
    y_true, y_pred, groups = clustered(n_groups=50, per_group=40, seed=0)
    items = {m.name: m for m in classification_metrics(y_true, y_pred, list("abc"))}
    cluster = {m.name: m for m in classification_metrics(y_true, y_pred, list("abc"), groups=groups)}
    for name in ("accuracy", "balanced_accuracy", "weighted_f1", "cohen_kappa"):
        assert cluster[name].value == items[name].value  # the point estimate does not depend on groups
        wide, narrow = cluster[name].ci_high - cluster[name].ci_low, items[name].ci_high - items[name].ci_low
        assert wide > 2.5 * narrow, (name, wide, narrow)
    # groups of one item each: the same distribution as the item bootstrap (widths agree roughly)
    singles = {m.name: m for m in classification_metrics(y_true, y_pred, list("abc"),
                                                         groups=np.arange(len(y_true)).astype(str))}
    width = singles["accuracy"].ci_high - singles["accuracy"].ci_low
    assert width == pytest.approx(items["accuracy"].ci_high - items["accuracy"].ci_low, rel=0.25)


# (c) Holm ---------------------------------------------------------------------------------------------

def test_holm_matches_a_hand_computed_example():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> cumulative max 0.06
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # 0.5*2 = 1, clipped; 0.6 raised to the max
    assert holm([0.2]) == pytest.approx([0.2])
    got = holm([0.01, np.nan, 0.02])  # NaN stays NaN and is not counted
    assert np.isnan(got[1]) and got[[0, 2]] == pytest.approx([0.02, 0.02])
    assert holm([]).shape == (0,)


def test_holm_matches_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.random.default_rng(0).uniform(0, 0.2, 37)
    p[5] = p[9]  # ties
    assert holm(p) == pytest.approx(multitest.multipletests(p, method="holm")[1])


def test_bootstrap_p_value():
    assert bootstrap_p_value(np.ones(999)) == pytest.approx(1 / 1000)  # bounded below by 1/(B+1)
    assert bootstrap_p_value(np.zeros(100)) == 1.0
    assert bootstrap_p_value([-1, 1, 2, 3]) == pytest.approx(0.5)
    assert bootstrap_p_value([-1, -2, 0, np.nan]) == pytest.approx(2 / 3)
    assert np.isnan(bootstrap_p_value([np.nan]))


def test_stored_comparisons_resample_groups_and_are_holm_corrected(tmp_path):
    store = Store(tmp_path / "pb.duckdb")
    run = store.start_run(command="test")
    y_true, good, groups = clustered(n_groups=30, per_group=10, seed=6)
    rng = np.random.default_rng(1)
    poor = np.where(rng.random(len(y_true)) < 0.6, y_true, rng.integers(0, 3, len(y_true)))
    items = [f"img{i}.png" for i in range(len(y_true))]
    for dataset, with_groups in (("d1", True), ("d2", False)):
        for model, pred in (("a", good), ("b", poor), ("c", good)):
            cell = {"model": model, "dataset": dataset, "task": "zeroshot", "prompt_mode": "single", "variant": "",
                    "protocol_hash": f"p-{dataset}"}
            store.add_cell(run, cell, [Metric("accuracy", 0.0, 0.0, 0.0, len(items))],
                           predictions=(y_true, pred, 3, False, items, list(groups) if with_groups else None))
    assert compare_latest(store) == 2 * 3 * 4  # datasets x pairs x metrics
    rows = store.query("SELECT * FROM comparisons ORDER BY dataset, model_a, model_b, metric")
    assert set(rows.loc[rows.dataset == "d1", "n_groups"]) == {30}
    assert rows.loc[rows.dataset == "d2", "n_groups"].isna().all()
    assert set(rows["protocol_hash"]) == {"p-d1", "p-d2"}
    grouped = rows[(rows.dataset == "d1") & (rows.model_a == "a") & (rows.model_b == "b") & (rows.metric == "accuracy")]
    expected = paired_bootstrap(y_true, good, poor, 3, False, groups=groups)["accuracy"]
    assert tuple(grouped[["diff", "ci_low", "ci_high", "p_value"]].iloc[0]) == pytest.approx(tuple(expected))
    plain = rows[(rows.dataset == "d2") & (rows.model_a == "a") & (rows.model_b == "b") & (rows.metric == "accuracy")]
    assert tuple(plain[["diff", "ci_low", "ci_high", "p_value"]].iloc[0]) == pytest.approx(
        tuple(paired_bootstrap(y_true, good, poor, 3, False)["accuracy"]))
    # one Holm family per (task, variant, prompt mode, metric): 3 pairs x 2 datasets = 6 p-values
    for _, family in rows.groupby("metric"):
        assert len(family) == 6
        assert family["p_holm"].to_numpy() == pytest.approx(holm(family["p_value"].to_numpy()))
        assert (family["significant"] == (family["p_holm"] < 0.05)).all()
        assert (family["p_holm"] >= family["p_value"]).all()
    assert rows.loc[(rows.model_a == "a") & (rows.model_b == "c"), "p_value"].eq(1.0).all()  # identical
    assert rows.loc[(rows.model_a == "a") & (rows.model_b == "b"), "significant"].any()


def test_comparison_table_shows_p_values_when_stored():
    import pandas as pd

    from pathboard.leaderboard.tables import comparison_rows

    df = pd.DataFrame([{"model_a": "a", "model_b": "b", "dataset": "d", "task": "zeroshot", "prompt_mode": "single",
                        "metric": "accuracy", "diff": -0.2, "ci_low": -0.3, "ci_high": -0.1, "n": 50,
                        "significant": True, "variant": "", "p_value": 0.0009990, "p_holm": 0.012,
                        "n_groups": 12}])
    rows = comparison_rows(df, "accuracy", "zeroshot", "single")
    assert rows.to_dict("records") == [{"dataset": "d", "better": "b", "than": "a",
                                        "difference": "+0.200 [+0.100, +0.300]", "p": "<0.001",
                                        "p (Holm)": "0.012", "significant": "yes", "n": 50,
                                        "resampled": "12 groups"}]


# groups of items, and what the tasks record ---------------------------------------------------------

def manifest(paths, groups):
    return SimpleNamespace(paths=paths, labels=np.zeros(len(paths), dtype=np.int64), splits=[None] * len(paths),
                           meta=[{} if g is None else {"group": g} for g in groups])


def test_item_groups():
    m = manifest(["a.png", "b.png", "c.png", "d.png"], ["p1", None, "p1", "p2"])
    assert list(item_groups(m, np.array([True, True, False, True]))) == ["p1", "item:b.png", "p2"]
    assert list(item_groups(m, [3, 0])) == ["p2", "p1"]
    assert list(item_groups(m, ["c.png", "b.png"])) == ["p1", "item:b.png"]
    assert item_groups(m, [1]) is None  # none of these rows has a group
    assert item_groups(manifest(["x", "y"], [None, None]), [0, 1]) is None
    no_meta = SimpleNamespace(paths=["x", "y"], meta=[])
    assert item_groups(no_meta, np.array([True, True])) is None


def zeroshot_context(groups):
    classes = ["a", "b", "c"]
    n = len(groups)
    labels = np.resize(np.arange(3), n)
    embeddings = np.eye(3, dtype=np.float32)[(labels + (np.arange(n) % 4 == 0)) % 3]
    texts = {f"{c} tissue": np.eye(3, dtype=np.float32)[i][None] for i, c in enumerate(classes)}
    m = manifest([f"img{i}.png" for i in range(n)], groups)
    m.labels = labels
    dataset = SimpleNamespace(id="toy", classes=classes, ordinal=False, eval_split=None)
    prompts = SimpleNamespace(prompts=lambda mode, names: {c: [f"{c} tissue"] for c in names})
    images = SimpleNamespace(embeddings=embeddings, valid=np.ones(n, dtype=bool))
    return CellContext("model", dataset, m, "single", prompts, lambda t: np.concatenate([texts[x] for x in t]),
                       images, MappingProxyType({}), facts=lambda: {"logit_scale": 100.0})


def test_zeroshot_records_which_bootstrap_it_used():
    from pathboard.plugins.tasks.zeroshot import ZeroShot

    grouped = [f"p{i // 10}" for i in range(120)]
    result = ZeroShot().score(zeroshot_context(grouped))
    assert result.protocol == {"bootstrap": "cluster by group (12 groups)"}
    assert isinstance(result.predictions[""], Predictions) and list(result.predictions[""].groups) == grouped
    plain = ZeroShot().score(zeroshot_context([None] * 120))
    assert plain.protocol == {"bootstrap": "items"} and plain.predictions[""].groups is None
    acc = {m.name: m for m in result[""]}["accuracy"]
    assert acc.value == {m.name: m for m in plain[""]}["accuracy"].value
    assert acc.ci_low == {m.name: m for m in classification_metrics(
        result.predictions[""].y_true, result.predictions[""].y_pred, ["a", "b", "c"], groups=grouped)}["accuracy"].ci_low


def test_zeroshot_wsi_resamples_patients_of_slides():
    from pathboard.plugins.tasks.zeroshot_wsi import ZeroShotWSI

    classes = ["a", "b"]
    paths = [f"slide{i}.svs" for i in range(24)]
    patients = [f"patient{i // 3}" for i in range(24)]  # three slides per patient
    labels = np.arange(24) % 2
    rng = np.random.default_rng(0)
    slides = {}
    for path, label in zip(paths, labels):
        hit = rng.random() < 0.7
        tiles = np.eye(2, dtype=np.float32)[np.full(60, label if hit else 1 - label)]
        slides[path] = SimpleNamespace(embeddings=tiles, coords=np.zeros((60, 2)), info={"size0": 224})
    tiles = type("Tiles", (), {"labelled": lambda self: list(zip(paths, labels)),
                               "__getitem__": lambda self, p: slides[p]})()
    texts = {f"{c} tissue": np.eye(2, dtype=np.float32)[i][None] for i, c in enumerate(classes)}
    m = manifest(paths, patients)
    m.labels = labels
    dataset = SimpleNamespace(id="toy-wsi", classes=classes, ordinal=False, eval_split=None)
    prompts = SimpleNamespace(prompts=lambda mode, names: {c: [f"{c} tissue"] for c in names})
    ctx = CellContext("model", dataset, m, "single", prompts, lambda t: np.concatenate([texts[x] for x in t]),
                      None, MappingProxyType({}), tiles=tiles, facts=lambda: {"logit_scale": 100.0})
    result = ZeroShotWSI().score(ctx)
    assert result.protocol == {"bootstrap": "cluster by group (8 groups)"}
    assert list(result.predictions[""].groups) == patients
    predictions = result.predictions[""]
    expected = {m.name: m for m in classification_metrics(predictions.y_true, predictions.y_pred, classes,
                                                          groups=patients)}
    assert {m.name: m for m in result[""] if m.name in expected} == expected  # calibration: test_calibration.py


def test_bootstrap_label():
    assert bootstrap_label(None) == "items"
    assert bootstrap_label(["x", "y", "x"]) == "cluster by group (2 groups)"


# (d) without groups, nothing moves --------------------------------------------------------------------

def old_classification_cis(y_true, y_pred, k, n_boot=1000, seed=0):
    """The item bootstrap exactly as it was written before groups existed."""
    rng = np.random.default_rng(seed)
    n = len(y_true)
    chunk = max(1, min(100, 10_000_000 // max(n, 1)))
    present = np.unique(y_true)
    boot = {}
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        b = idx.shape[0]
        codes = y_true[idx] * k + y_pred[idx] + (np.arange(b) * k * k)[:, None]
        cm = np.bincount(codes.ravel(), minlength=b * k * k).reshape(b, k, k)
        for name, values in scores_from_confusion(cm, present, False).items():
            boot.setdefault(name, []).append(values)
    return {name: tuple(np.percentile(np.concatenate(v)[np.isfinite(np.concatenate(v))], [2.5, 97.5]))
            for name, v in boot.items()}


def test_without_groups_the_numbers_are_those_of_before():
    y_true, y_pred, _ = clustered(n_groups=20, per_group=13, seed=8)
    old = old_classification_cis(y_true, y_pred, 3)
    now = {m.name: m for m in classification_metrics(y_true, y_pred, list("abc"))}
    for name in ("accuracy", "balanced_accuracy", "weighted_f1", "cohen_kappa"):
        assert (now[name].ci_low, now[name].ci_high) == old[name]  # bit-identical
    # the count form of the item resamples is the same resamples
    idx = np.concatenate(list(bootstrap_indices(len(y_true), 50, 2)))
    counts = np.concatenate(list(bootstrap_counts(len(y_true), 50, 2)))
    assert all(np.array_equal(c, np.bincount(i, minlength=len(y_true))) for c, i in zip(counts, idx))
    assert np.array_equal(confusion_matrices(y_true, y_pred, 3, idx), confusion_matrices(y_true, y_pred, 3,
                                                                                         counts=counts))
