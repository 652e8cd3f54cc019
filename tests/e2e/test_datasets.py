"""General patch sets through the CLI: WSSS4LUAD and SICAPv2 fixtures scored end to end."""
from __future__ import annotations

import duckdb
import pytest
from support.helpers import pathboard
from support.layouts import write_sicapv2, write_wsss4luad

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def test_cli_runs_wsss4luad_and_sicapv2_fixtures(tmp_path, tiny_hub):
    root = tmp_path / "data"
    write_wsss4luad(root)
    write_sicapv2(root)
    db = tmp_path / "pb.duckdb"
    out = pathboard("run", "--models", "quiltnet-b32", "--datasets", "wsss4luad,sicapv2", "--data-root", root,
                    "--prompt-modes", "single", "--db", db, "--workers", "0", "--tasks", "zeroshot")
    assert out.returncode == 0, out.stderr
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT dataset, prompt_mode, metric, n FROM leaderboard").fetchall()
    metrics = {ds: {m for d, _, m, _ in rows if d == ds} for ds in ("wsss4luad", "sicapv2")}
    assert {"weighted_f1", "balanced_accuracy", "cohen_kappa"} <= metrics["wsss4luad"] & metrics["sicapv2"]
    assert "quadratic_kappa" in metrics["sicapv2"] and "quadratic_kappa" not in metrics["wsss4luad"]
    assert {p for _, p, _, _ in rows} == {"single"}
    n = {d: n for d, _, _, n in rows}
    assert n == {"wsss4luad": 4, "sicapv2": 5}  # single-label patches; the Test split only
