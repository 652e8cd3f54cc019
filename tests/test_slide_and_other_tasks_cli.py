"""The issue's acceptance run: every non-patch-zero-shot task through the CLI, on fixtures and the
real slide, writing leaderboard rows; the second identical run does no image forward."""
import csv

import duckdb
from helpers import mirror, pathboard
from test_datasets_wsi import asap_xml

TASKS = "fewshot,retrieval,zeroshot-wsi,segmentation"


def fixtures(root, shared_data):
    """CAMELYON16's test layout around the real CMU slide, a class folder and a caption CSV."""
    cmu = shared_data / "slides" / "CMU-1-Small-Region.svs"
    test = root / "CAMELYON16" / "testing"
    (test / "images").mkdir(parents=True)
    (test / "lesion_annotations").mkdir()
    for name in ("test_001", "test_002"):
        (test / "images" / f"{name}.tif").symlink_to(cmu)
    (test / "reference.csv").write_text("test_001,Tumor,Macro\ntest_002,Normal\n")
    polygon = [(0, 600, 700), (1, 1500, 700), (2, 1500, 1800), (3, 600, 1800)]
    (test / "lesion_annotations" / "test_001.xml").write_text(asap_xml([("Annotation 0", "_0", polygon)]))
    (root / "CAMELYON16" / "training" / "normal").mkdir(parents=True)
    lung = mirror(shared_data / "lung_colon_image_set" / "lung_image_sets", root / "lung")
    with open(root / "captions.csv", "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["image_path", "caption"])
        for cls, text in [("lung_aca", "lung adenocarcinoma"), ("lung_n", "benign lung tissue"),
                          ("lung_scc", "lung squamous cell carcinoma")]:
            for image in sorted((lung / cls).iterdir())[:4]:
                out.writerow([f"lung/{cls}/{image.name}", f"an H&E image of {text}."])
    return lung


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
