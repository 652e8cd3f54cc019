"""The headline job end to end: `pathboard run --models quiltnet-b32,plip --datasets cervix` with no
--tasks scores all five cervix sets with every task that applies, on fixtures in their official
layouts; a second run embeds nothing; an absent set is named with its download steps; the leaderboard's
cervix page shows the results in Chromium."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pytest
import tifffile
from helpers import pathboard
from test_browser import leaderboard_page, screenshot, serve
from test_datasets_cervix import write_cesc, write_gtex, write_pannuke, write_reports, write_tils, write_tissuenet
from test_wsi import texture

#: two patients per grade, so a patient-disjoint few-shot split has every grade on both sides
TISSUENET_SLIDES = {f"C{i + 1:02d}_B{i + 1:03d}_S01.tif": i // 2 for i in range(8)}
#: lesion outlines (level-0 px) on two slides; the other two are graded only
TISSUENET_LESIONS = [("a1", "C05_B005_S01.tif", "POLYGON ((100 100, 900 100, 900 500, 100 500, 100 100))", 2),
                     ("a2", "C05_B005_S01.tif", "POLYGON ((100 600, 900 600, 900 900, 100 900, 100 600))", 0),
                     ("a3", "C07_B007_S01.tif", "POLYGON ((0 0, 1024 0, 1024 1024, 0 1024, 0 0))", 3)]
REPORT = ("FINAL SURGICAL PATHOLOGY REPORT. Cervix, radical hysterectomy: invasive carcinoma, "
          "{kind}, moderately differentiated, depth of invasion 8 mm; lymphovascular invasion present. " * 4)


def write_tissuenet_slides(root: Path) -> None:
    """TissueNet's CSVs, then pyramidal TIFs at 0.25 µm/px (1024 px: tileable at 0.5 µm/px) and big lesions."""
    write_tissuenet(root, labels=TISSUENET_SLIDES, missing=tuple(TISSUENET_SLIDES))
    rng = np.random.default_rng(0)
    for name in TISSUENET_SLIDES:
        img = np.full((1024, 1024, 3), 245, dtype=np.uint8)  # white glass around the tissue
        img[64:-64, 64:-64] = texture("purple", (896, 896), rng)
        path = root / "tissuenet" / "train" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with tifffile.TiffWriter(path) as tif:
            tif.write(img, tile=(256, 256), photometric="rgb", compression="zlib",
                      resolution=(1e4 / 0.25, 1e4 / 0.25), resolutionunit="CENTIMETER")
            tif.write(img[::2, ::2], tile=(256, 256), photometric="rgb", subfiletype=1)
    with open(root / "tissuenet" / "train_annotations.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["annotation_id", "filename", "geometry", "annotation_class", "us_jpeg_url", "eu_jpeg_url",
                    "asia_jpeg_url"])
        w.writerows([[a, f, g, c, "", "", ""] for a, f, g, c in TISSUENET_LESIONS])


@pytest.fixture(scope="module")
def cervix_root(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("cervix") / "data"
    svs = shared_data / "slides" / "CMU-1-Small-Region.svs"
    write_tils(root)
    write_pannuke(root)
    write_tissuenet_slides(root)
    write_cesc(root, svs)
    cases = ["TCGA-C5-A1BE", "TCGA-EK-A2RE", "TCGA-FU-A3HZ", "TCGA-Q1-A5R1", "TCGA-C5-A7CK"]
    write_reports(root, {c: REPORT.format(kind="squamous" if i % 2 else "adeno") + c for i, c in enumerate(cases)})
    write_gtex(root, svs)
    with open(root / "GTEx" / "GTEx Portal.csv", "a", newline="") as fh:  # two more donors, both sites each
        for donor in ("GTEX-222AA", "GTEX-333BB"):
            for part, site in (("0126", "Cervix - Ectocervix"), ("0226", "Cervix - Endocervix")):
                csv.writer(fh).writerow([f"{donor}-{part}", site, donor, "female", "40-49", "", "", ""])
                (root / "GTEx" / f"{donor}-{part}.svs").symlink_to(svs)
    return root


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
}


@pytest.fixture(scope="module")
def cervix_run(cervix_root, tiny_hub, tmp_path_factory):
    db = tmp_path_factory.mktemp("cervix-db") / "pb.duckdb"
    cache = tmp_path_factory.mktemp("cervix-cache")
    args = ["run", "--models", "quiltnet-b32,plip", "--datasets", "cervix", "--data-root", cervix_root, "--db", db,
            "--workers", "0"]
    first = pathboard(*args, env={"PATHBOARD_CACHE": str(cache)})
    second = pathboard(*args, env={"PATHBOARD_CACHE": str(cache)})
    return db, first, second


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
    said = "tissuenet: fewshot-wsi, prompt-sensitivity, segmentation (single/ensemble), zeroshot-wsi (single/ensemble)"
    assert said + " x 2 model(s)" in first.stderr
    # skips that follow from what a dataset is are said once per task and reason, naming the datasets
    assert "skipped zeroshot on gtex-cervix, tcga-cesc, tissuenet: it is slide-level" in first.stderr


def test_a_second_identical_run_does_no_image_forward(cervix_run):
    _, _, second = cervix_run
    assert second.returncode == 0, second.stderr[-4000:]
    assert " 0 image batch(es) embedded" in second.stderr


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


@pytest.mark.browser
def test_the_cervix_page_in_chromium(cervix_run):
    db, first, _ = cervix_run
    assert first.returncode == 0
    for url in serve(db):
        with leaderboard_page(url, width=1600, height=1100) as page:
            page.get_by_text("Cervix benchmark").first.click()
            page.wait_for_selector("text=Drill down into a dataset", timeout=60_000)
            screenshot(page, "PATHBOARD_SCREENSHOT_CERVIX")
            html = page.content()
    assert "Traceback" not in html
    for column in ("tcga-tils-cervix · zeroshot (bal. acc.)", "tissuenet · zeroshot-wsi (κw)",
                   "pannuke-cervix-nuclei · segmentation (Dice)", "tcga-cesc · report-retrieval (mean R@K)",
                   "gtex-cervix · fewshot-wsi (bal. acc.)", "tissuenet · segmentation (Dice)"):
        assert column in html, column
    assert '<tr class="measured"' in html and "quiltnet-b32" in html and "plip" in html
