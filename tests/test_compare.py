import duckdb
import numpy as np
import pytest
from helpers import pathboard

from pathboard.core.science.compare import paired_difference


def test_paired_differences_share_resamples():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    good = np.where(rng.random(200) < 0.9, y, rng.integers(0, 3, 200))
    poor = np.where(rng.random(200) < 0.5, y, rng.integers(0, 3, 200))
    ab = paired_difference(y, good, poor, 3, ordinal=False)
    ba = paired_difference(y, poor, good, 3, ordinal=False)
    diff, low, high = ab["balanced_accuracy"]
    assert low > 0 and diff > 0.2  # a clear, significant win
    assert ba["balanced_accuracy"] == pytest.approx((-diff, -high, -low))  # same resamples, mirrored
    same = paired_difference(y, good, good, 3, ordinal=False)
    assert same["weighted_f1"] == (0.0, 0.0, 0.0)  # paired: identical predictions never differ
    assert "quadratic_kappa" not in ab and "quadratic_kappa" in paired_difference(y, good, poor, 3, True)


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


def test_leaderboard_orients_comparisons_by_winner(tmp_path):
    import pandas as pd

    from pathboard.leaderboard.tables import comparison_rows

    df = pd.DataFrame([{"model_a": "a", "model_b": "b", "dataset": "d", "task": "zeroshot", "prompt_mode": "single",
                        "metric": "weighted_f1", "diff": -0.2, "ci_low": -0.3, "ci_high": -0.1, "n": 50,
                        "significant": True, "variant": ""}])
    rows = comparison_rows(df, "weighted_f1", "zeroshot", "single")
    assert rows.to_dict("records") == [{"dataset": "d", "better": "b", "than": "a",
                                        "difference": "+0.200 [+0.100, +0.300]", "significant": "yes", "n": 50}]
    assert comparison_rows(df, "weighted_f1", "zeroshot", "ensemble").empty
