"""The issue's acceptance runs: slide models (TITAN, PRISM stand-ins, run with their hub code) beside patch models
on the same slides, one table; tiles shared; TRIDENT features read as they are, with no image forward."""
import duckdb
import pytest
from support.helpers import pathboard

from pathboard.leaderboard import export
from pathboard.testing import hf_snapshot

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

SLIDE_TASKS = {"zeroshot-wsi", "report-retrieval", "fewshot-wsi", "slide-retrieval"}


def test_slide_and_patch_models_on_the_same_slides(slide_hub, slides_root, tmp_path):
    db, env = tmp_path / "pb.duckdb", {"PATHBOARD_CACHE": str(tmp_path / "cache")}
    common = ["--datasets", "tcga-cesc", "--data-root", slides_root, "--db", db, "--workers", "0",
              "--fewshot-methods", "prototype,linear-probe"]
    refused = pathboard("run", "--models", "titan,prism", *common, env=env)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    for model in ("titan", "prism"):
        assert f"{model}: it runs model code from its weights repository" in refused.stderr
        assert f"--trust-remote-code {model}" in refused.stderr

    models = "titan,prism,plip"
    if _has_conch():  # CONCH (conch-fork, the [conch] extra): a tiny CoCa in the HF cache as MahmoodLab/conch
        from support.tiny_openclip_hf import write_conch_checkpoint

        hf_snapshot(slide_hub, "MahmoodLab/conch", {"pytorch_model.bin": write_conch_checkpoint(
            tmp_path / "conch" / "pytorch_model.bin")})
        models = "titan,prism,conch,plip"
    ran = pathboard("run", "--models", models, *common, "--trust-remote-code", "titan,prism", env=env)
    assert ran.returncode == 0, ran.stderr
    con = duckdb.connect(str(db), read_only=True)
    cells = set(con.execute("SELECT DISTINCT model, task FROM leaderboard").fetchall())
    for model in models.split(","):
        assert {(model, task) for task in SLIDE_TASKS} <= cells, model
    pooling = dict(con.execute("SELECT DISTINCT model, pooling FROM leaderboard WHERE task = 'zeroshot-wsi'").fetchall())
    assert pooling["titan"] == pooling["prism"] == "slide-encoder" and pooling["plip"] is None
    # one protocol for both kinds: TITAN is compared with PLIP, paired, on the same slides
    pairs = {tuple(sorted(p)) for p in con.execute(
        "SELECT model_a, model_b FROM comparisons WHERE task = 'zeroshot-wsi' AND metric = 'balanced_accuracy'"
    ).fetchall()}
    assert ("plip", "titan") in pairs and ("prism", "titan") in pairs
    con.close()
    table = export.overview(db, task="zeroshot-wsi", metric="balanced_accuracy")
    assert table.attrs["pooling"] == {**{m: "MI-Zero top-50" for m in models.split(",") if m in ("conch", "plip")},
                                      "titan": "slide encoder over conch-v1.5", "prism": "slide encoder over virchow"}

    again = pathboard("run", "--models", models, *common, "--trust-remote-code", "titan,prism", env=env)
    assert again.returncode == 0 and "nothing new" in again.stdout + again.stderr


def _has_conch() -> bool:
    try:
        import conch.open_clip_custom  # noqa: F401
    except ImportError:
        return False
    return True


def test_trident_features_are_scored_with_no_image_forward(slide_hub, slides_root, tmp_path):
    out, env = tmp_path / "trident", {"PATHBOARD_CACHE": str(tmp_path / "cache-export")}
    exported = pathboard("cache", "export-features", "--model", "titan", "--datasets", "tcga-cesc", "--out", out,
                         "--data-root", slides_root, "--trust-remote-code", "titan", "--workers", "0", env=env)
    assert exported.returncode == 0, exported.stderr
    folder = out / "20x_512px_0px_overlap" / "features_conch_v15"
    assert len(list(folder.glob("TCGA-*.h5"))) == 10
    retiled = pathboard("cache", "export-features", "--model", "titan", "--datasets", "tcga-cesc", "--out", out,
                        "--data-root", slides_root, "--trust-remote-code", "titan", "--tile-size", "256", env=env)
    assert retiled.returncode == 2 and "titan reads its patch encoder's features at its own tiling (20x, 512 px)" \
        in retiled.stderr and "Traceback" not in retiled.stderr

    db, fresh = tmp_path / "pb.duckdb", {"PATHBOARD_CACHE": str(tmp_path / "cache-run")}
    args = ["run", "--datasets", "tcga-cesc", "--data-root", slides_root, "--db", db, "--workers", "0",
            "--features", folder, "--trust-remote-code", "titan,prism", "--tasks",
            "zeroshot-wsi,slide-retrieval,prompt-sensitivity"]
    ran = pathboard(*args, "--models", "titan", env=fresh)
    assert ran.returncode == 0, ran.stderr
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT image_forwards FROM runs").fetchall() == [(0,)]
    assert {t for (t,) in con.execute("SELECT DISTINCT task FROM leaderboard").fetchall()} == \
        {"zeroshot-wsi", "slide-retrieval", "prompt-sensitivity"}
    assert "TRIDENT features (conch_v15)" in con.execute("SELECT any_value(protocol) FROM cells").fetchone()[0]
    con.close()

    wrong = pathboard(*args, "--models", "prism", env=fresh)
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    line = [l for l in wrong.stderr.splitlines() if l.startswith("error:")]
    assert len(line) == 1 and "holds conch_v15 features, which no slide model of this run reads (prism reads " \
        "virchow)" in line[0]
