"""A run's last steps: paired comparisons on the items both models scored, within one protocol,
resampling groups and Holm-corrected."""
from __future__ import annotations

import duckdb
import numpy as np
import pytest
from support.helpers import pathboard
from support.synthetic import clustered

from pathboard.core.engine.run import compare_and_rank
from pathboard.core.science.compare import (
    holm,
    paired_bootstrap,
    paired_difference,
)
from pathboard.core.science.metrics import Metric
from pathboard.core.store.database import Store


def test_paired_comparisons_use_the_items_both_models_scored(tmp_path):
    store = Store(tmp_path / "pb.duckdb")
    run = store.start_run(command="test")
    items = [f"img{i}.png" for i in range(40)]
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 40)
    pred_a, pred_b = rng.integers(0, 3, 40), rng.integers(0, 3, 40)
    keep_a, keep_b = np.arange(40) != 3, np.arange(40) != 17  # each lost a different item
    for model, keep, pred in (("a", keep_a, pred_a), ("b", keep_b, pred_b)):
        cell = {"model": model, "dataset": "d", "task": "zeroshot", "prompt_mode": "single", "variant": "",
                "protocol_hash": "p"}
        store.add_cell(run, cell, [Metric("accuracy", 0.0, 0.0, 0.0, int(keep.sum()))],
                       predictions=(y_true[keep], pred[keep], 3, False, [i for i, k in zip(items, keep) if k]))
    assert compare_and_rank(store)[0] > 0
    rows = store.query("SELECT metric, diff, ci_low, ci_high, n FROM comparisons")
    both = keep_a & keep_b
    expected = paired_difference(y_true[both], pred_a[both], pred_b[both], 3, False)
    assert set(rows["n"]) == {38}  # the 38 items both scored, not the 39 each scored
    for _, row in rows.iterrows():
        assert (row["diff"], row["ci_low"], row["ci_high"]) == pytest.approx(expected[row["metric"]])


def test_cells_of_different_protocols_are_never_compared(tmp_path):
    store = Store(tmp_path / "pb.duckdb")
    run = store.start_run(command="test")
    y = np.array([0, 1, 0, 1])
    for model, protocol in (("a", "p1"), ("b", "p2")):
        cell = {"model": model, "dataset": "d", "task": "zeroshot", "prompt_mode": "single", "variant": "",
                "protocol_hash": protocol}
        store.add_cell(run, cell, [Metric("accuracy", 1.0, 1.0, 1.0, 4)],
                       predictions=(y, y, 2, False, ["w", "x", "y", "z"]))
    assert compare_and_rank(store)[0] == 0


def test_comparisons_are_written_only_when_there_is_something_to_write_or_to_remove(tmp_path, monkeypatch):
    store = Store(tmp_path / "pb.duckdb")
    run = store.start_run(command="test")
    y = np.array([0, 1, 0, 1])
    cell = {"model": "a", "dataset": "d", "task": "zeroshot", "prompt_mode": "single", "variant": "",
            "protocol_hash": "p"}
    store.add_cell(run, cell, [Metric("accuracy", 1.0, 1.0, 1.0, 4)], predictions=(y, y, 2, False, ["w", "x", "y", "z"]))
    writes = []
    monkeypatch.setattr(Store, "replace_comparisons", lambda self, rows, _real=Store.replace_comparisons: (
        writes.append(len(rows)), _real(self, rows)))
    assert compare_and_rank(store) == (0, 0) and writes == []  # one model, nothing stored: nothing to do
    store._write([("INSERT INTO comparisons (model_a, model_b, dataset, metric) VALUES ('a', 'b', 'd', 'x')", [])])
    assert compare_and_rank(store) == (0, 0) and writes == [0]  # a stale row is removed
    assert store.query("SELECT count(*) AS n FROM comparisons")["n"][0] == 0


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_run_stores_pairwise_comparisons(tmp_path, tiny_hub, shared_data):
    db = tmp_path / "pb.duckdb"
    out = pathboard("run", "--models", "quiltnet-b32,plip", "--datasets", "crc-val-he-7k", "--data-root",
                    shared_data, "--db", db)
    assert out.returncode == 0, out.stderr
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT model_a, model_b, prompt_mode, metric, n, diff, ci_low, ci_high "
                       "FROM comparisons ORDER BY prompt_mode, metric").fetchall()
    assert {(a, b, m) for a, b, m, *_ in rows} == {("plip", "quiltnet-b32", m) for m in ("ensemble", "single")}
    assert {r[3] for r in rows} == {"balanced_accuracy", "weighted_f1", "cohen_kappa", "accuracy"}
    assert all(n == 32 and low <= diff <= high for *_, n, diff, low, high in rows)
    # the differences agree with the two models' own leaderboard values
    vals = dict(((m, p), v) for m, p, v in con.execute(
        "SELECT model, prompt_mode, value FROM leaderboard WHERE metric = 'accuracy'").fetchall())
    single = next(r for r in rows if r[2] == "single" and r[3] == "accuracy")
    assert single[5] == pytest.approx(vals[("plip", "single")] - vals[("quiltnet-b32", "single")])


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
    assert compare_and_rank(store)[0] == 2 * 3 * 4  # datasets x pairs x metrics
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
