"""The Slides view in headless Chromium: heatmap, top tiles and segmentation masks."""
from __future__ import annotations

import re

import pytest
from support.browser import choose, until, view

pytestmark = pytest.mark.browser


def test_slides_view_shows_heatmap_top_tiles_and_masks(url):
    with view(url, "view=Slides", wait_for="text=Slide drill-down", name="slides") as page:
        page.wait_for_selector("text=Top tiles", timeout=30_000)
        html = page.content()
        assert "Traceback" not in html and "cannot read tiles" not in html
        assert re.search(r"Predicted</strong> (normal|tumor) · <strong>true</strong> (normal|tumor)", html)
        images = page.locator("[data-testid=stImage] img").count()
        assert images == 1 + 8 + 1  # the heatmap, the eight top tiles read from the slide, the segmentation panel
        choose(page, "Slide", "testing/images/test_002.tif")
        until(page, lambda p: "test_002" in p.url, "the link names the chosen slide")
        assert page.locator("[data-testid=stImage] img").count() == 10 and "true</strong> normal" in page.content()
