"""The Cervix benchmark view in headless Chromium, on the cervix run."""
from __future__ import annotations

import pytest
from support.browser import leaderboard_page, screenshot, serve

pytestmark = pytest.mark.browser


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
