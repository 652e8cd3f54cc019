"""The cervix benchmark end to end: `pathboard run --models quiltnet-b32,plip --datasets cervix` scores every
cervix set with every task that applies, on fixtures in their official layouts; absent sets are named."""
from __future__ import annotations

import shutil

import duckdb
import pytest
from support.helpers import pathboard
from support.layouts import write_gtex, write_pannuke, write_tcga, write_tils, write_tissuenet

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def test_cervix_group_runs_patch_sets_and_skips_the_others(tmp_path, tiny_hub):
    root = tmp_path / "data"
    write_tils(root)
    write_pannuke(root)
    write_tissuenet(root)
    db = tmp_path / "pb.duckdb"
    out = pathboard("run", "--models", "quiltnet-b32", "--datasets", "cervix", "--data-root", root, "--db", db,
                    "--prompt-modes", "single", "--workers", "0", "--tasks", "zeroshot")  # patch zero-shot only
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    skipped = [line for line in out.stderr.splitlines() if line.startswith("skipped")]
    assert any("tissuenet" in line and "slide-level" in line for line in skipped), skipped
    for absent in ("tcga-cesc", "gtex-cervix"):
        assert sum(line.startswith(f"skipped {absent}: ") and "not found" in line for line in skipped) == 1, skipped
    con = duckdb.connect(str(db), read_only=True)
    rows = dict(con.execute("SELECT dataset, n FROM leaderboard WHERE metric = 'weighted_f1'").fetchall())
    assert rows == {"tcga-tils-cervix": 5, "pannuke-cervix": 5}  # TILs score their test split


def test_cervix_group_scores_the_slide_sets_present(tmp_path, tiny_hub, shared_data):
    root = tmp_path / "data"
    write_tils(root)
    write_tcga(root, shared_data / "slides" / "CMU-1-Small-Region.svs")
    write_gtex(root, shared_data / "slides" / "CMU-1-Small-Region.svs")
    db = tmp_path / "pb.duckdb"
    out = pathboard("run", "--models", "quiltnet-b32", "--datasets", "cervix", "--data-root", root, "--db",
                    db, "--prompt-modes", "single", "--workers", "0")
    assert out.returncode == 0, out.stderr
    assert "tcga-cesc" in out.stderr and "gtex-cervix" in out.stderr
    con = duckdb.connect(str(db), read_only=True)
    rows = set(con.execute("SELECT dataset, n FROM leaderboard WHERE task = 'zeroshot-wsi' AND metric = 'weighted_f1'")
               .fetchall())
    assert rows == {("tcga-cesc", 3), ("gtex-cervix", 3)}  # subtypes from clinical.tsv, sites from the GTEx table


#: (dataset, task) -> prompt modes stored: every task that applies to each of the five sets
EXPECTED = {
    ("tcga-tils-cervix", "zeroshot"): {"single", "ensemble"}, ("tcga-tils-cervix", "fewshot"): {None},
    ("pannuke-cervix", "zeroshot"): {"single", "ensemble"}, ("pannuke-cervix", "fewshot"): {None},
    ("pannuke-cervix-nuclei", "segmentation"): {"single", "ensemble"},
    ("tissuenet", "zeroshot-wsi"): {"single", "ensemble"}, ("tissuenet", "segmentation"): {"single", "ensemble"},
    ("tissuenet", "fewshot-wsi"): {None},
    ("tcga-cesc", "zeroshot-wsi"): {"single", "ensemble"}, ("tcga-cesc", "fewshot-wsi"): {None},
    ("tcga-cesc", "report-retrieval"): {None},
    ("gtex-cervix", "zeroshot-wsi"): {"single", "ensemble"}, ("gtex-cervix", "fewshot-wsi"): {None},
    # prompt sensitivity re-scores zero-shot under prompt draws wherever zero-shot applies, at no image forward
    **{(d, "prompt-sensitivity"): {None} for d in ("tcga-tils-cervix", "pannuke-cervix", "tissuenet", "tcga-cesc",
                                                    "gtex-cervix")},
    # slide retrieval by label wherever slides are labelled
    **{(d, "slide-retrieval"): {None} for d in ("tissuenet", "tcga-cesc", "gtex-cervix")},
}


def test_every_cervix_set_is_scored_by_every_task_that_applies(cervix_run):
    db, first, second = cervix_run
    assert first.returncode == 0, first.stderr[-4000:]
    assert "Traceback" not in first.stderr
    rows = duckdb.connect(str(db), read_only=True).execute(
        "SELECT DISTINCT model, dataset, task, prompt_mode FROM cells WHERE variant = '' AND run_id = "
        "(SELECT run_id FROM runs ORDER BY started_at LIMIT 1)").fetchall()
    for model in ("quiltnet-b32", "plip"):
        stored = {}
        for m, dataset, task, mode in rows:
            if m == model:
                stored.setdefault((dataset, task), set()).add(mode)
        assert stored == EXPECTED, (model, stored)
    # the protocol of the PanNuke nucleus segmentation is stored with its cells
    protocol = duckdb.connect(str(db), read_only=True).execute(
        "SELECT DISTINCT protocol->>'$.task.window.native_px', protocol->>'$.task.window.stride_px' FROM cells "
        "WHERE dataset = 'pannuke-cervix-nuclei' AND variant = ''").fetchall()
    assert protocol == [("64", "16")]
    # the run said what it would score before it started
    said = ("tissuenet: fewshot-wsi, prompt-sensitivity, segmentation (single/ensemble), slide-retrieval, "
            "zeroshot-wsi (single/ensemble)")
    assert said + " x 2 model(s)" in first.stderr
    # skips that follow from what a dataset is are said once per task and reason, naming the datasets
    assert "skipped zeroshot on gtex-cervix, tcga-cesc, tissuenet: it is slide-level" in first.stderr


def test_a_second_identical_run_does_no_image_forward(cervix_run):
    _, _, second = cervix_run
    assert second.returncode == 0, second.stderr[-4000:]
    assert " 0 images and 0 tiles embedded" in second.stderr


def test_an_absent_cervix_set_is_named_with_its_download_steps(cervix_root, tiny_hub, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(cervix_root, root, symlinks=True, ignore=shutil.ignore_patterns("GTEx"))
    out = pathboard("run", "--models", "quiltnet-b32", "--datasets", "cervix", "--data-root", root,
                    "--db", tmp_path / "pb.duckdb", "--workers", "0", "--tasks", "zeroshot",
                    "--prompt-modes", "single")
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(line for line in out.stderr.splitlines() if line.startswith("skipped gtex-cervix:"))
    assert "folder not found" in line and "https://brd.nci.nih.gov/brd/imagedownload/$id" in line
    rows = duckdb.connect(str(tmp_path / "pb.duckdb"), read_only=True).execute(
        "SELECT DISTINCT dataset FROM cells ORDER BY 1").fetchall()
    assert rows == [("pannuke-cervix",), ("tcga-tils-cervix",)]
