"""Every leaderboard view in headless Chromium, on a database that real `pathboard run` commands wrote
(the tiny QuiltNet and PLIP layouts on ../shared/data, the CMU slide as CAMELYON16): selections are changed
through the UI and the page HTML is checked; the exports are checked against the table shown.

``PATHBOARD_SCREENSHOTS=DIR`` saves a full screenshot of each view there, to look at."""
from __future__ import annotations

import csv
import io
import os
import re
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import pathboard
from test_browser import CHROMIUM, CHROMIUM_ARGS, serve
from test_slide_and_other_tasks_cli import fixtures

from pathboard.leaderboard import export, tables

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def real_db(tmp_path_factory, tiny_hub, shared_data):
    """Two runs: every default task on CRC-VAL-HE-7K, CAMELYON16 (two slides) and a folder set of LC25000-lung
    (few-shot with prototype and linear probe), then robustness on CRC-VAL-HE-7K."""
    root = tmp_path_factory.mktemp("views")
    data = root / "data"
    lung = fixtures(data, shared_data)
    (data / "CRC-VAL-HE-7K").symlink_to(shared_data / "CRC-VAL-HE-7K")
    db = root / "pb.duckdb"
    env = {"PATHBOARD_CACHE": str(root / "cache")}
    common = ["--models", "quiltnet-b32,plip", "--data-root", data, "--db", db, "--workers", "0"]
    first = pathboard("run", *common, "--datasets", f"crc-val-he-7k,camelyon16,folder:{lung}",
                      "--fewshot-methods", "prototype,linear-probe", env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    second = pathboard("run", *common, "--datasets", "crc-val-he-7k", "--tasks", "robustness", "--prompt-modes",
                       "single", env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    return db, f"folder:{lung}"


@pytest.fixture(scope="module")
def url(real_db):
    yield from serve(real_db[0])


@contextmanager
def view(url: str, query: str = "", wait_for: str = "[data-testid=stMainBlockContainer]", name: str = ""):
    """Chromium on the leaderboard at ``url?query``, once ``wait_for`` is drawn and the script is idle."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 3200}, accept_downloads=True)
            page.goto(f"{url}/?{query}", timeout=60_000)
            page.wait_for_selector(wait_for, timeout=60_000)
            idle(page)
            yield page
            if os.environ.get("PATHBOARD_SCREENSHOTS"):
                page.screenshot(path=str(Path(os.environ["PATHBOARD_SCREENSHOTS"]) / f"{name or 'view'}.png"),
                                full_page=True)
        finally:
            browser.close()


def idle(page) -> None:
    """Wait until Streamlit has finished the rerun (its status widget is gone)."""
    page.wait_for_timeout(300)
    page.wait_for_function("!document.querySelector('[data-testid=stStatusWidget]')", timeout=60_000)
    page.wait_for_timeout(300)


def choose(page, label: str, option: str) -> None:
    page.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=option, exact=True).click()
    idle(page)


def shown_table(html: str) -> dict[str, list[str]]:
    """{row label: [cell texts]} of the leaderboard table in the page."""
    body = html.split('class="pathboard-leaderboard"', 1)[1].split("</table>", 1)[0]
    out = {}
    for row in re.findall(r"<tr class=\"(?:measured|reported)[^\"]*\".*?</tr>", body, flags=re.S):
        cells = [re.sub(r"<[^>]+>", "", c).replace(" ≈", "").strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        out[cells[0]] = cells[2:]
    return out


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
        assert "highlight=quiltnet-b32" in page.url  # the selection is in the link

        with page.expect_download() as download:
            page.get_by_role("button", name="Download CSV").click()
        text = Path(download.value.path()).read_text()
        with page.expect_download() as download:
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
        assert "mode=ensemble" in page.url and "metric=balanced_accuracy" in page.url


def tab(page, label: str) -> None:
    page.get_by_role("tab", name=label, exact=True).click()
    idle(page)


def test_analyses_view_draws_every_picture(url, real_db):
    with view(url, "view=Analyses", wait_for="text=Kendall τ", name="analyses") as page:
        html = page.content()
        assert "Traceback" not in html and "No prompt-sensitivity results" not in html
        assert page.locator(".vega-embed").count() == 1  # the prompt draws: one section is drawn at a time
        pictures = {}
        for label, marker in (("Robustness", "Robustness to image perturbations"),
                              ("Few-shot curves", "labelled examples per class"),
                              ("MI-Zero top-K", "MI-Zero"), ("Calibration and AUROC", "Reliability diagram")):
            tab(page, label)
            html = page.content()
            assert marker in html and "Traceback" not in html, label
            assert "section=" + label.replace(" ", "+") in page.url  # the open section is in the link
            pictures[label] = page.locator(".vega-embed").count()
        assert all(pictures.values()), pictures  # drops, few-shot curves, top-K curve, reliability diagram
        assert "No robustness results" not in html
        page.get_by_test_id("stRadio").filter(has_text="Task").get_by_text("zeroshot-wsi").click()
        idle(page)  # the slides' calibration: CAMELYON16's metrics and its reliability diagram
        html = page.content()
        assert "camelyon16" in html and "No reliability bins" not in html and page.locator(".vega-embed").count() == 1
        tab(page, "Robustness")
        page.get_by_text("prediction flip rate").click()  # a choice inside a section keeps that section open
        idle(page)
        assert "Robustness to image perturbations" in page.content()
        assert "section=Robustness" in page.url and "robust_figure=flip_rate" in page.url
        link = page.url
    with view(url, link.split("?", 1)[1], wait_for="text=Robustness to image perturbations") as page:
        # the link reopens the section and its choice (the URL is rewritten from the widgets on every run)
        assert "section=Robustness" in page.url and "robust_figure=flip_rate" in page.url


def test_slides_view_shows_heatmap_top_tiles_and_masks(url):
    with view(url, "view=Slides", wait_for="text=Slide drill-down", name="slides") as page:
        page.wait_for_selector("text=Top tiles", timeout=30_000)
        html = page.content()
        assert "Traceback" not in html and "cannot read tiles" not in html
        assert re.search(r"Predicted</strong> (normal|tumor) · <strong>true</strong> (normal|tumor)", html)
        images = page.locator("[data-testid=stImage] img").count()
        assert images == 1 + 8 + 1  # the heatmap, the eight top tiles read from the slide, the segmentation panel
        choose(page, "Slide", "testing/images/test_002.tif")
        assert "test_002" in page.url
        assert page.locator("[data-testid=stImage] img").count() == 10 and "true</strong> normal" in page.content()


def test_runs_view_and_filtering_by_run(url, real_db):
    db, _ = real_db
    with view(url, "view=Runs", wait_for="text=Run details", name="runs") as page:
        html = page.content()
        assert "Traceback" not in html
        code = page.get_by_test_id("stCode")
        assert "--tasks robustness" in code.inner_text()  # the newest run's command
        newest, older = list(tables.load_runs(db)["run_id"])
        choose(page, "Run details", older)
        assert "--fewshot-methods prototype,linear-probe" in page.get_by_test_id("stCode").inner_text()
        html = page.content()
        assert "What embedding cost" in html and "Packages" in html and "transformers" in html
    with view(url, f"run={older}", wait_for="table.pathboard-leaderboard", name="run-filter") as page:
        assert {"plip", "quiltnet-b32"} <= set(shown_table(page.content()))  # the first run scored zero-shot
        choose(page, "Run", newest)  # the robustness run: no zero-shot headline of its own
        assert all(label.endswith("(reported)") for label in shown_table(page.content()))


def test_models_and_cervix_views(url):
    with view(url, "view=Models", wait_for="[data-testid=stTable]", name="models") as page:  # the cost table
        html = page.content()
        assert "Traceback" not in html and "quiltnet-b32" in html and "plip" in html
    with view(url, "view=Cervix+benchmark", wait_for="text=Cervix benchmark", name="cervix") as page:
        assert "No cervix results yet" in page.content()
