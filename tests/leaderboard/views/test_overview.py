"""The Overview in headless Chromium: the table, the highlighted model, exports, pictures, measured vs
published, and shared links that reopen the selection."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from support.browser import (
    choose,
    idle,
    leaderboard_page,
    screenshot,
    serve,
    shown_table,
    table_head,
    until,
    view,
)
from support.databases import make_db, make_vs_db

from pathboard.leaderboard import export

pytestmark = pytest.mark.browser


@pytest.fixture()
def server(tmp_path):
    yield from serve(make_db(tmp_path / "results.duckdb"))


@pytest.fixture()
def vs_server(tmp_path):
    yield from serve(make_vs_db(tmp_path / "results.duckdb"))


def test_leaderboard_page_in_chromium(server):
    with leaderboard_page(server) as page:
        page.wait_for_selector("text=Provenance of the measured numbers", timeout=60_000)
        screenshot(page, "PATHBOARD_SCREENSHOT")
        html = page.content()

    assert "Traceback" not in html
    assert "0.612 [0.58, 0.64]" in html and "0.655 [0.62, 0.69]" in html  # measured, ensemble
    assert "0.571 [0.54, 0.60]" not in html  # the single-prompt numbers are not the default
    for model in ("VirCLIP", "ConText-L-14-336px", "CONCH"):
        assert f"{model} (reported)" in html
    assert "<b>0.909</b>" in html  # VirCLIP's CRC-100K value is the column's best
    assert '<tr class="reported"' in html and '<tr class="measured"' in html
    assert "weighted_f1" in html


def test_measured_vs_published_in_chromium(vs_server):
    """Switch the task to zero-shot WSI subtyping: the KEEP README's numbers beside the measured ones."""
    with leaderboard_page(vs_server, height=1800) as page:
        page.get_by_test_id("stSelectbox").filter(has_text="Task").click()
        page.get_by_role("option", name="zeroshot-wsi").click()
        page.wait_for_selector("table.pathboard-vs-published", timeout=60_000)
        page.wait_for_selector("text=KEEP (reported)", timeout=60_000)
        screenshot(page, "PATHBOARD_SCREENSHOT_VS")
        html = page.content()
        assert "tcga-rcc" not in table_head(html)  # KEEP's RCC column has no measured number: opt-in
        page.get_by_text("Published-only columns").click()
        until(page, lambda p: "tcga-rcc" in table_head(p.content()), "the published-only columns")
        wide = page.content()

    assert "Traceback" not in html
    assert "Measured vs published" in html
    assert "0.874 [0.83, 0.91]" in html and "<b>-0.028</b>" in html  # keep on TCGA-NSCLC vs .902
    assert "<b>+0.011</b>" in html and "<b>-0.037</b>" in html  # conch on TCGA-NSCLC and TCGA-BRCA
    assert html.count('<tr class="vs-differs"') == 3
    assert "protocol pack keep (pathboard run --protocol keep)" in html and "arXiv:2412.13126" in html
    assert "KEEP (reported)" in html and "CONCH (reported)" in html and "<b>0.926</b>" in wide  # KEEP, RCC


def test_measured_under_the_papers_pack_is_same_in_chromium(url):
    """Cells run with `--protocol quilt`, chosen in the sidebar: the table opens on the paper's metric (accuracy),
    and beside the Quilt-1M chart's numbers, "same"."""
    with view(url, "protocol=pack%3Aquilt", wait_for="table.pathboard-vs-published",
              name="overview-pack") as page:
        html = page.content()
    assert "Traceback" not in html and "protocol pack quilt" in html
    rows = re.findall(r'<tr class="vs-(\w+)".*?</tr>', html, flags=re.S)
    assert rows == ["same", "same"]  # plip and quiltnet-b32 on lc25000-lung, under the paper's own protocol
    assert "PLIP [Quilt-1M] (ensemble)" in html and "QuiltNet [Quilt-1M] (ensemble)" in html
    assert "<b>same</b> (protocol pack quilt)" in html and "pathboard run --protocol quilt" in html
    head = table_head(html)
    assert "lc25000-lung" in head and "crc-val-he-7k" not in head  # only the pack's cells and published rows
    assert "BiomedCLIP (reported)" not in html and "BiomedCLIP [Quilt-1M] (reported)" in html


def test_overview_highlight_exports_and_pictures(url, real_db):
    db, folder = real_db
    with view(url, wait_for="table.pathboard-leaderboard", name="overview") as page:
        choose(page, "Highlight model", "quiltnet-b32")
        page.wait_for_selector("tr.highlight", timeout=30_000)
        html = page.content()
        assert "Traceback" not in html
        (row,) = re.findall(r'<tr class="measured highlight".*?</tr>', html, flags=re.S)
        assert ">quiltnet-b32</td>" in row and "background:#dbeafe" in row
        assert page.locator(".vega-embed").count() >= 1  # the bar chart with CI whiskers, drawn by Vega
        until(page, lambda p: "highlight=quiltnet-b32" in p.url, "the selection is in the link")

        with page.expect_download(timeout=90_000) as download:
            page.get_by_role("button", name="Download CSV").click()
        text = Path(download.value.path()).read_text()
        idle(page)  # a download button reruns the script: a click during the rerun can land on a button it replaces
        with page.expect_download(timeout=90_000) as download:
            page.get_by_role("button", name="Download LaTeX").click()
        latex = Path(download.value.path()).read_text()

    table = export.overview(db)  # the defaults the page opened with
    assert text == export.to_csv(table)
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(text))}
    shown = shown_table(html)
    assert set(rows) == set(shown)
    for model, cells in shown.items():  # every number on screen is the exported one, to the shown digits
        for column, cell in zip(table["value"].columns, cells):
            value = rows[model][column]
            assert (cell == "–") == (value == ""), (model, column)
            if value:
                assert cell.startswith(f"{float(value):.3f}"), (model, column, cell, value)
    assert "\\toprule" in latex and "\\textbf{" in latex and "quiltnet-b32" in latex


def test_a_shared_link_reopens_the_selection(url):
    query = "task=zeroshot&metric=balanced_accuracy&mode=single&reported=0&highlight=plip"
    with view(url, query, wait_for="table.pathboard-leaderboard", name="link") as page:
        html = page.content()
        assert "(reported)" not in html and '<tr class="measured highlight"' in html
        assert "balanced_accuracy with bootstrap 95% CI" in html  # the metric the link named, not weighted F1
        page.get_by_test_id("stRadio").filter(has_text="Prompt mode").get_by_text("ensemble").click()
        idle(page)
        until(page, lambda p: "mode=ensemble" in p.url and "metric=balanced_accuracy" in p.url,
              "the link carries the prompt mode and the metric")


def test_the_overview_is_a_paper_table(url, real_db):
    """Measured columns only by default (Avg on every measured row), short headers with the full id on hover,
    each column's n with the CRC sample marked beside the full-set published numbers; few-shot named, and no
    prompt-mode widget for it."""
    _, folder = real_db
    with view(url, wait_for="table.pathboard-leaderboard", name="paper-table") as page:
        html = page.content()
        table = shown_table(html)
        assert "wsss4luad" not in table_head(html)  # published-only columns are opt-in
        for label, cells in table.items():
            if not label.endswith("(reported)"):
                assert cells[-1] != "–", label  # so every measured row has its Avg
        assert "Avg: the mean over the 2 dataset(s) shown (crc-val-he-7k, folder:…/lung)" in html
        header = page.locator("th", has_text="folder:…/lung")
        assert header.get_attribute("title").startswith(folder)  # the full id on hover
        assert "n = 96" in header.inner_text()
        crc = page.locator("th", has_text="crc-val-he-7k")
        assert "n = 32 of 7,180" in crc.inner_text() and "partial" in crc.inner_html()  # a sample, marked
        height = page.evaluate("() => Math.max(...[...document.querySelectorAll('table.pathboard-leaderboard "
                              "td.model')].map(td => td.getBoundingClientRect().height))")
        assert height < 40  # published model names on one line
        page.get_by_text("Published-only columns").click()
        until(page, lambda p: "wsss4luad" in table_head(p.content()), "published-only columns on request")
        assert "published_only=1" in page.url
    with view(url, "task=fewshot&metric=balanced_accuracy", wait_for="table.pathboard-leaderboard",
              name="fewshot-table") as page:
        html = page.content()
        assert page.get_by_test_id("stRadio").filter(has_text="Prompt mode").count() == 0  # few-shot uses none
        assert "fewshot headline on folder:…/lung: prototype at k = 16 per class, median of 5 draws; 95% CI: " \
               "bootstrap of that median over test items" in html
