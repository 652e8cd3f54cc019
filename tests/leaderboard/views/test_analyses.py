"""The Analyses view in headless Chromium: every section's table and picture."""
from __future__ import annotations

import pytest
from support.browser import idle, leaderboard_page, screenshot, serve, until, view

pytestmark = pytest.mark.browser


def tab(page, label: str) -> None:
    """Open section ``label`` and wait until its rerun has rewritten the link."""
    page.get_by_role("tab", name=label, exact=True).click()
    idle(page)
    if label != "Prompt sensitivity":  # the first section is the default: the link leaves it out
        until(page, lambda p: "section=" + label.replace(" ", "+") in p.url, f"the link opens {label}")


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
        until(page, lambda p: "robust_figure=flip_rate" in p.url, "the link carries the choice")
        assert "Robustness to image perturbations" in page.content()
        assert "section=Robustness" in page.url and "robust_figure=flip_rate" in page.url
        link = page.url
    with view(url, link.split("?", 1)[1], wait_for="text=Robustness to image perturbations") as page:
        # the link reopens the section and its choice (the URL is rewritten from the widgets on every run)
        assert "section=Robustness" in page.url and "robust_figure=flip_rate" in page.url


def test_the_analyses_and_models_pages_in_chromium(robust_run):
    db = robust_run[0]
    pages = {}
    for url in serve(db):
        with leaderboard_page(url, width=1500, height=2200) as page:
            page.get_by_text("Analyses", exact=True).first.click()
            page.wait_for_selector("text=Kendall τ", timeout=60_000)
            page.wait_for_timeout(1500)
            screenshot(page, "PATHBOARD_SCREENSHOT_PROMPTS")
            pages["Analyses"] = page.content()
            for section, marker in (("Robustness", "change in balanced accuracy"),
                                    ("Calibration and AUROC", "Brier score")):  # one section at a time
                page.get_by_role("tab", name=section, exact=True).click()
                page.wait_for_selector(f"text={marker}", timeout=60_000)
                page.wait_for_timeout(1500)
                screenshot(page, f"PATHBOARD_SCREENSHOT_{section.split()[0].upper()}")
                pages["Analyses"] += page.content()
            page.get_by_text("Models", exact=True).first.click()
            page.wait_for_selector("text=What each model costs to run", timeout=60_000)
            page.wait_for_timeout(1500)
            screenshot(page, "PATHBOARD_SCREENSHOT_MODELS")
            pages["Models"] = page.content()
    assert not any("Traceback" in html for html in pages.values())
    analyses = pages["Analyses"]
    for text in ("Prompt sensitivity", "Robustness to image perturbations", "change in balanced accuracy",
                 "Calibration and AUROC"):
        assert text in analyses, text
    assert "No robustness results yet" not in analyses and "No calibration metrics" not in analyses
    assert "No prompt-sensitivity results yet" not in analyses
    for text in ("hed-strong", "jpeg-30", "downscale-0.5", "ece", "brier", "auroc", "median [IQR]", "Kendall τ"):
        assert text in analyses, text
    assert "No measured embedding yet" not in pages["Models"]
    for text in ("images/s", "peak memory (GiB)", "process peak RSS (sampled)", "quiltnet-b32"):
        assert text in pages["Models"], text
