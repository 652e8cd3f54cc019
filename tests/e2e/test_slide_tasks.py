"""The issue's acceptance run: every non-patch-zero-shot task through the CLI, on fixtures and the
real slide, writing leaderboard rows; the second identical run does no image forward."""
import duckdb
import pytest
from support.helpers import pathboard
from support.layouts import fixtures

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

TASKS = "fewshot,retrieval,zeroshot-wsi,segmentation"


def test_all_slide_and_other_tasks_end_to_end(tmp_path, tiny_hub, shared_data, fresh_cache):
    root = tmp_path / "data"
    lung = fixtures(root, shared_data)
    db = tmp_path / "pb.duckdb"
    args = ["run", "--models", "quiltnet-b32", "--tasks", TASKS, "--datasets",
            f"camelyon16,folder:{lung},pairs-csv:{root / 'captions.csv'}", "--data-root", root, "--db", db,
            "--prompt-modes", "single", "--fewshot-methods", "prototype", "--mpp", "1.0", "--workers", "0"]
    first = pathboard(*args)
    assert first.returncode == 0, first.stderr
    con = duckdb.connect(str(db), read_only=True)
    tasks = dict(con.execute("SELECT task, count(DISTINCT dataset) FROM leaderboard GROUP BY task").fetchall())
    assert tasks == {"fewshot": 1, "retrieval": 1, "zeroshot-wsi": 1, "segmentation": 1}
    metrics = {t: {m for (m,) in con.execute("SELECT DISTINCT metric FROM leaderboard WHERE task = ?", [t]).fetchall()}
               for t in tasks}
    assert {"dice", "precision", "recall"} <= metrics["segmentation"]
    assert {"i2t_recall@1", "t2i_recall@10", "mean_recall"} <= metrics["retrieval"]
    assert {"balanced_accuracy", "weighted_f1"} <= metrics["zeroshot-wsi"] & metrics["fewshot"]
    kinds = {k for (k,) in con.execute("SELECT DISTINCT kind FROM artifacts").fetchall()}
    assert kinds == {"heatmap", "topk", "segmentation"}
    assert con.execute("SELECT image_forwards FROM runs").fetchone()[0] > 0
    con.close()

    second = pathboard(*args)
    assert second.returncode == 0, second.stderr
    con = duckdb.connect(str(db), read_only=True)
    forwards = [f for (f,) in con.execute("SELECT image_forwards FROM runs ORDER BY started_at").fetchall()]
    assert forwards[1] == 0, forwards
